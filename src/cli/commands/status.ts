import { dirname } from 'node:path'
import { findRun, finished, listRuns, shownPath, stepCounts, summarize, type RunSummary } from '../../executor/runs.js'
import type { RegisterCommand } from './index.js'

export const register: RegisterCommand = (program, ctx, setExit) => {
  program
    .command('status')
    .description('show one run from its journal: state, steps, what failed, how to continue')
    .argument('[run]', 'run id, run directory, journal file, or a plan (or its folder) for its runs (default: the newest run under ./.kupgrade/runs)')
    .option('--json', 'print the journal as JSON (header and entries)')
    .action((run: string | undefined, o: { json?: boolean }) => {
      const path = findRun(run, ctx.cwd, undefined, { anyStatus: true })
      const r = summarize(path)
      if (o.json) {
        ctx.stdout.write(`${JSON.stringify({ status: r.status, message: r.message, header: r.journal.header, entries: r.journal.entries }, null, 2)}\n`)
        setExit(0)
        return
      }
      const h = r.journal.header
      const out = [
        `run ${h.runId}: ${r.status}${r.message ? ` — ${r.message}` : ''}`,
        `  plan: ${h.plan} (sha256 ${h.planSha256.slice(0, 12)}…)`,
        `  started ${h.startedAt} by ${h.user}@${h.host} with kupgrade ${h.kupgradeVersion}; last change ${r.lastAt}`,
        `  steps: ${stepCounts(r.steps)} (of ${r.steps.total} journaled)`,
        `  journal: ${path}${r.journal.tornTail !== undefined ? ' (its torn last line is ignored)' : ''}`,
      ]
      const last = new Map<string, (typeof r.journal.entries)[number]>()
      for (const e of r.journal.entries) if (e.step !== 'run') last.set(e.step, e)
      const open = [...last.values()].filter((e) => e.state === 'failed' || e.state === 'paused' || e.state === 'started')
      for (const e of open) out.push(`  ${e.state}: ${e.step}${e.error ? `: ${e.error.split('\n')[0]}` : ''}`)
      // Resuming a run another run of the same plan has since finished would find nothing to do.
      const takenOver = finished(r.status) || r.status === 'running' || r.status === 'rolled-back' ? undefined : laterDone(r)
      if (r.status === 'running') {
        out.push(`  next: let it finish (kupgrade status again follows it); to stop it safely, interrupt that process (Ctrl-C, SIGTERM)`)
      } else if (r.status === 'rolled-back') {
        out.push(`  next: to upgrade again, a new run: kupgrade apply ${shownPath(h.plan, ctx.cwd)} (it starts from the clusters as they are now)`)
      } else if (takenOver) {
        out.push(`  next: nothing — run ${takenOver.runId}, started later from the same plan, finished it (${takenOver.lastAt})`)
      } else if (!finished(r.status)) {
        const approval = open.find((e) => e.state === 'paused' && e.step.endsWith('/approval'))
        out.push(`  to continue: kupgrade resume ${shownPath(r.dir, ctx.cwd)}${approval ? ` --approve ${approval.step.split('/')[0]}` : ''}`)
      }
      ctx.stdout.write(`${out.join('\n')}\n`)
      setExit(0)
    })
}

/**
 * A run of the same plan (same sha256) over as much of it (the whole plan, or this run's selection), started after this
 * one and done: it took over what this one left.
 */
function laterDone(r: RunSummary): RunSummary | undefined {
  const h = r.journal.header
  const covers = (x: RunSummary) => {
    const sel = x.journal.header.selection
    return (!sel.stages && !sel.clusters) || JSON.stringify(sel) === JSON.stringify(h.selection)
  }
  return listRuns(dirname(r.dir))
    .filter((x) => x.runId > r.runId && x.status === 'done' && x.journal.header.planSha256 === h.planSha256 && !x.journal.header.restore && covers(x))
    .at(-1)
}
