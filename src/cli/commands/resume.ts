import { Option } from 'commander'
import { ExitCode, KupgradeError } from '../../errors.js'
import { findRun, shownPath, summarize } from '../../executor/runs.js'
import { list } from '../options.js'
import type { RegisterCommand } from './index.js'
import { approvalQuestion, ask, canPrompt, runWithOutput } from './run-shared.js'

export const register: RegisterCommand = (program, ctx, setExit) => {
  program
    .command('resume')
    .description('continue an interrupted, paused or waiting run from its journal')
    .argument('[run]', 'run id, run directory, journal file, or a plan (or its folder) for its runs (default: the newest unfinished run under ./.kupgrade/runs)')
    .option('--approve <stage>', 'approve a stage that requires approval (repeatable, or comma-separated)', list)
    .addOption(new Option('--output <format>', 'text or json (docs/events.md)').choices(['text', 'json']).default('text'))
    .option('--force-unlock', 'take over a cluster lock whose holder\'s lease has expired')
    .option('--accept-new', 'record host keys of nodes not yet in known_hosts')
    .addHelpText('after', `
Steps the journal records as done are not repeated; a step that was in flight is verified first and run again only
if its effect is missing (a restore's forced datastore restore runs again). A \`kupgrade restore\` run resumes as that
restore. A run stopped halfway through a datastore restore may have left the API down: it goes on under the local
lock and takes the cluster's Lease once the API answers. Before it changes anything more in a cluster an earlier
process had begun, the last gates the run passed there (a node's after-node gates, a hop's post-gates or the
pre-gates) are checked again: minutes or days may have passed, and one that fails stops the run there, nothing more
changed. The plan must be unchanged (its sha256 is in the journal).

Exit codes: as apply`)
    .action(async (run: string | undefined, o: { approve?: string[]; output: 'text' | 'json'; forceUnlock?: boolean; acceptNew?: boolean }) => {
      const journal = findRun(run, ctx.cwd)
      const found = summarize(journal)
      const header = found.journal.header
      // Its journal ends with its nodes taken back (status says so too): going forward again is a new run's work,
      // which checks the cluster as it is now, not a continuation of this one.
      if (found.status === 'rolled-back') {
        throw new KupgradeError(`run ${found.runId} was taken back by kupgrade rollback: it is finished, there is nothing to resume`, {
          exitCode: ExitCode.invalid, hint: `to upgrade again, start a new run: kupgrade apply ${shownPath(header.plan, ctx.cwd)} (it starts from the clusters as they are now)`,
        })
      }
      const prompt = canPrompt(ctx) && o.output !== 'json'
      setExit(await runWithOutput(ctx, o, {
        planFile: header.plan, dryRun: false, approve: o.approve ?? [], selection: header.selection,
        forceUnlock: Boolean(o.forceUnlock), acceptNew: Boolean(o.acceptNew), resumeJournal: journal,
        ...(prompt ? { confirm: (stage: string) => ask(ctx, approvalQuestion(stage)) } : {}),
      }))
    })
}
