import { humanBytes, verdict, type Finding } from '../evidence.js'
import { bytes, cpuMilli, evictable, readWorkloads, requests, schedulable } from '../read/workloads.js'
import type { Gate } from '../types.js'

export interface CapacityParams { nodesAtOnce: number }

/**
 * Whether the rest of the cluster can absorb a drained batch (incident etcd-hpa-cascading-failure: evicted pods had
 * nowhere to go). For each plan node, with the `nodesAtOnce - 1` heaviest other nodes drained alongside it: the
 * evicted pods' CPU and memory requests must fit in the free allocatable (allocatable − requested) of the schedulable
 * nodes left, and the largest pod must fit on one of them. Requests are what the scheduler counts, not usage.
 */
export const capacityGate: Gate<CapacityParams> = {
  id: 'capacity',
  async check(ctx, p) {
    const w = await readWorkloads(ctx)
    const used = new Map<string, { cpu: number; mem: number }>()
    const evict = new Map<string, { cpu: number; mem: number; pods: number; maxCpu: number; maxMem: number }>()
    for (const pod of w.pods) {
      const node = pod.spec?.nodeName
      if (!node || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue
      const r = requests(pod)
      const u = used.get(node) ?? { cpu: 0, mem: 0 }
      used.set(node, { cpu: u.cpu + r.cpu, mem: u.mem + r.mem })
      if (evictable(pod)) {
        const e = evict.get(node) ?? { cpu: 0, mem: 0, pods: 0, maxCpu: 0, maxMem: 0 }
        evict.set(node, { cpu: e.cpu + r.cpu, mem: e.mem + r.mem, pods: e.pods + 1, maxCpu: Math.max(e.maxCpu, r.cpu), maxMem: Math.max(e.maxMem, r.mem) })
      }
    }
    const free = new Map(w.nodes.filter(schedulable).map((n) => {
      const name = n.metadata?.name ?? ''
      const u = used.get(name) ?? { cpu: 0, mem: 0 }
      return [name, { cpu: cpuMilli(n.status?.allocatable?.cpu) - u.cpu, mem: bytes(n.status?.allocatable?.memory) - u.mem }]
    }))
    const weight = (n: string) => evict.get(n)?.cpu ?? 0
    const findings: Finding[] = []
    for (const n of ctx.node ? ctx.nodes.filter((x) => x.name === ctx.node) : ctx.nodes) {
      const batch = [n.name, ...ctx.nodes.map((x) => x.name).filter((x) => x !== n.name).sort((a, b) => weight(b) - weight(a)).slice(0, p.nodesAtOnce - 1)]
      const out = batch.map((b) => evict.get(b) ?? { cpu: 0, mem: 0, pods: 0, maxCpu: 0, maxMem: 0 })
      const need = out.reduce((a, e) => ({ cpu: a.cpu + e.cpu, mem: a.mem + e.mem, pods: a.pods + e.pods, maxCpu: Math.max(a.maxCpu, e.maxCpu), maxMem: Math.max(a.maxMem, e.maxMem) }), { cpu: 0, mem: 0, pods: 0, maxCpu: 0, maxMem: 0 })
      const rest = [...free].filter(([name]) => !batch.includes(name)).map(([, f]) => f)
      const room = rest.reduce((a, f) => ({ cpu: a.cpu + Math.max(0, f.cpu), mem: a.mem + Math.max(0, f.mem) }), { cpu: 0, mem: 0 })
      const fitsOne = need.pods === 0 || rest.some((f) => f.cpu >= need.maxCpu && f.mem >= need.maxMem)
      const source = `kubectl get nodes,pods -A (requests vs allocatable), draining ${batch.join(' + ')}`
      const observed = `${need.pods} pods requesting ${need.cpu}m CPU / ${humanBytes(need.mem)}; free on ${rest.length} other schedulable node(s): ${room.cpu}m CPU / ${humanBytes(room.mem)}`
      if (need.pods > 0 && (need.cpu > room.cpu || need.mem > room.mem || !fitsOne)) {
        findings.push({ status: 'fail', source, observed: `${observed}${fitsOne ? '' : `; the largest pod (${need.maxCpu}m / ${humanBytes(need.maxMem)}) fits on no node`}`, problem: `draining ${batch.join(' + ')}: ${need.cpu > room.cpu ? 'CPU' : need.mem > room.mem ? 'memory' : 'the largest pod'} does not fit elsewhere` })
      } else findings.push({ status: 'pass', source, observed })
    }
    return verdict('capacity', findings, { ok: `every drain of ${p.nodesAtOnce} node(s) fits on the other nodes`, hint: 'add capacity or shrink the worker batch (strategy.workers.maxUnavailable) before upgrading' })
  },
}
