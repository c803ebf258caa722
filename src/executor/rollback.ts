import type { ReadsBackup, StepProgram } from '../drivers/program.js'
import { versionBefore } from '../plan/versions.js'
import type { ClusterPlan, ClusterRestore, RollbackPath, Step } from '../planner/types.js'
import type { Transport } from '../transport/types.js'
import { now, stepRef, type EventSink } from './events.js'
import type { ClusterRuntime } from './executor.js'
import type { Journal } from './journal.js'
import { describeCommand, runProgram, verify } from './run-program.js'
import { waitNodeReady } from './waits.js'

/**
 * Rolling one node back, as the distributions allow it (execution.md "Rollback"): the node's changed steps are undone
 * in reverse — each undo is itself verify → run → verify, so an undo whose effect is already there runs nothing —
 * then the node must be Ready at its old kubelet version, then it is uncordoned, then the cluster's post-gates run
 * again (`kube-proxy-sync` and `api-vip` among them: a rollback can break the data plane as the incident's did). A
 * failure anywhere stops the rollback and says so: a rollback is never rolled back, and never retried in a loop.
 *
 * A control-plane node whose distribution already moved is not downgraded by binary (k0s, k3s with etcd and kubeadm
 * do not support it): it is restored from the pre-hop snapshot where the driver plans that restore (put back on the node
 * from the copy in .kupgrade/backups first if the node lost it); elsewhere the procedure is reported, not improvised.
 */
export interface RollbackDeps {
  journal: Journal
  emit: EventSink
  ssh: Transport
  signal: AbortSignal
  pollMs: number
  programFor: (step: Step, rt: ClusterRuntime) => StepProgram | undefined
  /** Before a restore from the hop's backup: the backup back on its node from the kept copy, if the node lost it. */
  backupBackOnNode: (rt: ClusterRuntime, node: string | undefined, reads: ReadsBackup) => Promise<string[]>
  /** Runs a datastore restore with the run lock's renewal stopped across it (its Lease comes back as the snapshot's). */
  acrossDatastoreRestore: <T>(restore: () => Promise<T>) => Promise<T>
  /** The hop's post-gates, after-change wait; resolves with their evidence or rejects with the failing gate. */
  postGates: (hop: number | undefined) => Promise<string[]>
  /** The last journaled state of a step. */
  stateOf: (id: string) => string | undefined
  /** Whether the step's last `done` changed something. */
  changed: (id: string) => boolean
  /** Runs the hop's planned control-plane restore (ClusterRestore) through the executor; its evidence, or why not. */
  restoreControlPlane: (restore: Extract<ClusterRestore, { automatic: true }>, node: string) => Promise<{ ok: true; evidence: string[] } | { ok: false; reason: string; evidence: string[] }>
}

export interface NodeRunRef {
  node: string
  hop?: number
  steps: Step[]
}

export type RollbackOutcome =
  | { ok: true; evidence: string[] }
  | { ok: false; reason: string; evidence: string[]; path: RollbackPath['path']; cordoned: boolean }

/** Actions that change what runs on the node (the distribution's binaries, packages, control plane). */
export const DISTRIBUTION_ACTIONS = new Set<Step['action']>(['replace-binary', 'upgrade-package', 'upgrade-control-plane', 'switch-repo', 'restart', 'stop-service', 'unhold-packages', 'hold-packages'])

/**
 * The actions that start a control-plane node's new version against the datastore: kubeadm's `upgrade apply` /
 * `upgrade node`, k3s's restart onto the replaced binary (its install never starts it), k0s's start of it. Only after
 * one of them ran (or failed: it may have half-happened) has the control plane moved; before, the repository switch,
 * the unhold, a new `kubeadm` package, `k0s stop` and the binary on disk are all taken back by their own undo, and a
 * restore from the pre-hop snapshot would throw away what the cluster wrote since, for nothing.
 */
const CONTROL_PLANE_MOVES = new Set<Step['action']>(['upgrade-control-plane', 'restart', 'start-service'])

/**
 * A step's last journaled state says it changed the node, or may have: done with a change, failed (it may have
 * half-happened), or being undone when an earlier process stopped. What a rollback takes back.
 */
export const touchedState = (state: string | undefined, changed: boolean): boolean => (state === 'done' && changed) || state === 'failed' || state === 'undoing'

/** Whether the control plane of a control-plane node run moved, from its steps' last journaled states. */
export function controlPlaneMoved(steps: readonly Step[], moved: (step: Step) => boolean): boolean {
  return steps.some((s) => CONTROL_PLANE_MOVES.has(s.action) && moved(s))
}

/**
 * A failed node run that changed nothing kupgrade takes back: no step with an undo, and no step that changes what runs
 * on the node, is done, failed (it may have half-happened) or being undone. A beforeNode gate or hook failed before
 * the cordon: the node is as it was. (A hook's own doings are the hook's: kupgrade never undoes them.)
 */
export function nothingToTakeBack(run: NodeRunRef, stateOf: (id: string) => string | undefined): boolean {
  return !run.steps.some((s) => {
    const state = stateOf(s.id)
    return s.mutates && (s.undo !== undefined || DISTRIBUTION_ACTIONS.has(s.action)) && (state === 'done' || state === 'failed' || state === 'undoing')
  })
}

export async function rollbackNode(d: RollbackDeps, rt: ClusterRuntime, c: ClusterPlan, run: NodeRunRef, why: string): Promise<RollbackOutcome> {
  const t0 = Date.now()
  const planned = c.rollback.find((p) => p.node === run.node) ?? { node: run.node, path: 'previous-version' as const, detail: 'undo the done steps' }
  const ids = { cluster: c.name, node: run.node, ...(run.hop !== undefined ? { hop: run.hop } : {}) }
  // What this node run changed (done and changed), plus the step that failed: it may have half-happened, and its
  // undo's verify tells whether there is anything to take back; and a step whose undo an earlier process of this
  // run was running when it stopped (undoing).
  const touched = run.steps.filter((s) => s.mutates && touchedState(d.stateOf(s.id), d.changed(s.id)))
  const moved = touched.some((s) => DISTRIBUTION_ACTIONS.has(s.action) && d.stateOf(s.id) === 'done')
  // A step that would have moved the control plane but failed may have left it as it was (kubeadm stopped at its
  // checks, or put its own backup back): read so on the node, it moved nothing.
  const leftAsItWas = planned.path === 'snapshot-restore' ? await untouchedByFailure(d, rt, touched) : new Map<string, string[]>()
  // A control-plane node whose control plane has not moved yet comes back as a worker does, by its undos.
  const path: RollbackPath = planned.path === 'snapshot-restore' && !controlPlaneMoved(touched, (s) => !leftAsItWas.has(s.id))
    ? { ...planned, path: 'previous-version', detail: `its control plane had not moved to the new version${leftAsItWas.size ? ` (${[...leftAsItWas.keys()].map((id) => id.split('/').at(-1)).join(', ')} failed and left it as it was)` : ''}: its done steps undone in reverse, no restore from the pre-hop snapshot` }
    : planned
  // The node must come back Ready at its old version when its distribution changed, also where an earlier process
  // of this run already undid that change before it stopped.
  const changedKubelet = moved || run.steps.some((s) => DISTRIBUTION_ACTIONS.has(s.action) && ['undoing', 'undone'].includes(d.stateOf(s.id) ?? ''))
  d.emit({ type: 'rollback-started', time: now(), ...ids, path: path.path, detail: path.detail, reason: why })
  const evidence: string[] = [...leftAsItWas.values()].flat()
  /** The node stays cordoned unless the rollback got as far as uncordoning it. */
  const fail = (reason: string, extra: string[] = [], cordoned = true): RollbackOutcome => {
    d.emit({ type: 'rollback-failed', time: now(), ...ids, error: reason, evidence: [...evidence, ...extra] })
    return { ok: false, reason, evidence: [...evidence, ...extra], path: path.path, cordoned }
  }
  // A moved control plane comes back only from the pre-hop snapshot: done here when the driver planned that restore as
  // the undo of the node's change (the only control-plane node of k3s, k0s or kubeadm) or as the hop's control-plane
  // restore (k3s or kubeadm with several control-plane nodes: all of them at once, before this node's own undo finds
  // its old binary, packages and files already back), else stopped with the procedure.
  const restores = touched.some((s) => s.undo !== undefined && 'action' in s.undo && s.undo.action === 'restore-datastore')
  const whole = c.restore?.find((r) => r.hop === run.hop)
  if (path.path === 'snapshot-restore' && !restores) {
    if (!whole?.automatic) return fail(`${run.node} is a control-plane node whose distribution already moved to the new version: no binary downgrade (unsupported); restore the pre-hop snapshot: ${whole?.detail ?? path.detail}`)
    const r = await d.restoreControlPlane(whole, run.node)
    evidence.push(...r.evidence)
    if (!r.ok) return fail(`the control plane could not be restored from the pre-hop snapshot: ${r.reason}`)
  }
  const irreversible = touched.find((s) => s.action !== 'os-upgrade' && s.action !== 'reboot' && s.undo !== undefined && 'irreversible' in s.undo && d.stateOf(s.id) === 'done')
  if (irreversible && 'irreversible' in irreversible.undo!) return fail(`step ${irreversible.id} cannot be undone: ${irreversible.undo.irreversible}`)

  const reversed = [...touched].reverse()
  const last: Step[] = []
  // What the node keeps of this run (an OS upgrade is rolled forward): "back at the old version" is its Kubernetes.
  const kept: { step: string; why: string }[] = []
  for (const s of reversed) {
    if (s.undo === undefined) continue
    if ('irreversible' in s.undo) {
      evidence.push(`${s.id}: not undone (${s.undo.irreversible})`)
      if (d.stateOf(s.id) === 'done') kept.unshift({ step: s.id, why: s.undo.irreversible })
      continue
    }
    // Uncordon comes last, after the node is back at its old version and healthy.
    if (s.undo.action === 'uncordon') {
      last.push(s)
      continue
    }
    const r = await undoStep(d, rt, undoBeforeMove(s, path.path === 'snapshot-restore'))
    if (!r.ok) return fail(`undo of ${s.id} failed: ${r.error}`, r.evidence)
    evidence.push(...r.evidence)
  }
  const hop = run.hop !== undefined ? c.hops.find((h) => h.index === run.hop) : undefined
  // A machine without a kubelet (a k0s controller without --enable-worker) has no Node to be Ready: its undo waited
  // for its own service instead.
  const hasNode = run.steps.some((s) => s.action === 'wait-ready')
  if (changedKubelet && hop && hasNode) {
    try {
      evidence.push(await waitNodeReady(rt.kubectl, run.node, versionBefore(rt.distribution, hop.from).kubelet, 5 * 60_000, { signal: d.signal, pollMs: d.pollMs }))
    } catch (err) {
      return fail(`${run.node} did not come back at its old version: ${(err as Error).message}`)
    }
  }
  // Cordon and drain share one undo (uncordon): run it once, and journal the other step as undone by it, so the
  // journal says every changed step of the node was taken back.
  const [uncordon, ...same] = last
  if (uncordon) {
    const r = await undoStep(d, rt, uncordon)
    if (!r.ok) return fail(`undo of ${uncordon.id} failed: ${r.error}`, r.evidence)
    evidence.push(...r.evidence)
    for (const s of same) d.journal.append({ step: s.id, state: 'undone', attempt: 1, evidence: [`undone by the undo of ${uncordon.id}`], changed: false })
  }
  try {
    evidence.push(...(await d.postGates(run.hop)))
  } catch (err) {
    // The node is back but the cluster is not healthy: stop here and say so (never roll back the rollback).
    return fail(`after the rollback of ${run.node} a post-gate failed: ${(err as Error).message}`, [], false)
  }
  d.emit({ type: 'rollback-done', time: now(), ...ids, durationMs: Date.now() - t0, evidence, ...(kept.length ? { kept } : {}) })
  return { ok: true, evidence }
}

/**
 * The failed steps among `touched` that would have moved the control plane and whose driver can read that they left
 * the node as it was (StepProgram.untouched), each with that reading. A read that fails or does not hold counts as
 * moved: only a node that says so escapes the restore.
 */
async function untouchedByFailure(d: RollbackDeps, rt: ClusterRuntime, touched: readonly Step[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>()
  for (const s of touched) {
    if (!CONTROL_PLANE_MOVES.has(s.action) || d.stateOf(s.id) !== 'failed') continue
    const checks = d.programFor(s, rt)?.untouched
    const target = s.node ? rt.targets.get(s.node) : undefined
    if (!checks?.length || !target) continue
    const r = await verify(checks, { ssh: d.ssh, kubectl: rt.kubectl, target, dryRun: false, signal: d.signal }).catch(() => undefined)
    if (r?.all) out.set(s.id, r.evidence.map((e) => `${s.id} failed and left the node as it was: ${e}`))
  }
  return out
}

/**
 * The undo of a step whose planned undo restores the datastore, where the control plane did not move: a k3s or k0s
 * binary replaced (or whose replacement failed) but never started gets the kept binary back; the only kubeadm
 * control-plane node whose `kubeadm upgrade` failed and left its manifests as they were gets /etc/kubernetes back, as
 * a control plane of several does. Restoring the pre-hop snapshot there would throw away what the cluster wrote since
 * the backup, for nothing.
 */
function undoBeforeMove(s: Step, controlPlaneMovedHere: boolean): Step {
  if (controlPlaneMovedHere || s.undo === undefined || !('action' in s.undo) || s.undo.action !== 'restore-datastore') return s
  const p = s.undo.params
  if (p.kind === 'kubeadm') return s.action === 'upgrade-control-plane' ? { ...s, undo: { action: 'restore-files', params: { dir: p.dir, paths: ['/etc/kubernetes'] } } } : s
  if (s.action !== 'replace-binary') return s
  return { ...s, undo: { action: 'restore-binary', params: { binary: p.binary, backup: p.backup, release: p.release, service: p.service } } }
}

async function undoStep(d: RollbackDeps, rt: ClusterRuntime, s: Step): Promise<{ ok: true; evidence: string[] } | { ok: false; error: string; evidence: string[] }> {
  const program = d.programFor(s, rt)
  const target = s.node ? rt.targets.get(s.node) : undefined
  if (!program || !('run' in program.undo)) return { ok: true, evidence: [] }
  const undo = program.undo
  const attempt = 1
  d.journal.append({ step: s.id, state: 'undoing', attempt })
  d.emit({ type: 'undo-started', time: now(), step: stepRef(s), title: undo.title ?? undo.run.map(describeCommand).join('; ') })
  const t0 = Date.now()
  try {
    const putBack = undo.readsBackup ? await d.backupBackOnNode(rt, s.node, undo.readsBackup) : []
    const run = () => runProgram({ verify: undo.verify ?? [], run: undo.run, ...(undo.wait ? { wait: undo.wait } : {}), undo: { nothing: true } }, {
      ssh: d.ssh, kubectl: rt.kubectl, ...(target ? { target } : {}), dryRun: false, signal: d.signal,
      onRetry: (r) => d.emit({ type: 'step-retrying', time: now(), step: stepRef(s), ...r, undo: true }),
    }, { ssh: d.ssh, kubectl: rt.kubectl, ...(target ? { target } : {}), signal: d.signal, pollMs: d.pollMs })
    const r = s.undo !== undefined && 'action' in s.undo && s.undo.action === 'restore-datastore' ? await d.acrossDatastoreRestore(run) : await run()
    const evidence = [...putBack, ...r.evidence]
    d.journal.append({ step: s.id, state: 'undone', attempt, evidence, changed: r.changed })
    d.emit({ type: 'undo-done', time: now(), step: stepRef(s), durationMs: Date.now() - t0, changed: r.changed, evidence })
    return { ok: true, evidence: [`undone ${s.id}${r.changed ? '' : ' (already undone: nothing ran)'}`] }
  } catch (err) {
    const evidence = (err as { evidence?: string[] }).evidence ?? []
    const error = (err as Error).message
    d.journal.append({ step: s.id, state: 'failed', attempt, error: `undo: ${error}`, evidence })
    d.emit({ type: 'undo-failed', time: now(), step: stepRef(s), durationMs: Date.now() - t0, error, evidence })
    return { ok: false, error, evidence }
  }
}
