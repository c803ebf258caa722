import type { ClusterPlan, Step } from '../planner/types.js'
import { now, type EventSink } from './events.js'
import type { NodeRunRef, RollbackOutcome } from './rollback.js'

/**
 * onFailure: rebuild of one failed node run (brief §5, issue 11 item 3): the rebuild the planner laid out for that node
 * and hop — the distribution's reset, `kubectl delete node`, the version the node ran before the hop reinstalled and
 * rejoined, Ready at that version, uncordon — then the hop's post-gates again, as after a rollback. Its steps are plan
 * steps: journaled, verify → run → verify, so a run killed halfway through a rebuild resumes it where it stopped.
 *
 * A node whose run changed nothing but its cordon (it failed in a gate or the drain) has nothing to rebuild: it is
 * rolled back instead (uncordoned, post-gates). Where the rebuild is not automatic (a control plane, a distribution
 * without a planned rejoin) the run stops with the node cordoned and the procedure; a rebuild that fails stops too,
 * never looping and never rolled back.
 */
export interface RebuildDeps {
  emit: EventSink
  /** Runs one planned step through the executor (journal, events); `again`: even if an earlier rebuild finished it. */
  runStep: (s: Step, again: boolean) => Promise<true | false | { message: string }>
  /** The hop's post-gates, after-change wait; resolves with their evidence or rejects with the failing gate. */
  postGates: (hop: number | undefined) => Promise<string[]>
  /** The node's rollback, for a node run that changed nothing a rebuild would fix. */
  rollback: () => Promise<RollbackOutcome>
  stateOf: (id: string) => string | undefined
  changed: (id: string) => boolean
}

export type RebuildOutcome =
  | { ok: true; how: 'rebuilt' | 'rolled back'; evidence: string[] }
  | { ok: false; reason: string; evidence: string[]; cordoned: boolean }

/** Steps whose effect is the node's cordon only: undone by an uncordon, nothing to rebuild. */
const CORDON_ONLY = new Set<Step['action']>(['cordon', 'drain'])

/** `resuming`: an earlier process of this run started this rebuild and stopped; its finished steps stand. */
export async function rebuildNode(d: RebuildDeps, c: ClusterPlan, run: NodeRunRef, why: string, resuming: boolean): Promise<RebuildOutcome> {
  const t0 = Date.now()
  const ids = { cluster: c.name, node: run.node, ...(run.hop !== undefined ? { hop: run.hop } : {}) }
  const path = c.rebuild?.find((r) => r.node === run.node && r.hop === run.hop)
  const moved = run.steps.some((s) => s.mutates && !CORDON_ONLY.has(s.action) && ((d.stateOf(s.id) === 'done' && d.changed(s.id)) || d.stateOf(s.id) === 'failed'))
  // (A rebuild being resumed always finds its node's forward steps done: they are journaled undone only at its end.)
  if (!moved) {
    const rb = await d.rollback()
    return rb.ok ? { ok: true, how: 'rolled back', evidence: rb.evidence } : { ok: false, reason: rb.reason, evidence: rb.evidence, cordoned: rb.cordoned }
  }
  const evidence: string[] = []
  d.emit({ type: 'rebuild-started', time: now(), ...ids, detail: path?.detail ?? 'no rebuild planned', reason: why })
  const fail = (reason: string, cordoned: boolean): RebuildOutcome => {
    d.emit({ type: 'rebuild-failed', time: now(), ...ids, error: reason, evidence })
    return { ok: false, reason, evidence, cordoned }
  }
  if (!path) return fail(`no rebuild is planned for ${run.node} in this pass (an OS-only pass reinstalls nothing): rebuild it by hand, then resume`, true)
  if (!path.automatic) return fail(`${run.node}: ${path.detail}`, true)
  let deleted = false
  for (const s of path.steps) {
    const r = await d.runStep(s, !resuming)
    if (typeof r === 'object') return fail(`${run.node} could not be rebuilt: ${r.message}`, !deleted)
    if (s.action === 'delete-node') deleted = true
    evidence.push(`${s.id}: ${r ? 'done' : 'already in place'}`)
  }
  try {
    evidence.push(...(await d.postGates(run.hop)))
  } catch (err) {
    return fail(`after the rebuild of ${run.node} a post-gate failed: ${(err as Error).message}`, false)
  }
  d.emit({ type: 'rebuild-done', time: now(), ...ids, durationMs: Date.now() - t0, evidence })
  return { ok: true, how: 'rebuilt', evidence }
}
