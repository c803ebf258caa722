import { verdict, type Finding } from '../evidence.js'
import { evictable, matches, readWorkloads } from '../read/workloads.js'
import type { Gate } from '../types.js'

export interface DrainFeasibilityParams { singleReplica: 'warn' | 'block' }

/**
 * Whether each node can be drained at all (facts §5): a PodDisruptionBudget that allows 0 disruptions over a pod on
 * the node makes every eviction 429 and the drain hang until its timeout; a workload with one replica goes down for
 * the drain; a pod without a controller is refused by `kubectl drain` unless forced.
 */
export const drainFeasibilityGate: Gate<DrainFeasibilityParams> = {
  id: 'drain-feasibility',
  async check(ctx, p) {
    const w = await readWorkloads(ctx)
    const findings: Finding[] = []
    const inScope = new Set((ctx.node ? ctx.nodes.filter((n) => n.name === ctx.node) : ctx.nodes).map((n) => n.name))
    const owners = new Map<string, number>()
    for (const pod of w.pods.filter(evictable)) {
      const o = pod.metadata?.ownerReferences?.find((r) => r.controller)
      if (o) owners.set(o.uid, (owners.get(o.uid) ?? 0) + 1)
    }
    for (const pod of w.pods) {
      if (!pod.spec?.nodeName || !inScope.has(pod.spec.nodeName) || !evictable(pod)) continue
      const name = `${pod.metadata?.namespace}/${pod.metadata?.name}`
      const labels = pod.metadata?.labels ?? {}
      for (const b of w.pdbs.filter((x) => x.metadata?.namespace === pod.metadata?.namespace && matches(x.spec?.selector, labels))) {
        const allowed = b.status?.disruptionsAllowed ?? 0
        if (allowed === 0) {
          findings.push({ status: 'fail', source: `kubectl get pdb -n ${b.metadata?.namespace} ${b.metadata?.name}`, observed: `disruptionsAllowed 0 (${b.spec?.minAvailable !== undefined ? `minAvailable ${b.spec.minAvailable}` : `maxUnavailable ${b.spec?.maxUnavailable}`}, ${b.status?.currentHealthy ?? '?'}/${b.status?.expectedPods ?? '?'} healthy) over ${name} on ${pod.spec.nodeName}`, problem: `PDB ${b.metadata?.namespace}/${b.metadata?.name} blocks draining ${pod.spec.nodeName} (pod ${name})` })
        }
      }
      const ctl = pod.metadata?.ownerReferences?.find((r) => r.controller)
      if (!ctl) findings.push({ status: 'warn', source: `kubectl get pod ${name}`, observed: `no controller, on ${pod.spec.nodeName}`, problem: `${name} has no controller: kubectl drain refuses it without force, and it is not recreated` })
      else if (owners.get(ctl.uid) === 1 && ctl.kind !== 'Job') {
        findings.push({ status: p.singleReplica === 'block' ? 'fail' : 'warn', source: `kubectl get pod ${name}`, observed: `${ctl.kind} ${ctl.name} has 1 running pod, on ${pod.spec.nodeName}`, problem: `${name}: single replica, down while ${pod.spec.nodeName} drains` })
      }
    }
    if (findings.length === 0) findings.push({ status: 'pass', source: 'kubectl get pods,pdb -A', observed: `${w.pdbs.length} PodDisruptionBudgets, none at 0 allowed disruptions over pods on ${[...inScope].join(', ')}` })
    return verdict('drain-feasibility', findings, { ok: `every node can be drained (${w.pdbs.length} PDBs checked)`, hint: 'scale the workload up or relax its PodDisruptionBudget before the upgrade (kubectl drain would wait until its timeout)' })
  },
}
