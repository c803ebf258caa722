import type { ClusterModel } from '../fleet/cluster.js'
import {
  namespaces, renderDaemonSet, renderDeployment, renderEvent, renderNamespace, renderK0sControllerLease, renderNode, renderNodeLease, renderPdb, renderPod, services,
} from '../fleet/render.js'
import type { NodeState, PodState } from '../fleet/types.js'
import { configMaps, secrets } from '../fleet/config-objects.js'
import { kubernetesEndpointSlice, kubernetesEndpoints } from '../fleet/endpoints.js'
import { renderReplicaSet } from '../fleet/replicasets.js'
import { genericTable, nodeTable, podTable } from './table.js'

/**
 * Every readable resource as a collection: how to enumerate it (optionally in one namespace), the fields its
 * fieldSelector can use, and how to print it as a Table. The router serves list, get and watch from these alone.
 */
type Obj = Record<string, unknown>
export interface Item {
  name: string
  namespace?: string
  object: Obj
  labels: Record<string, string>
  fields: Record<string, string | undefined>
  state?: unknown
}
export interface Collection {
  kind: string
  group: string
  version: string
  namespaced: boolean
  items(ns?: string): Item[]
  table(items: Item[]): Obj
}

const meta = (o: Obj) => o.metadata as { name: string; namespace?: string; labels?: Record<string, string> }
const item = (o: Obj, fields: Record<string, string | undefined> = {}, state?: unknown): Item => ({
  name: meta(o).name, namespace: meta(o).namespace, object: o, labels: meta(o).labels ?? {},
  fields: { 'metadata.name': meta(o).name, 'metadata.namespace': meta(o).namespace, ...fields }, state,
})
const inNs = (ns: string | undefined) => (i: Item) => ns === undefined || i.namespace === ns

export function collections(m: ClusterModel): Record<string, Collection> {
  const generic = (kind: string, group: string, version: string, namespaced: boolean, list: () => Item[]): Collection => ({
    kind, group, version, namespaced, items: (ns) => list().filter(inNs(ns)), table: (items) => genericTable(m, kind, items.map((i) => i.object)),
  })
  return {
    nodes: {
      kind: 'Node', group: '', version: 'v1', namespaced: false,
      items: () => m.kubeNodes().map((n) => item(renderNode(m, n), {}, n)),
      table: (items) => nodeTable(m, items.map((i) => ({ state: i.state as NodeState, object: i.object }))),
    },
    pods: {
      kind: 'Pod', group: '', version: 'v1', namespaced: true,
      items: (ns) => [...m.pods.values()].filter((p) => ns === undefined || p.namespace === ns)
        .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name))
        .map((p) => item(renderPod(m, p), { 'spec.nodeName': p.nodeName ?? '', 'status.phase': p.phase }, p)),
      table: (items) => podTable(m, items.map((i) => ({ state: i.state as PodState, object: i.object }))),
    },
    namespaces: generic('Namespace', '', 'v1', false, () => namespaces(m).map((n) => item(renderNamespace(m, n), { 'status.phase': 'Active' }))),
    events: generic('Event', '', 'v1', true, () => m.events.map((e) => item(renderEvent(e), { 'involvedObject.name': e.involved.name, 'involvedObject.kind': e.involved.kind, 'involvedObject.namespace': e.involved.namespace ?? '', 'involvedObject.uid': e.involved.uid, reason: e.reason, type: e.type }))),
    services: generic('Service', '', 'v1', true, () => services(m).map((s) => item(s))),
    deployments: generic('Deployment', 'apps', 'v1', true, () => [...m.deployments.values()].map((d) => item(renderDeployment(m, d)))),
    daemonsets: generic('DaemonSet', 'apps', 'v1', true, () => [...m.daemonSets.values()].map((d) => item(renderDaemonSet(m, d)))),
    poddisruptionbudgets: generic('PodDisruptionBudget', 'policy', 'v1', true, () => [...m.pdbs.values()].map((b) => item(renderPdb(m, b)))),
    configmaps: generic('ConfigMap', '', 'v1', true, () => configMaps(m).map((o) => item(o))),
    secrets: generic('Secret', '', 'v1', true, () => secrets(m).map((o) => item(o, { type: o.type as string }))),
    endpoints: generic('Endpoints', '', 'v1', true, () => [item(kubernetesEndpoints(m))]),
    endpointslices: generic('EndpointSlice', 'discovery.k8s.io', 'v1', true, () => [item(kubernetesEndpointSlice(m))]),
    replicasets: generic('ReplicaSet', 'apps', 'v1', true, () => [...m.deployments.values()].map((d) => item(renderReplicaSet(m, d)))),
    leases: generic('Lease', 'coordination.k8s.io', 'v1', true, () => [
      ...m.kubeNodes().map((n) => item(renderNodeLease(m, n))),
      ...(m.distribution === 'k0s' ? [...m.nodes.values()].filter((n) => n.role === 'control-plane').map((n) => item(renderK0sControllerLease(m, n))) : []),
      ...[...m.leases.values()].map((l) => item({ ...l.object, metadata: { ...(l.object.metadata as Obj), resourceVersion: String(l.resourceVersion) } })),
    ]),
  }
}
