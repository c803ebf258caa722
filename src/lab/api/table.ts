import type { ClusterModel } from '../fleet/cluster.js'
import { nodeRoles, podRestarts, podStatusText } from '../fleet/render.js'
import type { NodeState, PodState } from '../fleet/types.js'

/**
 * meta.k8s.io/v1 Table responses: what plain `kubectl get` prints. Without them kubectl shows only NAME and AGE
 * (lab findings). Columns match the real server's for nodes and pods; other kinds get the common columns.
 */
type Obj = Record<string, unknown>
interface Column { name: string; type: string; format?: string; priority?: number; description?: string }

/** kubectl's short ages: 45s, 3m12s, 5h, 12d (apimachinery duration.HumanDuration, simplified). */
export function age(since: Date | string | undefined): string {
  if (!since) return '<unknown>'
  const s = Math.max(0, Math.floor((Date.now() - new Date(since).getTime()) / 1000))
  if (s < 120) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ''}`
  if (m < 180) return `${m}m`
  const h = Math.floor(m / 60)
  if (h < 48) return `${h}h`
  const d = Math.floor(h / 24)
  return d < 730 ? `${d}d` : `${Math.floor(d / 365)}y`
}

const col = (name: string, type = 'string', priority = 0, format?: string): Column => ({ name, type, priority, ...(format ? { format } : {}), description: name })

export function table(columns: Column[], rows: { cells: unknown[]; object: Obj }[], resourceVersion: number): Obj {
  return {
    kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion: String(resourceVersion) },
    columnDefinitions: columns,
    rows: rows.map((r) => ({ cells: r.cells, object: partial(r.object) })),
  }
}

/** Rows carry PartialObjectMetadata (kubectl's default includeObject=Metadata): enough for NAMESPACE and sorting. */
const partial = (o: Obj): Obj => ({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata })

export function nodeStatus(n: NodeState): string {
  const s = n.ready.status === 'True' ? 'Ready' : n.ready.status === 'False' ? 'NotReady' : 'NotReady'
  return n.unschedulable ? `${s},SchedulingDisabled` : s
}

export function nodeTable(m: ClusterModel, items: { state: NodeState; object: Obj }[]): Obj {
  const cols = [col('Name', 'string', 0, 'name'), col('Status'), col('Roles'), col('Age'), col('Version'), col('Internal-IP', 'string', 1), col('External-IP', 'string', 1), col('OS-Image', 'string', 1), col('Kernel-Version', 'string', 1), col('Container-Runtime', 'string', 1)]
  return table(cols, items.map(({ state: n, object }) => {
    const info = (object.status as { nodeInfo: Record<string, string> }).nodeInfo
    const roles = nodeRoles(m, n)
    return { object, cells: [n.name, nodeStatus(n), roles.length ? roles.join(',') : '<none>', age(n.createdAt), info.kubeletVersion, n.address, '<none>', info.osImage, info.kernelVersion, info.containerRuntimeVersion] }
  }), m.resourceVersion)
}

export function podTable(m: ClusterModel, items: { state: PodState; object: Obj }[]): Obj {
  const cols = [col('Name', 'string', 0, 'name'), col('Ready'), col('Status'), col('Restarts', 'string'), col('Age'), col('IP', 'string', 1), col('Node', 'string', 1), col('Nominated Node', 'string', 1), col('Readiness Gates', 'string', 1)]
  return table(cols, items.map(({ state: p, object }) => {
    const restarts = podRestarts(m, p)
    return { object, cells: [p.name, `${m.podReady(p) ? 1 : 0}/1`, podStatusText(m, p), restarts ? `${restarts} (${Math.min(300, restarts * 10)}s ago)` : '0', age(p.createdAt), p.ip ?? '<none>', p.nodeName ?? '<none>', '<none>', '<none>'] }
  }), m.resourceVersion)
}

/** Columns for the other kinds, read from the rendered objects. */
export function genericTable(m: ClusterModel, kind: string, objects: Obj[]): Obj {
  const meta = (o: Obj) => o.metadata as { name: string; creationTimestamp?: string }
  const status = (o: Obj) => (o.status ?? {}) as Record<string, unknown>
  const spec = (o: Obj) => (o.spec ?? {}) as Record<string, unknown>
  switch (kind) {
    case 'Deployment':
      return table([col('Name', 'string', 0, 'name'), col('Ready'), col('Up-to-date', 'integer'), col('Available', 'integer'), col('Age')],
        objects.map((o) => ({ object: o, cells: [meta(o).name, `${status(o).readyReplicas ?? 0}/${spec(o).replicas}`, status(o).updatedReplicas ?? 0, status(o).availableReplicas ?? 0, age(meta(o).creationTimestamp)] })), m.resourceVersion)
    case 'DaemonSet':
      return table([col('Name', 'string', 0, 'name'), col('Desired', 'integer'), col('Current', 'integer'), col('Ready', 'integer'), col('Up-to-date', 'integer'), col('Available', 'integer'), col('Node Selector'), col('Age')],
        objects.map((o) => { const s = status(o); return { object: o, cells: [meta(o).name, s.desiredNumberScheduled, s.currentNumberScheduled, s.numberReady, s.updatedNumberScheduled, s.numberAvailable, '<none>', age(meta(o).creationTimestamp)] } }), m.resourceVersion)
    case 'PodDisruptionBudget':
      return table([col('Name', 'string', 0, 'name'), col('Min Available'), col('Max Unavailable'), col('Allowed Disruptions', 'integer'), col('Age')],
        objects.map((o) => ({ object: o, cells: [meta(o).name, spec(o).minAvailable ?? 'N/A', spec(o).maxUnavailable ?? 'N/A', status(o).disruptionsAllowed, age(meta(o).creationTimestamp)] })), m.resourceVersion)
    case 'Event':
      return table([col('Last Seen'), col('Type'), col('Reason'), col('Object'), col('Message')],
        objects.map((o) => { const inv = o.involvedObject as { kind: string; name: string }; return { object: o, cells: [age(o.lastTimestamp as string), o.type, o.reason, `${inv.kind.toLowerCase()}/${inv.name}`, o.message] } }), m.resourceVersion)
    case 'Lease':
      return table([col('Name', 'string', 0, 'name'), col('Holder'), col('Age')],
        objects.map((o) => ({ object: o, cells: [meta(o).name, spec(o).holderIdentity ?? '', age(meta(o).creationTimestamp)] })), m.resourceVersion)
    case 'Service':
      return table([col('Name', 'string', 0, 'name'), col('Type'), col('Cluster-IP'), col('External-IP'), col('Port(s)'), col('Age')],
        objects.map((o) => ({ object: o, cells: [meta(o).name, spec(o).type, spec(o).clusterIP, '<none>', (spec(o).ports as { port: number; protocol: string }[]).map((p) => `${p.port}/${p.protocol}`).join(','), age(meta(o).creationTimestamp)] })), m.resourceVersion)
    case 'Namespace':
      return table([col('Name', 'string', 0, 'name'), col('Status'), col('Age')],
        objects.map((o) => ({ object: o, cells: [meta(o).name, 'Active', age(meta(o).creationTimestamp)] })), m.resourceVersion)
    case 'ConfigMap':
      return table([col('Name', 'string', 0, 'name'), col('Data', 'integer'), col('Age')],
        objects.map((o) => ({ object: o, cells: [meta(o).name, Object.keys((o.data ?? {}) as Obj).length, age(meta(o).creationTimestamp)] })), m.resourceVersion)
    case 'Secret':
      return table([col('Name', 'string', 0, 'name'), col('Type'), col('Data', 'integer'), col('Age')],
        objects.map((o) => ({ object: o, cells: [meta(o).name, o.type, Object.keys((o.data ?? {}) as Obj).length, age(meta(o).creationTimestamp)] })), m.resourceVersion)
    case 'Endpoints':
      return table([col('Name', 'string', 0, 'name'), col('Endpoints'), col('Age')],
        objects.map((o) => {
          const subsets = (o.subsets ?? []) as { addresses?: { ip: string }[]; ports?: { port: number }[] }[]
          const eps = subsets.flatMap((s) => (s.addresses ?? []).flatMap((a) => (s.ports ?? []).map((p) => `${a.ip}:${p.port}`)))
          return { object: o, cells: [meta(o).name, eps.length ? eps.join(',') : '<none>', age(meta(o).creationTimestamp)] }
        }), m.resourceVersion)
    case 'EndpointSlice':
      return table([col('Name', 'string', 0, 'name'), col('AddressType'), col('Ports'), col('Endpoints'), col('Age')],
        objects.map((o) => {
          const eps = ((o.endpoints ?? []) as { addresses: string[] }[]).flatMap((e) => e.addresses)
          return { object: o, cells: [meta(o).name, o.addressType, ((o.ports ?? []) as { port: number }[]).map((p) => p.port).join(','), eps.length ? eps.join(',') : '<unset>', age(meta(o).creationTimestamp)] }
        }), m.resourceVersion)
    case 'ReplicaSet':
      return table([col('Name', 'string', 0, 'name'), col('Desired', 'integer'), col('Current', 'integer'), col('Ready', 'integer'), col('Age')],
        objects.map((o) => ({ object: o, cells: [meta(o).name, spec(o).replicas, status(o).replicas ?? 0, status(o).readyReplicas ?? 0, age(meta(o).creationTimestamp)] })), m.resourceVersion)
    default:
      return table([col('Name', 'string', 0, 'name'), col('Age')], objects.map((o) => ({ object: o, cells: [meta(o).name, age(meta(o).creationTimestamp)] })), m.resourceVersion)
  }
}
