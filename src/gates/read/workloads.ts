import type { Node, Pod } from 'kubernetes-types/core/v1.js'
import type { LabelSelector } from 'kubernetes-types/meta/v1.js'
import type { PodDisruptionBudget } from 'kubernetes-types/policy/v1.js'
import type { List } from '../../transport/kubectl/client.js'
import type { GateContext } from '../types.js'
import { PROBE_LABEL } from './probe-pod.js'

/** Everything capacity and drain-feasibility decide with, in three calls. */
export interface Workloads {
  nodes: Node[]
  pods: Pod[]
  pdbs: PodDisruptionBudget[]
}

export async function readWorkloads(ctx: GateContext): Promise<Workloads> {
  const [nodes, pods, pdbs] = await Promise.all([
    ctx.kubectl.nodes(),
    ctx.kubectl.json<List<Pod>>(['get', 'pods', '--all-namespaces', '-o', 'json']),
    ctx.kubectl.json<List<PodDisruptionBudget>>(['get', 'poddisruptionbudgets', '--all-namespaces', '-o', 'json']),
  ])
  return { nodes: nodes.items ?? [], pods: pods.items ?? [], pdbs: pdbs.items ?? [] }
}

/** Quantity → millicores / bytes (the forms the API serialises: 100m, 2, 1.5, 128Mi, 1G, 1e9). */
export function cpuMilli(q: string | number | undefined): number {
  if (q === undefined) return 0
  const s = String(q)
  return s.endsWith('m') ? Number(s.slice(0, -1)) : Math.round(Number(s) * 1000)
}
export function bytes(q: string | number | undefined): number {
  if (q === undefined) return 0
  const m = /^([\d.e+]+)([KMGTPE]i?|m|k)?$/.exec(String(q))
  if (!m) return 0
  const mult: Record<string, number> = { '': 1, m: 0.001, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, Pi: 1024 ** 5, Ei: 1024 ** 6 }
  return Number(m[1]) * (mult[m[2] ?? ''] ?? 1)
}

/** Pods a drain evicts: not DaemonSet-owned, not mirror/static, not finished, not kupgrade's own probe pods. */
export const evictable = (p: Pod): boolean =>
  p.metadata?.labels?.[PROBE_LABEL] !== 'kupgrade' &&
  !p.metadata?.ownerReferences?.some((o) => o.kind === 'DaemonSet') &&
  !p.metadata?.annotations?.['kubernetes.io/config.mirror'] &&
  p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed' && !p.metadata?.deletionTimestamp

export function requests(p: Pod): { cpu: number; mem: number } {
  let cpu = 0
  let mem = 0
  for (const c of p.spec?.containers ?? []) {
    cpu += cpuMilli(c.resources?.requests?.cpu)
    mem += bytes(c.resources?.requests?.memory)
  }
  return { cpu, mem }
}

export function matches(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels
    const val = labels[e.key]
    if (e.operator === 'In' && !(has && (e.values ?? []).includes(val!))) return false
    if (e.operator === 'NotIn' && has && (e.values ?? []).includes(val!)) return false
    if (e.operator === 'Exists' && !has) return false
    if (e.operator === 'DoesNotExist' && has) return false
  }
  return true
}

/** A node the scheduler may place pods on at all: Ready and not cordoned (its taints are each pod's to tolerate). */
export const takesPods = (n: Node): boolean =>
  !n.spec?.unschedulable && (n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false)

/**
 * Whether a pod may be scheduled onto a node as far as its taints go (the scheduler's TaintToleration filter): every
 * NoSchedule and NoExecute taint tolerated — same key (or an empty key with Exists), Exists or an equal value, the
 * same effect or none.
 */
export function toleratesNode(pod: Pod, n: Node): boolean {
  const tolerations = pod.spec?.tolerations ?? []
  return (n.spec?.taints ?? []).filter((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute').every((t) =>
    tolerations.some((o) =>
      (!o.effect || o.effect === t.effect) &&
      (o.operator === 'Exists' ? !o.key || o.key === t.key : o.key === t.key && (o.value ?? '') === (t.value ?? ''))))
}
