import type { NodeState, PodState } from './types.js'

/**
 * A small kube-scheduler: filter nodes (schedulable, Ready, taints tolerated, requests fit), then pick the least
 * loaded. When nothing fits it returns the scheduler's own FailedScheduling message, counting nodes per reason the
 * way kube-scheduler does ("0/5 nodes are available: 1 Insufficient cpu, 2 node(s) were unschedulable, …").
 */
export interface Candidate {
  node: NodeState
  /** NoSchedule taints on the node, as `key` strings. */
  taints: string[]
}

export interface PodNeeds {
  cpuMilli: number
  memoryBytes: number
  tolerateControlPlane: boolean
}

export type ScheduleResult = { node: NodeState } | { message: string }

export function allocatable(n: NodeState): { cpuMilli: number; memoryBytes: number } {
  return n.allocatableOverride ?? { cpuMilli: n.cpuMilli, memoryBytes: n.memoryBytes }
}

export function schedule(pod: PodNeeds, candidates: Candidate[], pods: Iterable<PodState>): ScheduleResult {
  const used = new Map<string, { cpu: number; mem: number }>()
  for (const p of pods) {
    if (!p.nodeName || p.phase === 'Succeeded' || p.phase === 'Failed') continue
    const u = used.get(p.nodeName) ?? { cpu: 0, mem: 0 }
    u.cpu += p.cpuMilli
    u.mem += p.memoryBytes
    used.set(p.nodeName, u)
  }
  const reasons = new Map<string, number>()
  const bump = (r: string) => reasons.set(r, (reasons.get(r) ?? 0) + 1)
  let best: { node: NodeState; load: number } | undefined
  for (const { node, taints } of candidates) {
    if (node.unschedulable) { bump('node(s) were unschedulable'); continue }
    const blocking = taints.filter((t) => !(pod.tolerateControlPlane && t === 'node-role.kubernetes.io/control-plane'))
    if (blocking.length) { bump(`node(s) had untolerated taint {${blocking[0]}: }`); continue }
    const a = allocatable(node)
    const u = used.get(node.name) ?? { cpu: 0, mem: 0 }
    const cpuFits = u.cpu + pod.cpuMilli <= a.cpuMilli
    const memFits = u.mem + pod.memoryBytes <= a.memoryBytes
    if (!cpuFits) bump('Insufficient cpu')
    if (!memFits) bump('Insufficient memory')
    if (!cpuFits || !memFits) continue
    const load = Math.max(u.cpu / Math.max(a.cpuMilli, 1), u.mem / Math.max(a.memoryBytes, 1))
    if (!best || load < best.load) best = { node, load }
  }
  if (best) return { node: best.node }
  const detail = [...reasons.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([r, n]) => `${n} ${r}`).join(', ')
  const total = candidates.length
  return { message: `0/${total} nodes are available: ${detail}. preemption: 0/${total} nodes are available: ${total} Preemption is not helpful for scheduling.` }
}
