import { randomUUID } from 'node:crypto'
import type { ClusterModel } from '../fleet/cluster.js'
import { minorOf } from '../versions.js'
import { FLOWCONTROL_GROUP, flowcontrolVersions } from './discovery.js'
import { json, notFound, status, type Reply } from './http.js'
import { genericTable } from './table.js'

/**
 * flowcontrol.apiserver.k8s.io (API Priority and Fairness) in the lab: the FlowSchemas and PriorityLevelConfigurations
 * every apiserver creates at start (its mandatory and suggested configuration, written by
 * `api-priority-and-fairness-config-producer-v1`), served through each version the apiserver's minor serves, and
 * created or deleted by clients. This is the group whose versions the lab's range (1.24 → 1.36) sees removed
 * (v1beta2 in 1.29, v1beta3 in 1.32), so it is where `removed-apis` meets a real removal:
 *  - a request to a deprecated version answers with the apiserver's `Warning: 299` header and sets
 *    `apiserver_requested_deprecated_apis{group,removed_release,resource,subresource,version} 1` (deprecated.ts);
 *  - a removed version is not in discovery and its paths answer 404.
 * Objects are stored once, whatever version wrote them (as etcd holds them in the storage version) and rendered in
 * the version asked for; `managedFields` and `kubectl.kubernetes.io/last-applied-configuration` keep the version the
 * client used, as the real apiserver keeps them.
 */
type Obj = Record<string, unknown>
interface Stored { kind: 'FlowSchema' | 'PriorityLevelConfiguration'; name: string; uid: string; created: Date; resourceVersion: number; annotations: Record<string, string>; labels: Record<string, string>; spec: Obj; managedFields: Obj[] }

const RESOURCES = { flowschemas: 'FlowSchema', prioritylevelconfigurations: 'PriorityLevelConfiguration' } as const
type Resource = keyof typeof RESOURCES

const stores = new WeakMap<ClusterModel, Map<string, Stored>>()
const PRODUCER = 'api-priority-and-fairness-config-producer-v1'

/** The bootstrap configuration (k8s.io/apiserver/pkg/apis/flowcontrol/bootstrap): names, precedences, levels. */
const BOOTSTRAP_LEVELS = ['exempt', 'catch-all', 'system', 'node-high', 'leader-election', 'workload-high', 'workload-low', 'global-default']
const BOOTSTRAP_SCHEMAS: [string, number, string][] = [
  ['exempt', 1, 'exempt'], ['probes', 2, 'exempt'], ['system-leader-election', 100, 'leader-election'], ['endpoint-controller', 150, 'workload-high'],
  ['workload-leader-election', 200, 'leader-election'], ['system-node-high', 400, 'node-high'], ['system-nodes', 500, 'system'],
  ['kube-controller-manager', 800, 'workload-high'], ['kube-scheduler', 800, 'workload-high'], ['kube-system-service-accounts', 900, 'workload-high'],
  ['service-accounts', 9000, 'workload-low'], ['global-default', 9900, 'global-default'], ['catch-all', 10000, 'catch-all'],
]

function store(m: ClusterModel): Map<string, Stored> {
  let s = stores.get(m)
  if (s) return s
  s = new Map()
  const versions = flowcontrolVersions(minorOf(m.apiServerVersion))
  const producerVersion = `${FLOWCONTROL_GROUP}/${versions[0]?.version ?? 'v1'}`
  const created = new Date(Date.now() - 3600_000)
  const add = (kind: Stored['kind'], name: string, spec: Obj) => s!.set(`${kind}/${name}`, {
    kind, name, uid: randomUUID(), created, resourceVersion: m.resourceVersion, annotations: { 'apf.kubernetes.io/autoupdate-spec': 'true' }, labels: {}, spec,
    managedFields: [{ manager: PRODUCER, operation: 'Update', apiVersion: producerVersion, time: created.toISOString().replace(/\.\d+Z$/, 'Z'), fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:annotations': { '.': {}, 'f:apf.kubernetes.io/autoupdate-spec': {} } }, 'f:spec': {} } }],
  })
  for (const name of BOOTSTRAP_LEVELS) add('PriorityLevelConfiguration', name, name === 'exempt' ? { type: 'Exempt', exempt: {} } : { type: 'Limited', limited: { lendablePercent: 0, limitResponse: { type: 'Reject' } } })
  for (const [name, matchingPrecedence, level] of BOOTSTRAP_SCHEMAS) add('FlowSchema', name, { matchingPrecedence, priorityLevelConfiguration: { name: level }, ...(level === 'exempt' ? {} : { distinguisherMethod: { type: 'ByUser' } }) })
  stores.set(m, s)
  return s
}

function render(s: Stored, version: string): Obj {
  return {
    kind: s.kind, apiVersion: `${FLOWCONTROL_GROUP}/${version}`,
    metadata: {
      name: s.name, uid: s.uid, resourceVersion: String(s.resourceVersion), generation: 1, creationTimestamp: s.created.toISOString().replace(/\.\d+Z$/, 'Z'),
      ...(Object.keys(s.labels).length ? { labels: s.labels } : {}), annotations: s.annotations, managedFields: s.managedFields,
    },
    spec: s.spec,
    status: { conditions: [] },
  }
}

/** What the apiserver says in a `Warning: 299` header for a deprecated version (k8s.io/apiserver/pkg/endpoints/deprecation). */
export function deprecationWarning(version: string, kind: string, minor: number): string | undefined {
  const v = flowcontrolVersions(minor).find((x) => x.version === version)
  if (!v?.deprecatedIn || minor < v.deprecatedIn) return undefined
  return `${FLOWCONTROL_GROUP}/${version} ${kind} is deprecated in v1.${v.deprecatedIn}+, unavailable in v1.${v.removedIn}+; use ${FLOWCONTROL_GROUP}/v1 ${kind}`
}

export interface FlowcontrolRequest { method: string; version: string; resource: string; name?: string; sub?: string; accept?: string; body: () => Promise<string> }

/**
 * Serves /apis/flowcontrol.apiserver.k8s.io/VERSION/RESOURCE[/NAME]. Undefined when the path is not one of this
 * group's resources (the caller answers 404). `onDeprecated` is told of every request to a deprecated version.
 */
export async function flowcontrolRoute(m: ClusterModel, r: FlowcontrolRequest, onDeprecated: (labels: { group: string; version: string; resource: string; subresource: string; removed_release: string }) => void): Promise<Reply | undefined> {
  const minor = minorOf(m.apiServerVersion)
  const served = flowcontrolVersions(minor).find((v) => v.version === r.version)
  if (!served || !(r.resource in RESOURCES) || (r.sub !== undefined && r.sub !== 'status')) return undefined
  const kind = RESOURCES[r.resource as Resource]
  const warning = deprecationWarning(r.version, kind, minor)
  if (warning) onDeprecated({ group: FLOWCONTROL_GROUP, version: r.version, resource: r.resource, subresource: r.sub ?? '', removed_release: `1.${served.removedIn}` })
  const headers = warning ? { Warning: `299 - "${warning}"` } : undefined
  const withWarning = (reply: Reply): Reply => (headers ? { ...reply, headers } : reply)
  const s = store(m)
  const gr = `${r.resource}.${FLOWCONTROL_GROUP}`
  if (r.method === 'GET' && !r.name) {
    const items = [...s.values()].filter((x) => x.kind === kind).sort((a, b) => a.name.localeCompare(b.name)).map((x) => render(x, r.version))
    if (r.accept?.includes('as=Table')) return withWarning(json(genericTable(m, kind, items)))
    return withWarning(json({ kind: `${kind}List`, apiVersion: `${FLOWCONTROL_GROUP}/${r.version}`, metadata: { resourceVersion: String(m.resourceVersion) }, items }))
  }
  if (r.method === 'GET') {
    const x = s.get(`${kind}/${r.name}`)
    return withWarning(x ? json(render(x, r.version)) : notFound(r.resource, r.name!, FLOWCONTROL_GROUP))
  }
  if (r.method === 'POST' && !r.name) {
    let body: { metadata?: { name?: string; annotations?: Record<string, string>; labels?: Record<string, string> }; spec?: Obj }
    try {
      body = JSON.parse(await r.body())
    } catch {
      return status(400, 'BadRequest', 'the request body is not valid JSON')
    }
    const name = body.metadata?.name
    if (!name) return status(422, 'Invalid', `${kind}.${FLOWCONTROL_GROUP} "" is invalid: metadata.name: Required value: name or generateName is required`, { kind, group: FLOWCONTROL_GROUP })
    if (s.has(`${kind}/${name}`)) return status(409, 'AlreadyExists', `${gr} "${name}" already exists`, { name, group: FLOWCONTROL_GROUP, kind: r.resource })
    const now = new Date()
    const x: Stored = {
      kind, name, uid: randomUUID(), created: now, resourceVersion: m.resourceVersion + 1, annotations: body.metadata?.annotations ?? {}, labels: body.metadata?.labels ?? {}, spec: body.spec ?? {},
      managedFields: [{ manager: 'kubectl-client-side-apply', operation: 'Update', apiVersion: `${FLOWCONTROL_GROUP}/${r.version}`, time: now.toISOString().replace(/\.\d+Z$/, 'Z'), fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': {} } }],
    }
    s.set(`${kind}/${name}`, x)
    return withWarning(json(render(x, r.version), 201))
  }
  if (r.method === 'DELETE' && r.name) {
    const x = s.get(`${kind}/${r.name}`)
    if (!x) return withWarning(notFound(r.resource, r.name, FLOWCONTROL_GROUP))
    s.delete(`${kind}/${r.name}`)
    return withWarning(json({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: r.name, group: FLOWCONTROL_GROUP, kind: r.resource, uid: x.uid } }))
  }
  return status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource')
}
