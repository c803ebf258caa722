/**
 * API discovery in both styles kubectl uses (lab findings): aggregated discovery (apidiscovery.k8s.io/v2, asked for
 * by kubectl 1.30+, answered with its exact Content-Type) and legacy discovery (APIVersions / APIGroupList /
 * APIResourceList, used by 1.27–1.29). `pods/eviction` must be listed under /api/v1 or drain falls back to DELETE.
 */
interface Resource {
  name: string
  singular: string
  kind: string
  namespaced: boolean
  verbs: string[]
  shortNames?: string[]
  categories?: string[]
}
interface GroupVersion {
  group: string // '' for core
  version: string
  resources: Resource[]
  subresources?: { parent: string; name: string; kind: string; group?: string; version?: string; verbs: string[] }[]
}

const rw = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']
export const GROUPS: GroupVersion[] = [
  {
    group: '', version: 'v1',
    resources: [
      { name: 'nodes', singular: 'node', kind: 'Node', namespaced: false, verbs: ['delete', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['no'] },
      { name: 'pods', singular: 'pod', kind: 'Pod', namespaced: true, verbs: rw, shortNames: ['po'], categories: ['all'] },
      { name: 'namespaces', singular: 'namespace', kind: 'Namespace', namespaced: false, verbs: ['get', 'list', 'watch'], shortNames: ['ns'] },
      { name: 'events', singular: 'event', kind: 'Event', namespaced: true, verbs: ['get', 'list', 'watch'], shortNames: ['ev'] },
      { name: 'services', singular: 'service', kind: 'Service', namespaced: true, verbs: ['get', 'list', 'watch'], shortNames: ['svc'], categories: ['all'] },
      { name: 'configmaps', singular: 'configmap', kind: 'ConfigMap', namespaced: true, verbs: ['get', 'list', 'watch'], shortNames: ['cm'] },
      { name: 'secrets', singular: 'secret', kind: 'Secret', namespaced: true, verbs: ['create', 'delete', 'get', 'list', 'watch'] },
      { name: 'endpoints', singular: 'endpoints', kind: 'Endpoints', namespaced: true, verbs: ['get', 'list', 'watch'], shortNames: ['ep'] },
    ],
    subresources: [
      { parent: 'pods', name: 'eviction', kind: 'Eviction', group: 'policy', version: 'v1', verbs: ['create'] },
      { parent: 'pods', name: 'log', kind: 'Pod', verbs: ['get'] },
      { parent: 'pods', name: 'status', kind: 'Pod', verbs: ['get'] },
      { parent: 'nodes', name: 'status', kind: 'Node', verbs: ['get'] },
    ],
  },
  {
    group: 'apps', version: 'v1',
    resources: [
      { name: 'deployments', singular: 'deployment', kind: 'Deployment', namespaced: true, verbs: ['get', 'list', 'watch'], shortNames: ['deploy'], categories: ['all'] },
      { name: 'daemonsets', singular: 'daemonset', kind: 'DaemonSet', namespaced: true, verbs: ['get', 'list', 'watch'], shortNames: ['ds'], categories: ['all'] },
      { name: 'replicasets', singular: 'replicaset', kind: 'ReplicaSet', namespaced: true, verbs: ['get', 'list', 'watch'], shortNames: ['rs'], categories: ['all'] },
    ],
  },
  {
    group: 'policy', version: 'v1',
    resources: [{ name: 'poddisruptionbudgets', singular: 'poddisruptionbudget', kind: 'PodDisruptionBudget', namespaced: true, verbs: ['get', 'list', 'watch'], shortNames: ['pdb'] }],
  },
  {
    group: 'discovery.k8s.io', version: 'v1',
    resources: [{ name: 'endpointslices', singular: 'endpointslice', kind: 'EndpointSlice', namespaced: true, verbs: ['get', 'list', 'watch'] }],
  },
  {
    group: 'coordination.k8s.io', version: 'v1',
    resources: [{ name: 'leases', singular: 'lease', kind: 'Lease', namespaced: true, verbs: rw }],
  },
]

/**
 * API Priority and Fairness, the one built-in group whose versions come and go inside the range the lab runs: which
 * versions an apiserver of a minor serves, preferred first (flowcontrol v1beta1 1.20–1.25, v1beta2 1.23–1.28,
 * v1beta3 1.26–1.31, v1 from 1.29; the Deprecated API Migration Guide). A version past its removal is not served:
 * discovery leaves it out and its paths answer 404, as the real apiserver does.
 */
export const FLOWCONTROL_GROUP = 'flowcontrol.apiserver.k8s.io'
export interface ServedVersion { version: string; deprecatedIn?: number; removedIn?: number }
const FLOWCONTROL_VERSIONS: (ServedVersion & { from: number })[] = [
  { version: 'v1', from: 29 },
  { version: 'v1beta3', from: 26, deprecatedIn: 29, removedIn: 32 },
  { version: 'v1beta2', from: 23, deprecatedIn: 26, removedIn: 29 },
  { version: 'v1beta1', from: 20, deprecatedIn: 23, removedIn: 26 },
]
export const flowcontrolVersions = (minor: number): ServedVersion[] =>
  FLOWCONTROL_VERSIONS.filter((v) => minor >= v.from && (v.removedIn === undefined || minor < v.removedIn)).map(({ from: _, ...v }) => v)

const flowcontrolGroups = (minor: number): GroupVersion[] => flowcontrolVersions(minor).map(({ version }) => ({
  group: FLOWCONTROL_GROUP, version,
  resources: [
    { name: 'flowschemas', singular: 'flowschema', kind: 'FlowSchema', namespaced: false, verbs: rw },
    { name: 'prioritylevelconfigurations', singular: 'prioritylevelconfiguration', kind: 'PriorityLevelConfiguration', namespaced: false, verbs: rw },
  ],
  subresources: [
    { parent: 'flowschemas', name: 'status', kind: 'FlowSchema', verbs: ['get', 'patch', 'update'] },
    { parent: 'prioritylevelconfigurations', name: 'status', kind: 'PriorityLevelConfiguration', verbs: ['get', 'patch', 'update'] },
  ],
}))

/** Every group-version an apiserver of this minor serves (the fixed groups, plus flowcontrol's versions of that minor). */
export const groupsFor = (minor: number): GroupVersion[] => [...GROUPS, ...flowcontrolGroups(minor)]

export const AGGREGATED_V2_CONTENT_TYPE = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList'

interface MediaType { type: string; params: Record<string, string> }
export function parseAccept(accept: string | undefined): MediaType[] {
  return (accept ?? '').split(',').map((part) => {
    const [type, ...params] = part.split(';').map((s) => s.trim())
    return { type: type ?? '', params: Object.fromEntries(params.map((p) => p.split('=').map((s) => s.trim()) as [string, string])) }
  })
}

/** True when the client accepts aggregated discovery v2 (exactly v2, not v2beta1). */
export const wantsAggregated = (accept: string | undefined): boolean =>
  parseAccept(accept).some((m) => m.params.g === 'apidiscovery.k8s.io' && m.params.v === 'v2' && m.params.as === 'APIGroupDiscoveryList')

/** True when the client asks for a meta.k8s.io Table (plain `kubectl get`). */
export const wantsTable = (accept: string | undefined): boolean =>
  parseAccept(accept).some((m) => m.params.as === 'Table' && m.params.g === 'meta.k8s.io')

const groupVersion = (g: GroupVersion): string => (g.group ? `${g.group}/${g.version}` : g.version)

export function legacyApi(serverAddress: string): object {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] }
}

/** Group-versions by group, in serving order (the first is the preferred version). */
function byGroup(gvs: GroupVersion[]): [string, GroupVersion[]][] {
  const out = new Map<string, GroupVersion[]>()
  for (const g of gvs) out.set(g.group, [...(out.get(g.group) ?? []), g])
  return [...out]
}

export function legacyApis(minor: number): object {
  return {
    kind: 'APIGroupList', apiVersion: 'v1',
    groups: byGroup(groupsFor(minor).filter((g) => g.group)).map(([name, gvs]) => ({
      name, versions: gvs.map((g) => ({ groupVersion: groupVersion(g), version: g.version })), preferredVersion: { groupVersion: groupVersion(gvs[0]!), version: gvs[0]!.version },
    })),
  }
}

export function resourceList(group: string, version: string, minor: number): object | undefined {
  const g = groupsFor(minor).find((x) => x.group === group && x.version === version)
  if (!g) return undefined
  const resources: object[] = []
  for (const r of g.resources) {
    resources.push({ name: r.name, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: r.verbs, ...(r.shortNames ? { shortNames: r.shortNames } : {}), ...(r.categories ? { categories: r.categories } : {}) })
    for (const s of g.subresources ?? []) {
      if (s.parent !== r.name) continue
      resources.push({ name: `${r.name}/${s.name}`, singularName: '', namespaced: r.namespaced, ...(s.group ? { group: s.group, version: s.version } : {}), kind: s.kind, verbs: s.verbs })
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: groupVersion(g), resources }
}

/** Aggregated discovery for `/api` (core) or `/apis` (named groups): one item per group, its versions preferred first. */
export function aggregated(core: boolean, minor: number): object {
  const items = byGroup(groupsFor(minor).filter((g) => (core ? !g.group : g.group))).map(([name, gvs]) => ({
    metadata: { ...(name ? { name } : {}), creationTimestamp: null },
    versions: gvs.map((g) => ({
      version: g.version,
      freshness: 'Current',
      resources: g.resources.map((r) => ({
        resource: r.name,
        responseKind: { group: g.group, version: g.version, kind: r.kind },
        scope: r.namespaced ? 'Namespaced' : 'Cluster',
        singularResource: r.singular,
        verbs: r.verbs,
        ...(r.shortNames ? { shortNames: r.shortNames } : {}),
        ...(r.categories ? { categories: r.categories } : {}),
        subresources: (g.subresources ?? []).filter((s) => s.parent === r.name).map((s) => ({
          subresource: s.name,
          responseKind: { group: s.group ?? g.group, version: s.version ?? g.version, kind: s.kind },
          verbs: s.verbs,
        })),
      })),
    })),
  }))
  return { kind: 'APIGroupDiscoveryList', apiVersion: 'apidiscovery.k8s.io/v2', metadata: {}, items }
}

/**
 * A minimal OpenAPI v3 index. `kubectl create -f` / `replace -f` validate strictly by default: kubectl looks in
 * /openapi/v3 for a PATCH operation of the object's kind that takes `fieldValidation`, and when it finds one it leaves
 * validation to the server instead of downloading full schemas ("failed to download openapi" otherwise). So each
 * group-version document lists, per kind, just that operation.
 */
const gvPath = (g: GroupVersion): string => (g.group ? `apis/${g.group}/${g.version}` : `api/${g.version}`)

export function openApiRoot(minor: number): object {
  return { paths: Object.fromEntries(groupsFor(minor).map((g) => [gvPath(g), { serverRelativeURL: `/openapi/v3/${gvPath(g)}?hash=kupgrade-lab` }])) }
}

export function openApiGroupVersion(path: string, minor: number): object | undefined {
  const g = groupsFor(minor).find((x) => gvPath(x) === path)
  if (!g) return undefined
  const paths: Record<string, object> = {}
  for (const r of g.resources) {
    const p = `/${gvPath(g)}${r.namespaced ? '/namespaces/{namespace}' : ''}/${r.name}/{name}`
    paths[p] = {
      patch: {
        operationId: `patch${r.kind}`,
        'x-kubernetes-group-version-kind': { group: g.group, version: g.version, kind: r.kind },
        parameters: [{ name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } }],
        responses: { '200': { description: 'OK' } },
      },
    }
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'unversioned' }, paths, components: { schemas: {} } }
}
