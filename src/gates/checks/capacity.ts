import type { Pod } from 'kubernetes-types/core/v1.js'
import { humanBytes, verdict, type Finding } from '../evidence.js'
import { bytes, cpuMilli, evictable, readWorkloads, requests, takesPods, toleratesNode } from '../read/workloads.js'
import type { Gate } from '../types.js'

export interface CapacityParams { nodesAtOnce?: number }

/**
 * Whether the rest of the cluster can absorb a drained batch (incident etcd-hpa-cascading-failure: evicted pods had
 * nowhere to go). For each set of nodes the plan drains together (each control-plane node alone, each worker batch at
 * once: GateContext.drainGroups) — or, with `nodesAtOnce`, each plan node with the `nodesAtOnce - 1` heaviest other
 * nodes — every evicted pod must find room, placed the largest first as the scheduler would: on a node left Ready and
 * uncordoned whose taints it tolerates (CoreDNS may go to a tainted control plane, a workload may not), within its
 * free allocatable (allocatable − requested). Requests are what the scheduler counts, not usage. A batch of every
 * worker of a cluster whose control plane is tainted leaves its workloads nowhere: the drains would wait out their
 * timeout on the PodDisruptionBudgets, and the run roll back what it had begun.
 */
export const capacityGate: Gate<CapacityParams> = {
  id: 'capacity',
  async check(ctx, p) {
    const w = await readWorkloads(ctx)
    const used = new Map<string, { cpu: number; mem: number }>()
    const evicted = new Map<string, Pod[]>()
    for (const pod of w.pods) {
      const node = pod.spec?.nodeName
      if (!node || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue
      const r = requests(pod)
      const u = used.get(node) ?? { cpu: 0, mem: 0 }
      used.set(node, { cpu: u.cpu + r.cpu, mem: u.mem + r.mem })
      if (evictable(pod)) evicted.set(node, [...(evicted.get(node) ?? []), pod])
    }
    const open = w.nodes.filter(takesPods).map((n) => {
      const name = n.metadata?.name ?? ''
      const u = used.get(name) ?? { cpu: 0, mem: 0 }
      return { node: n, name, cpu: cpuMilli(n.status?.allocatable?.cpu) - u.cpu, mem: bytes(n.status?.allocatable?.memory) - u.mem }
    })
    const weight = (n: string) => (evicted.get(n) ?? []).reduce((a, pod) => a + requests(pod).cpu, 0)
    const findings: Finding[] = []
    const planned = p.nodesAtOnce === undefined ? ctx.drainGroups?.() : undefined
    const groups = planned ?? ctx.nodes.map((n) => [n.name, ...ctx.nodes.map((x) => x.name).filter((x) => x !== n.name).sort((a, b) => weight(b) - weight(a)).slice(0, (p.nodesAtOnce ?? 1) - 1)])
    for (const batch of ctx.node ? groups.filter((g) => g.includes(ctx.node!)) : groups) {
      const pods = batch.flatMap((b) => evicted.get(b) ?? [])
      // The nodes left, each with the room it has now; a tainted one counts only for the pods that tolerate it.
      const rest = open.filter((o) => !batch.includes(o.name)).map((o) => ({ ...o }))
      const usable = rest.filter((o) => pods.some((pod) => toleratesNode(pod, o.node)))
      const need = pods.reduce((a, pod) => ({ cpu: a.cpu + requests(pod).cpu, mem: a.mem + requests(pod).mem }), { cpu: 0, mem: 0 })
      const room = usable.reduce((a, o) => ({ cpu: a.cpu + Math.max(0, o.cpu), mem: a.mem + Math.max(0, o.mem) }), { cpu: 0, mem: 0 })
      // As the scheduler would place them, the largest first: each on the first node whose taints it tolerates and
      // whose free requests it fits in.
      const homeless: Pod[] = []
      for (const pod of [...pods].sort((a, b) => requests(b).cpu - requests(a).cpu || requests(b).mem - requests(a).mem)) {
        const r = requests(pod)
        const to = rest.find((o) => o.cpu >= r.cpu && o.mem >= r.mem && toleratesNode(pod, o.node))
        if (to) {
          to.cpu -= r.cpu
          to.mem -= r.mem
        } else homeless.push(pod)
      }
      const source = `kubectl get nodes,pods -A (requests vs allocatable, taints vs tolerations), draining ${batch.join(' + ')}`
      const observed = `${pods.length} pods requesting ${need.cpu}m CPU / ${humanBytes(need.mem)}; free on ${usable.length} other schedulable node(s) they tolerate: ${room.cpu}m CPU / ${humanBytes(room.mem)}`
      if (homeless.length > 0) {
        const named = homeless.slice(0, 3).map((pod) => `${pod.metadata?.namespace}/${pod.metadata?.name} (${requests(pod).cpu}m / ${humanBytes(requests(pod).mem)})`).join(', ')
        findings.push({ status: 'fail', source, observed: `${observed}; no node with room for ${homeless.length} of them: ${named}${homeless.length > 3 ? ` and ${homeless.length - 3} more` : ''}`, problem: `draining ${batch.join(' + ')}: what ${homeless.length} of its ${pods.length} pods request does not fit elsewhere` })
      } else findings.push({ status: 'pass', source, observed })
    }
    if (findings.length === 0) findings.push({ status: 'pass', source: 'plan', observed: 'no node of the plan is drained (every one already at the target)' })
    const most = Math.max(0, ...groups.map((g) => g.length))
    return verdict('capacity', findings, { ok: planned ? `every drain the plan makes (${groups.length} set${groups.length === 1 ? '' : 's'} of nodes, up to ${most} at once) fits on the other nodes` : `every drain of ${p.nodesAtOnce ?? 1} node(s) fits on the other nodes`, hint: 'add capacity or shrink the worker batch (strategy.workers.maxUnavailable) before upgrading' })
  },
}
