import { titleFor } from '../drivers/registry.js'
import { ExitCode, KupgradeError } from '../errors.js'
import type { PlanDocument } from '../plan/schema.js'
import { versionBefore, type Distribution } from '../plan/versions.js'
import { buildExecutionPlan, type BuildOptions } from './build.js'
import type { Hop } from './hops.js'
import type { ClusterPlan, ExecutionPlan, Step } from './types.js'

/** `kupgrade restore`: which cluster, back to before which of its hops (that hop's pre-hop backup). */
export interface RestoreRequest {
  cluster: string
  hop: number
}

/** The stage name of a restore plan, and the first part of its step ids. */
export const RESTORE_STAGE = 'restore'

/**
 * A whole cluster back to how it was before hop `hop`, from that hop's pre-hop backup: the explicit cluster rebuild
 * (`kupgrade restore`) for when the cluster is broken past what a node's rollback mends — the incident where a team
 * rebuilt a cluster by hand. Pure, like the planner it reads: the steps are the undo specs the forward plan gave each
 * step of hop `hop` and later, in reverse, per node, control plane first, then every node Ready at its old version and
 * uncordoned, then the hop's post-gates expecting the old version.
 *
 * The datastore restore is forced (`Step.force`): the old version may already run on a datastore that must still be
 * replaced, so its verify does not excuse it. Undos are verify → run → verify, so a node that never moved runs
 * nothing. Where a distribution restores several control-plane nodes only by hand (its driver plans no automatic
 * restore), it refuses with that procedure rather than improvise one.
 */
export function buildRestorePlan(plan: PlanDocument, req: RestoreRequest, options: BuildOptions = {}): ExecutionPlan {
  checkRestoreCluster(plan, req.cluster)
  const forward = buildExecutionPlan(plan, options)
  // (Every cluster of a valid plan is in a stage: plan/semantics.ts.)
  const c = forward.stages.flatMap((s) => s.clusters).find((x) => x.name === req.cluster)!
  const hop = c.hops.find((h) => h.index === req.hop)
  if (!hop) {
    const hops = c.hops.map((h) => `${h.index} (${h.from} → ${h.to.release})`).join(', ')
    throw invalid(`cluster ${c.name} has no hop ${req.hop}${hops ? `: its hops are ${hops}` : ': the plan changes no Kubernetes version there, so no hop took a backup'}`)
  }
  const dist = c.distribution as Distribution
  const whole = c.restore?.find((r) => r.hop === hop.index)
  if (c.controlPlane.length > 1 && !whole?.automatic) {
    const how = whole?.detail ?? c.rollback.find((p) => p.node === c.controlPlane[0])?.detail ?? ''
    throw new KupgradeError(`cluster ${c.name}: ${c.controlPlane.length} ${dist} control-plane nodes are not restored from a snapshot automatically${how ? `: ${how}` : ''}`, {
      exitCode: ExitCode.invalid, hint: 'restore the snapshot by the procedure above, then run kupgrade resume or apply again',
    })
  }
  const prefix = `${RESTORE_STAGE}/${c.name}/hop${hop.index}`
  const old = versionBefore(dist, hop.from)
  const kubelet = old.kubelet
  // The restore as a hop backwards, so its post-gates expect the old version on every node.
  const back: Hop = { index: hop.index, from: c.hops.at(-1)!.to.release, to: old, kind: hop.kind }
  const retag = (s: Step, id: string, extra: Partial<Step> = {}): Step => {
    const t = { ...s, id, stage: RESTORE_STAGE, hop: hop.index } as Step
    delete t.skip
    delete t.batch
    return Object.assign(t, extra)
  }

  const steps: Step[] = []
  const lock = c.steps.find((s) => s.action === 'lock')
  // A cluster to restore may have no API: its lock is taken once the restored control plane answers.
  if (lock?.action === 'lock') {
    const s = { ...lock, id: `${RESTORE_STAGE}/${c.name}/lock`, stage: RESTORE_STAGE, params: { ...lock.params, whileApiDown: 'defer' as const } }
    s.title = `${lock.title}; with no API answering, once it answers again`
    steps.push(s)
  }
  // Several control-plane nodes: the whole control plane from the one backup, as the driver plans it.
  if (whole?.automatic) {
    whole.steps.forEach((s, i) => {
      const forced = s.action === 'restore-datastore' || s.action === 'rejoin-datastore'
      steps.push(retag(s, `${prefix}/control-plane/${i + 1}-${s.node}-${s.action}`, forced ? { force: true } : {}))
    })
  }
  // Each node's steps of hop `hop` and later, in plan order, found in one pass (not one scan of the cluster per node).
  const byNode = new Map<string, Step[]>()
  for (const s of c.steps) {
    if (s.node === undefined || s.hop === undefined || s.hop < hop.index || s.phase === 'backup') continue
    const list = byNode.get(s.node)
    if (list) list.push(s)
    else byNode.set(s.node, [s])
  }
  for (const node of c.controlPlane) steps.push(...nodeBack(node))
  c.batches.flat().forEach((node, batch) => steps.push(...nodeBack(node, batch)))
  for (const g of c.steps.filter((s) => s.action === 'gate' && s.phase === 'postflight' && s.hop === c.hops.at(-1)!.index)) {
    steps.push(retag(g, `${prefix}/post/${g.id.split('/').at(-1)}`))
  }
  const unlock = c.steps.find((s) => s.action === 'unlock')
  if (unlock) steps.push({ ...unlock, id: `${RESTORE_STAGE}/${c.name}/unlock`, stage: RESTORE_STAGE })

  const cluster: ClusterPlan = {
    name: c.name, distribution: c.distribution, from: back.from, to: hop.from, hops: [back], controlPlane: c.controlPlane,
    // One node at a time: a restore is no time to take several workers down at once.
    batches: c.batches.flat().map((w) => [w]),
    canary: false,
    gates: c.gates, onFailure: 'pause', maxFailedNodes: 1, rollback: [], steps,
  }
  return {
    ...forward, target: { kubernetes: hop.from }, warnings: [],
    stages: [{
      name: RESTORE_STAGE, approval: 'none', soak: '0s', parallelClusters: 1, clusters: [cluster], before: [], after: [],
      // A restore that fails is a failure to hear of like any other: the plan's onFailure hooks (the same in every stage).
      onFailureHooks: (forward.stages[0]?.onFailureHooks ?? []).map((s, i) => ({ ...s, id: `${RESTORE_STAGE}/hook/on-failure/${i + 1}`, stage: RESTORE_STAGE })),
    }],
    steps,
  }

  /**
   * One node back: its undos of hop `hop` and later in reverse, then Ready at the old kubelet and uncordoned. A
   * worker is a batch of its own: one node at a time.
   */
  function nodeBack(node: string, batch?: number): Step[] {
    const mine = byNode.get(node) ?? []
    if (mine.length === 0) return []
    const role = mine[0]!.role
    const base = { phase: role === 'control-plane' ? 'control-plane' : 'workers', stage: RESTORE_STAGE, cluster: c!.name, hop: hop!.index, node, ...(role ? { role } : {}), ...(batch !== undefined ? { batch } : {}) } as const
    const out: Step[] = []
    for (const s of [...mine].reverse()) {
      if (!s.mutates || s.undo === undefined || !('action' in s.undo) || s.undo.action === 'uncordon') continue
      // Only the restore of the hop asked for: a later hop's restore would be undone by it anyway. Done already where
      // the driver restores the control plane as a whole.
      if (s.undo.action === 'restore-datastore' && (s.hop !== hop!.index || whole?.automatic)) continue
      const u = { ...base, id: `${prefix}/${node}/undo/hop${s.hop}/${s.id.split('/').at(-1)}`, title: '', action: s.undo.action, params: s.undo.params, mutates: true } as Step
      if (u.action === 'restore-datastore') u.force = true
      u.title = titleFor(u, dist)
      out.push(u)
    }
    const ready = mine.find((s) => s.action === 'wait-ready')
    if (ready) {
      const w = retag(ready, `${prefix}/${node}/wait-ready`, { params: { ...ready.params, kubelet }, ...(batch !== undefined ? { batch } : {}) } as Partial<Step>)
      w.title = titleFor(w, dist)
      out.push(w)
    }
    const uncordon = mine.find((s) => s.action === 'uncordon')
    if (uncordon) out.push(retag(uncordon, `${prefix}/${node}/uncordon`, batch !== undefined ? { batch } : {}))
    return out
  }
}

/** A cluster to restore is one the plan has: said before anything else is looked up for it (its backups, its hops). */
export function checkRestoreCluster(plan: PlanDocument, cluster: string): void {
  const names = plan.spec.clusters.map((c) => c.name)
  if (!names.includes(cluster)) throw invalid(`the plan has no cluster ${cluster} (clusters: ${names.join(', ')})`)
}

const invalid = (message: string): KupgradeError => new KupgradeError(message, { exitCode: ExitCode.invalid })
