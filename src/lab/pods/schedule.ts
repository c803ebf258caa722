import type { ClusterModel } from '../fleet/cluster.js'
import { renderNode } from '../fleet/render.js'
import { allocatable } from '../fleet/allocatable.js'
import type { NodeState, PodState } from '../fleet/types.js'
import type { BarePodSpec } from './spec.js'
import { tolerates } from './tolerations.js'

/**
 * The lab's kube-scheduler, for every pod it places: created through the API, or made by a Deployment's ReplicaSet.
 * The default profile's filters in their order (the first that rejects a node is that node's reason):
 * NodeUnschedulable, TaintToleration (NoSchedule and NoExecute taints, the control-plane taint included), NodeAffinity
 * (nodeSelector against the Node's labels), NodeResourcesFit. Then the least loaded node wins. Nothing fits: the
 * scheduler's FailedScheduling message, reasons counted per node. A pod with `spec.nodeName` is not scheduled at all
 * (the kubelet there admits it), and a DaemonSet binds its own pods, as in Kubernetes.
 */
export function schedulePod(m: ClusterModel, p: PodState, s: Pick<BarePodSpec, 'tolerations' | 'nodeSelector'>): { node: NodeState } | { message: string } {
  const used = usedPerNode(m)
  const reasons = new Map<string, number>()
  const bump = (r: string) => reasons.set(r, (reasons.get(r) ?? 0) + 1)
  let best: { node: NodeState; load: number } | undefined
  /** Nodes refused only for room: where preemption looks for victims (and, every pod here of one priority, finds none). */
  let short = 0
  for (const n of m.kubeNodes()) {
    const taints = m.taintsOf(n).filter((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute')
    if (n.unschedulable && !tolerates(s.tolerations, { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' })) {
      bump('node(s) were unschedulable')
      continue
    }
    const untolerated = taints.find((t) => t.key !== 'node.kubernetes.io/unschedulable' && !tolerates(s.tolerations, t))
    if (untolerated) {
      bump(`node(s) had untolerated taint {${untolerated.key}: ${(untolerated as { value?: string }).value ?? ''}}`)
      continue
    }
    if (!matchesSelector(m, n, s.nodeSelector)) {
      bump("node(s) didn't match Pod's node affinity/selector")
      continue
    }
    const a = allocatable(n)
    const u = used.get(n.name) ?? { cpu: 0, mem: 0 }
    const cpuFits = u.cpu + p.cpuMilli <= a.cpuMilli
    const memFits = u.mem + p.memoryBytes <= a.memoryBytes
    if (!cpuFits) bump('Insufficient cpu')
    if (!memFits) bump('Insufficient memory')
    if (!cpuFits || !memFits) {
      short++
      continue
    }
    const load = Math.max(u.cpu / Math.max(a.cpuMilli, 1), u.mem / Math.max(a.memoryBytes, 1))
    if (!best || load < best.load) best = { node: n, load }
  }
  if (best) return { node: best.node }
  const total = m.kubeNodes().length
  // kube-scheduler's FitError sorts the formatted "COUNT reason" strings (sort.Strings), count prefix included.
  const detail = [...reasons.entries()].map(([r, k]) => `${k} ${r}`).sort().join(', ')
  // DefaultPreemption: a node refused by a filter other than resources cannot be helped by evicting pods; on one
  // refused for room it looks for lower-priority victims, and finds none. Its reasons are sorted the same way.
  const preemption = [...(short ? [`${short} No preemption victims found for incoming pod`] : []), ...(total - short ? [`${total - short} Preemption is not helpful for scheduling`] : [])].sort().join(', ')
  return { message: `0/${total} nodes are available: ${detail}. preemption: 0/${total} nodes are available: ${preemption}.` }
}

/** Kubelet admission of a pod bound by `spec.nodeName` (the scheduler never saw it): the node's labels must match its
 *  nodeSelector and its requests must fit, else the pod fails with the kubelet's reason. Taints are not checked here,
 *  as in Kubernetes (NoExecute aside, which the lab does not set). */
export function admitBarePod(m: ClusterModel, p: PodState, s: BarePodSpec, n: NodeState): { reason: string; message: string } | undefined {
  if (!matchesSelector(m, n, s.nodeSelector)) return { reason: 'NodeAffinity', message: 'Pod was rejected: Predicate NodeAffinity failed' }
  const a = allocatable(n)
  const u = usedPerNode(m, p).get(n.name) ?? { cpu: 0, mem: 0 }
  if (u.cpu + p.cpuMilli > a.cpuMilli) {
    return { reason: 'OutOfcpu', message: `Pod was rejected: Node didn't have enough resource: cpu, requested: ${p.cpuMilli}, used: ${u.cpu}, capacity: ${a.cpuMilli}` }
  }
  if (u.mem + p.memoryBytes > a.memoryBytes) {
    return { reason: 'OutOfmemory', message: `Pod was rejected: Node didn't have enough resource: memory, requested: ${p.memoryBytes}, used: ${u.mem}, capacity: ${a.memoryBytes}` }
  }
  return undefined
}

function usedPerNode(m: ClusterModel, except?: PodState): Map<string, { cpu: number; mem: number }> {
  const used = new Map<string, { cpu: number; mem: number }>()
  for (const p of m.pods.values()) {
    if (p === except || !p.nodeName || p.phase === 'Succeeded' || p.phase === 'Failed') continue
    const u = used.get(p.nodeName) ?? { cpu: 0, mem: 0 }
    u.cpu += p.cpuMilli
    u.mem += p.memoryBytes
    used.set(p.nodeName, u)
  }
  return used
}

/** Rendering the Node for its labels costs; most pods (every Deployment's here) select nothing. */
function matchesSelector(m: ClusterModel, n: NodeState, selector: Record<string, string>): boolean {
  if (Object.keys(selector).length === 0) return true
  const labels = (renderNode(m, n).metadata as { labels: Record<string, string> }).labels
  return Object.entries(selector).every(([k, v]) => labels[k] === v)
}
