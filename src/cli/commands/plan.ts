import { writeFileSync } from 'node:fs'
import { Option } from 'commander'
import { ExitCode, formatProblem, KupgradeError } from '../../errors.js'
import { loadPlan } from '../../plan/load.js'
import { buildExecutionPlan } from '../../planner/build.js'
import { renderPlanJson } from '../../report/plan-json.js'
import { renderPlanMarkdown } from '../../report/plan-markdown.js'
import { renderPlanText } from '../../report/plan-text.js'
import { escapeControl, escapeDeep, escapeJsonText } from '../../util/escape.js'
import { deadlineOption } from '../options.js'
import type { RegisterCommand } from './index.js'

export interface PlanCommandOptions {
  format: 'text' | 'markdown' | 'json'
  out?: string
  live?: boolean
}

export const register: RegisterCommand = (program, ctx, setExit) => {
  program
    .command('plan')
    .description('the dry-run: expand a plan into the exact ordered steps `apply` would run')
    .argument('<plan>', 'plan file')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'markdown', 'json']).default('text'))
    .option('--out <file>', 'write the output to a file instead of stdout')
    .option('--live', 'first read the clusters (read-only: SSH + kubectl): show their live state, skip steps already done')
    .option('--accept-new', 'with --live: record host keys of nodes not yet in known_hosts')
    .option('--deadline <duration>', 'with --live: overall limit per cluster for reading it (API and every node)', '60s')
    .addHelpText('after', `
Offline, the plan is expanded from the file alone (each cluster's \`from\` version). The markdown format is made for
pull-request comments; json is the versioned ExecutionPlan (docs/execution-plan.md).

Exit codes: 0 ready, 2 invalid plan, 3 blocked by a gate`)
    .action(async (file: string, opts: PlanCommandOptions & { acceptNew?: boolean; deadline: string }) => {
      const deadlineMs = deadlineOption(opts.deadline)
      const loaded = loadPlan(file)
      for (const w of loaded.warnings) ctx.stderr.write(`${formatProblem(w)}\n`)
      // Facts pull in SSH and kubectl; an offline plan never loads them.
      const facts = opts.live ? await import('../../facts/live.js') : undefined
      const render = opts.live ? await import('../../facts/render.js') : undefined
      const live = facts ? await facts.readLiveState(loaded, { env: ctx.env, acceptNew: Boolean(opts.acceptNew), deadlineMs, ...(ctx.verbose ? { log: (m: string) => ctx.stderr.write(`${m}\n`) } : {}) }) : undefined
      for (const w of live?.warnings ?? []) ctx.stderr.write(`warning: ${escapeControl(w)}\n`)
      for (const b of live?.blockers ?? []) ctx.stderr.write(`blocked: ${escapeControl(b)}\n`)
      const plan = buildExecutionPlan(loaded.plan, {
        warnings: [...loaded.warnings.map((w) => w.message), ...(live?.warnings ?? []), ...(live?.blockers ?? []).map((b) => `blocked: ${b}`)],
        ...(live ? { facts: live.planner } : {}),
      })
      // Every format escapes control characters from the plan and the clusters (hook names, versions, node OS names):
      // JSON keeps the values and writes the characters JSON.stringify leaves raw as \u escapes; text and markdown
      // render from an escaped copy, so only their own colour codes reach the terminal.
      const shown = opts.format === 'json' ? plan : escapeDeep(plan)
      const liveFacts = live && opts.format !== 'json' ? escapeDeep(live.facts) : live?.facts
      const text =
        opts.format === 'json' ? escapeJsonText(renderPlanJson(plan))
        : opts.format === 'markdown' ? renderPlanMarkdown(shown, liveFacts ? { liveSection: render!.renderLiveStateMarkdown(liveFacts) } : {})
        : `${liveFacts ? `${render!.renderLiveStateText(liveFacts)}\n` : ''}${renderPlanText(shown, { color: ctx.color && !opts.out })}`
      if (opts.out) {
        try {
          writeFileSync(opts.out, text)
        } catch (err) {
          throw new KupgradeError(`cannot write ${opts.out}: ${(err as Error).message}`, { exitCode: ExitCode.invalid })
        }
        ctx.stderr.write(`wrote ${opts.out} (${plan.steps.length} steps)\n`)
      } else ctx.stdout.write(text)
      setExit(live && live.blockers.length > 0 ? ExitCode.blocked : ExitCode.ok)
    })
}
