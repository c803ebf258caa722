import { existsSync, readdirSync, statSync } from 'node:fs'
import { basename, dirname, join, relative, resolve, sep } from 'node:path'
import { randomBytes } from 'node:crypto'
import { ExitCode, KupgradeError } from '../errors.js'
import { lastStates, readJournal, type JournalContents } from './journal.js'
import { LOCAL_LOCK, localLockHolder } from './local-lock.js'

/** Where runs live: `.kupgrade/runs/<run-id>/journal.jsonl` next to the plan (brief §6 "State"). */
export const runsDir = (planDir: string): string => join(planDir, '.kupgrade', 'runs')
/** The runs beside a plan given as its file or as the folder holding it. */
export const runsBeside = (planOrFolder: string): string =>
  runsDir(statSync(planOrFolder, { throwIfNoEntry: false })?.isDirectory() ? planOrFolder : dirname(planOrFolder))
export const journalPath = (planDir: string, runId: string): string => join(runsDir(planDir), runId, 'journal.jsonl')

/** Sortable and unique: `20261201T074512Z-3f9a`. */
export const newRunId = (d = new Date()): string => `${d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(2).toString('hex')}`

export type RunStatus = 'running' | 'done' | 'rolled-back' | 'failed' | 'blocked' | 'paused' | 'awaiting-approval' | 'interrupted' | 'unfinished'

export interface RunSummary {
  runId: string
  dir: string
  journal: JournalContents
  status: RunStatus
  message?: string
  startedAt: string
  lastAt: string
  /** By each step's last entry; undone: taken back by a rollback (or found with nothing to take back). */
  steps: { done: number; skipped: number; failed: number; undone: number; total: number }
}

/** A run's steps by their last state, as `runs` and `status` say them: `12 done, 0 skipped, 1 failed, 5 undone (rolled back)`. */
export const stepCounts = (c: RunSummary['steps']): string =>
  `${c.done} done, ${c.skipped} skipped, ${c.failed} failed${c.undone ? `, ${c.undone} undone (rolled back)` : ''}`

/** A run's state from its journal alone: the last `run` entry, else unfinished (killed). */
export function summarize(path: string): RunSummary {
  const journal = readJournal(path)
  const last = journal.entries.filter((e) => e.step === 'run').at(-1)
  const states = lastStates(journal.entries.filter((e) => e.step !== 'run'))
  const counts = { done: 0, skipped: 0, failed: 0, undone: 0, total: states.size }
  for (const e of states.values()) {
    if (e.state === 'done' || e.state === 'approved') counts.done++
    else if (e.state === 'skipped') counts.skipped++
    else if (e.state === 'failed') counts.failed++
    else if (e.state === 'undone') counts.undone++
  }
  // No end written: still running (its process holds the lock beside the runs) or stopped without one (killed).
  const holder = last ? undefined : localLockHolder(join(dirname(dirname(path)), LOCAL_LOCK))
  const running = holder?.runId === journal.header.runId
  const status: RunStatus = !last ? (running ? 'running' : 'unfinished')
    : last.state === 'done' ? (last.evidence?.[0] === 'rolled-back' ? 'rolled-back' : 'done')
      // Blocked: stopped by a pre-gate before anything changed (apply's exit 3), journaled as a failure.
      : last.state === 'failed' ? (last.evidence?.[0] === 'blocked' ? 'blocked' : 'failed')
        : (last.evidence?.[0] as RunStatus | undefined) ?? 'paused'
  return {
    runId: journal.header.runId, dir: dirname(path), journal, status,
    ...(last?.error ? { message: last.error } : running ? { message: `pid ${holder!.pid} on host ${holder!.host}` } : {}),
    startedAt: journal.header.startedAt, lastAt: journal.entries.at(-1)?.time ?? journal.header.startedAt, steps: counts,
  }
}

export function listRuns(dir: string): RunSummary[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((d) => existsSync(join(dir, d, 'journal.jsonl')))
    .sort()
    .map((d) => summarize(join(dir, d, 'journal.jsonl')))
}

/**
 * RUN as the user gives it: a journal file, a run directory, a run id under ./.kupgrade/runs (or `dir`), or a plan
 * file or the folder holding it (runs live beside their plan: its newest run, chosen as below).
 * Without one: the newest run under `dir` that did not finish (`anyStatus`: the newest run).
 */
export function findRun(ref: string | undefined, cwd: string, dir = runsDir(cwd), o: { anyStatus?: boolean } = {}): string {
  if (ref) {
    const p = resolve(cwd, ref)
    const st = statSync(p, { throwIfNoEntry: false })
    if (st?.isFile() && !isPlanFile(p)) return p
    if (existsSync(join(p, 'journal.jsonl'))) return join(p, 'journal.jsonl')
    if (existsSync(join(dir, ref, 'journal.jsonl'))) return join(dir, ref, 'journal.jsonl')
    if (st?.isFile()) return newestRun(runsBeside(p), o, p)
    if (st?.isDirectory() && existsSync(runsBeside(p))) return newestRun(runsBeside(p), o)
    throw new KupgradeError(`no run ${ref}: not a journal, a run directory, a run id under ${dir}, or a plan (or its folder) with runs beside it`, { exitCode: ExitCode.invalid, hint: '`kupgrade runs [PLAN]` lists the runs of a plan\'s folder' })
  }
  return newestRun(dir, o)
}

/** Nothing is left to resume: done, or taken back by `kupgrade rollback` (a new apply goes forward again). */
export const finished = (status: RunStatus): boolean => status === 'done' || status === 'rolled-back'

/** A plan, not a journal: what `apply` reads (YAML), named as users name plans. */
const isPlanFile = (p: string): boolean => /\.ya?ml$/i.test(p)

function newestRun(dir: string, o: { anyStatus?: boolean }, plan?: string): string {
  const runs = listRuns(dir).filter((r) => plan === undefined || r.journal.header.plan === plan)
  const open = runs.filter((r) => o.anyStatus || !finished(r.status)).at(-1)
  const which = `${o.anyStatus ? '' : 'unfinished '}run`
  if (!open) throw new KupgradeError(plan ? `no ${which} of ${plan} under ${dir}` : `no ${which} under ${dir}`, { exitCode: ExitCode.invalid, hint: 'pass the run (id or directory) or its plan, or run this where the plan is' })
  return join(open.dir, 'journal.jsonl')
}

/** How to name a run dir in a printed command: relative when under cwd. */
export function shownPath(p: string, cwd: string): string {
  const r = relative(cwd, p)
  return r && !r.startsWith('..') && !r.startsWith(sep) ? r : p
}

export const runIdOfDir = (dir: string): string => basename(dir)
