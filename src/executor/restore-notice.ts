import { loadPlan } from '../plan/load.js'
import { buildExecutionPlan } from '../planner/build.js'
import type { ExecutionPlan } from '../planner/types.js'
import { formatDuration } from '../util/duration.js'
import { sinceTakenBack } from './executor.js'
import { lastStates, readJournal, type JournalEntry } from './journal.js'
import { controlPlaneMoved, touchedState } from './rollback.js'
import { nodeRuns, segments } from './segments.js'

export interface DatastoreRestore {
  cluster: string
  /** The earliest hop whose snapshot it is restored from: where the cluster's API objects end up. */
  hop?: number
  /** When that snapshot was taken, from the journal (its backup step's `done`). */
  takenAt?: string
}

/**
 * The clusters whose control plane `kupgrade rollback` of a run restores from a datastore snapshot: those with a
 * control-plane node on the snapshot-restore path (no distribution downgrades a moved control plane by binary) whose
 * control plane this run moved (controlPlaneMoved: its new version started) and no onFailure of it took back since. A
 * restore takes every API object back to the snapshot: what was created or changed since is lost, which an SRE must
 * hear before agreeing, not in the log after.
 */
export function datastoreRestores(plan: ExecutionPlan, last: (step: string) => JournalEntry | undefined, clusters?: readonly string[]): DatastoreRestore[] {
  const out: DatastoreRestore[] = []
  for (const c of plan.stages.flatMap((s) => s.clusters)) {
    if (clusters && !clusters.includes(c.name)) continue
    let earliest: { hop?: number } | undefined
    for (const seg of segments(c.steps)) {
      for (const n of nodeRuns(seg)) {
        if (c.rollback.find((p) => p.node === n.node)?.path !== 'snapshot-restore') continue
        const since = sinceTakenBack(last, c.name, n)
        const moved = controlPlaneMoved(n.steps, (s) => {
          const e = last(s.id)
          return touchedState(e?.state, e?.changed === true) && since(s.id)
        })
        if (moved && (earliest === undefined || (n.hop ?? 0) < (earliest.hop ?? 0))) earliest = n.hop !== undefined ? { hop: n.hop } : {}
      }
    }
    if (!earliest) continue
    const backup = c.steps.find((s) => s.action === 'backup' && s.hop === earliest!.hop)
    const taken = backup ? last(backup.id) : undefined
    out.push({ cluster: c.name, ...earliest, ...(taken?.state === 'done' ? { takenAt: taken.time } : {}) })
  }
  return out
}

/** `cluster production: its control plane is restored from the datastore snapshot taken before hop 1, at … (2h ago): …` */
export const restoreNotice = (r: DatastoreRestore, now = Date.now()): string => {
  const when = r.takenAt ? `, at ${r.takenAt.replace(/\.\d+Z$/, 'Z')} (${formatDuration(Math.max(0, Math.round((now - Date.parse(r.takenAt)) / 1000) * 1000))} ago)` : ''
  return `cluster ${r.cluster}: its control plane is restored from the datastore snapshot taken before hop ${r.hop ?? 1}${when}: every API object goes back to that moment, and what was created or changed in the cluster since is lost`
}

/**
 * The notices of a run's rollback, from its journal and the plan it names (unchanged, or the rollback refuses it: then
 * none, and the rollback says why).
 */
export function rollbackNotices(journalPath: string, clusters?: readonly string[], now = Date.now()): string[] {
  const journal = readJournal(journalPath)
  let plan: ExecutionPlan
  try {
    plan = buildExecutionPlan(loadPlan(journal.header.plan).plan)
  } catch {
    return []
  }
  const states = lastStates(journal.entries)
  return datastoreRestores(plan, (id) => states.get(id), clusters ?? journal.header.selection.clusters).map((r) => restoreNotice(r, now))
}
