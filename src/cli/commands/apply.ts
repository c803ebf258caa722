import { Option } from 'commander'
import { list } from '../options.js'
import type { RegisterCommand } from './index.js'
import { approvalQuestion, ask, canPrompt, runWithOutput } from './run-shared.js'

export const register: RegisterCommand = (program, ctx, setExit) => {
  program
    .command('apply')
    .description('execute a plan: stage by stage, node by node, journaled, behind gates and the cluster lock')
    .argument('<plan>', 'plan file')
    .option('--stage <stage>', 'only this stage (repeatable, or comma-separated)', list)
    .option('--cluster <cluster>', 'only this cluster (repeatable, or comma-separated)', list)
    .option('--approve <stage>', 'approve a stage that requires approval (repeatable, or comma-separated)', list)
    .option('--yes', 'do not ask for confirmation on a terminal')
    .option('--dry-run', 'run the executor with recording channels: reads run for real, writes are recorded and printed')
    .addOption(new Option('--output <format>', 'text (progress + summary) or json (one event per line, docs/events.md)').choices(['text', 'json']).default('text'))
    .option('--force-unlock', 'take over a cluster lock whose holder\'s lease has expired')
    .option('--accept-new', 'record host keys of nodes not yet in known_hosts')
    .option('--ignore-stage-order', 'with --stage or --cluster: start at a later stage although an earlier one still has nodes to upgrade')
    .addHelpText('after', `
The run's journal is written to .kupgrade/runs/<run-id>/journal.jsonl next to the plan; continue a stopped run with
\`kupgrade resume\`. On a terminal apply asks for confirmation unless --yes; in CI it never prompts, and a stage that
requires approval stops the run (exit 4) and prints the command that continues it.

Stages go in order: with --stage or --cluster, a run that starts at a later stage while an earlier stage of the plan
still has nodes to upgrade is refused (exit 3) unless --ignore-stage-order.

Exit codes: 0 done (or nothing to do), 1 failed (onFailure: abort), 2 invalid input, 3 blocked by a gate (or the stage
order) before any change, 4 paused (a failed step with onFailure: pause), awaiting approval, lock held by another run or lost,
130 interrupted (journal written, resume printed)`)
    .action(async (file: string, o: { stage?: string[]; cluster?: string[]; approve?: string[]; yes?: boolean; dryRun?: boolean; output: 'text' | 'json'; forceUnlock?: boolean; acceptNew?: boolean; ignoreStageOrder?: boolean }) => {
      const prompt = canPrompt(ctx) && o.output !== 'json'
      if (prompt && !o.yes && !o.dryRun && !(await ask(ctx, `Apply ${file}${o.stage ? ` (stages ${o.stage.join(', ')})` : ''}? It changes the clusters it names.`))) {
        ctx.stderr.write('nothing was changed\n')
        setExit(4)
        return
      }
      setExit(await runWithOutput(ctx, o, {
        planFile: file, dryRun: Boolean(o.dryRun), approve: o.approve ?? [],
        selection: { ...(o.stage ? { stages: o.stage } : {}), ...(o.cluster ? { clusters: o.cluster } : {}) },
        forceUnlock: Boolean(o.forceUnlock), acceptNew: Boolean(o.acceptNew), ignoreStageOrder: Boolean(o.ignoreStageOrder),
        ...(prompt ? { confirm: (stage: string) => ask(ctx, approvalQuestion(stage)) } : {}),
      }))
    })
}
