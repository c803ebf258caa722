import { randomUUID } from 'node:crypto'
import type { ClusterModel } from '../fleet/cluster.js'
import { renderNode, renderPod } from '../fleet/render.js'
import { kubeletVersion, minorOf } from '../versions.js'
import { collections, type Collection, type Item } from './collections.js'
import { aggregated, AGGREGATED_V2_CONTENT_TYPE, legacyApi, legacyApis, openApiGroupVersion, openApiRoot, resourceList, wantsAggregated, wantsTable } from './discovery.js'
import { FLOWCONTROL_GROUP } from './discovery.js'
import { flowcontrolRoute } from './flowcontrol.js'
import { health } from './health.js'
import { apiserverMetrics, METRICS_CONTENT_TYPE, recordDeprecatedRequest } from './metrics.js'
import { json, matchFields, matchLabels, notFound, status, text, type Reply } from './http.js'
import { podLogs } from './logs.js'
import { deletePrecondition, patchNotApplied, updatePrecondition } from './concurrency.js'
import { writeLease } from './leases.js'
import { applyPatch } from './patch.js'
import { bareLogText } from '../pods/render.js'
import { parseBarePodSpec } from '../pods/spec.js'

/**
 * The lab apiserver's routes. Paths only (queries such as `?timeout=32s` and `?limit=500` are ignored), as the lab
 * findings recommend. Reads are served generically from collections.ts; the writes kubectl and kupgrade need are
 * explicit: node PATCH (cordon) and DELETE, pod eviction / delete / create (pods that run their command, src/lab/pods/), Lease create / update / delete.
 * Writes check resourceVersions and DELETE preconditions as the registry does (concurrency.ts); PATCH bodies are
 * applied by patch.ts.
 */
type Obj = Record<string, unknown>
export interface Request {
  method: string
  path: string
  query: URLSearchParams
  accept?: string
  contentType?: string
  body: () => Promise<string>
}
/** A watch: the server streams it (server.ts); routes only say what to watch. */
export interface WatchReply {
  watch: { collection: Collection; ns?: string; name?: string; select: (i: Item) => boolean }
}

export async function route(m: ClusterModel, r: Request): Promise<Reply | WatchReply> {
  const p = r.path.replace(/\/+$/, '') || '/'
  // Indented, as the apiserver writes /version (responsewriters.WriteRawJSON: json.MarshalIndent with two spaces);
  // objects are compact. A client that greps `"gitVersion": "v…"` from `kubectl get --raw /version` sees the same.
  if (p === '/version') return json(`${JSON.stringify(versionInfo(m), null, 2)}\n`)
  const h = health(m, p, r.query)
  if (h) return h
  const minor = minorOf(m.apiServerVersion)
  if (p === '/metrics' && r.method === 'GET') return { code: 200, body: apiserverMetrics(m), contentType: METRICS_CONTENT_TYPE }
  if (p === '/api') return wantsAggregated(r.accept) ? json(aggregated(true, minor), 200, AGGREGATED_V2_CONTENT_TYPE) : json(legacyApi(`${m.info.apiAddress}:${m.info.apiPort}`))
  if (p === '/openapi/v3') return json(openApiRoot(minor))
  if (p.startsWith('/openapi/v3/')) {
    const doc = openApiGroupVersion(p.slice('/openapi/v3/'.length), minor)
    return doc ? json(doc) : status(404, 'NotFound', 'the server could not find the requested resource')
  }
  if (p === '/apis') return wantsAggregated(r.accept) ? json(aggregated(false, minor), 200, AGGREGATED_V2_CONTENT_TYPE) : json(legacyApis(minor))

  const seg = p.split('/').slice(1)
  let group: string
  let version: string
  let rest: string[]
  if (seg[0] === 'api' && seg.length >= 2) [group, version, rest] = ['', seg[1]!, seg.slice(2)]
  else if (seg[0] === 'apis' && seg.length >= 3) [group, version, rest] = [seg[1]!, seg[2]!, seg.slice(3)]
  else return status(404, 'NotFound', 'the server could not find the requested resource')
  if (rest.length === 0) {
    const list = resourceList(group, version, minor)
    return list ? json(list) : status(404, 'NotFound', 'the server could not find the requested resource')
  }
  // /namespaces/NS/RES[/NAME[/SUB]] or /RES[/NAME[/SUB]]; /namespaces[/NAME] is the namespace resource itself.
  let ns: string | undefined
  if (rest[0] === 'namespaces' && rest.length >= 3) [ns, rest] = [rest[1], rest.slice(2)]
  const [resource, name, sub] = rest as [string, string?, string?]
  if (group === FLOWCONTROL_GROUP) {
    const reply = ns === undefined ? await flowcontrolRoute(m, { method: r.method, version, resource, ...(name ? { name } : {}), ...(sub ? { sub } : {}), ...(r.accept ? { accept: r.accept } : {}), body: r.body }, (l) => recordDeprecatedRequest(m, l)) : undefined
    return reply ?? status(404, 'NotFound', 'the server could not find the requested resource')
  }
  const cols = collections(m)
  const c = cols[resource]
  if (!c || c.group !== group || c.version !== version) return status(404, 'NotFound', 'the server could not find the requested resource')

  if (r.method === 'GET' && sub === 'log' && resource === 'pods') return podLog(m, ns ?? 'default', name!, r.query)
  if (r.method === 'POST' && sub === 'eviction' && resource === 'pods') return evict(m, ns ?? 'default', name!)
  if (r.method === 'PATCH' && resource === 'nodes' && name && !sub) return patchNode(m, name, r)
  if (r.method === 'DELETE' && resource === 'nodes' && name && !sub) return deleteNode(m, name, await r.body())
  if (resource === 'secrets' && ns && r.method === 'POST' && !name) return createSecret(m, ns, r)
  if (resource === 'secrets' && ns && r.method === 'DELETE' && name && !sub) return deleteSecret(m, ns, name)
  if (resource === 'pods' && r.method === 'DELETE' && name) return deletePod(m, ns ?? 'default', name, await r.body())
  if (resource === 'pods' && r.method === 'POST' && !name) return createPod(m, ns ?? 'default', r)
  if (resource === 'leases' && r.method !== 'GET') {
    if (ns === 'kube-node-lease') return status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource')
    return writeLease(m, { method: r.method, ns: ns ?? 'default', name, contentType: r.contentType, body: await r.body() })
  }
  if (r.method !== 'GET') return status(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`)

  const select = (i: Item) => matchLabels(r.query.get('labelSelector'), i.labels) && matchFields(r.query.get('fieldSelector'), i.fields)
  const watching = r.query.get('watch') === 'true' || r.query.get('watch') === '1'
  if (watching) return { watch: { collection: c, ns, name, select } }
  if (name) {
    const found = c.items(c.namespaced ? ns : undefined).find((i) => i.name === name)
    if (!found) return notFound(resource, name, group)
    return json(wantsTable(r.accept) ? c.table([found]) : found.object)
  }
  const items = c.items(c.namespaced ? ns : undefined).filter(select)
  if (wantsTable(r.accept)) return json(c.table(items))
  return json({ kind: `${c.kind}List`, apiVersion: group ? `${group}/${version}` : version, metadata: { resourceVersion: String(m.resourceVersion) }, items: items.map((i) => i.object) })
}

function versionInfo(m: ClusterModel): object {
  const v = m.apiServerVersion
  const [major, minor] = v.slice(1).split('.')
  return {
    major, minor, gitVersion: kubeletVersion(m.distribution, v), gitCommit: 'kupgrade-lab', gitTreeState: 'clean',
    buildDate: '2024-01-01T00:00:00Z', goVersion: 'go1.22.5', compiler: 'gc', platform: 'linux/amd64',
  }
}

function podLog(m: ClusterModel, ns: string, name: string, q: URLSearchParams): Reply {
  const p = m.pods.get(`${ns}/${name}`)
  if (!p) return notFound('pods', name)
  if (!p.nodeName || (p.bare && !p.bare.startedAt)) return status(400, 'BadRequest', `container "${p.container}" in pod "${name}" is waiting to start: ContainerCreating`)
  if (p.bare) return text(bareLogText(p, Number(q.get('tailLines'))))
  let lines = podLogs(m, p)
  const tail = Number(q.get('tailLines'))
  if (tail > 0) lines = lines.slice(-tail)
  return text(lines.length ? `${lines.join('\n')}\n` : '')
}

function evict(m: ClusterModel, ns: string, name: string): Reply {
  const r = m.evict(ns, name)
  if (r.code === 201) return status(201, '', '')
  if (r.code === 429) {
    return { code: 429, body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: r.message, reason: r.reason, details: { causes: [{ reason: 'DisruptionBudget', message: `The disruption budget needs more healthy pods and the disruption is not allowed.` }] }, code: 429 } }
  }
  return r.code === 404 ? notFound('pods', name) : status(r.code, r.reason, r.message)
}

function deletePod(m: ClusterModel, ns: string, name: string, body: string): Reply {
  const found = m.pods.get(`${ns}/${name}`)
  if (!found) return notFound('pods', name)
  const refused = deletePrecondition({ resource: 'pods', group: '' }, name, body, { resourceVersion: String(found.resourceVersion), uid: found.uid })
  if (refused) return refused
  const p = m.deletePod(ns, name)
  return p ? json(renderPod(m, p)) : notFound('pods', name)
}

/** `kubectl delete node NAME`: the registry deletes at once (Nodes carry no finalizers) and returns the object. */
function deleteNode(m: ClusterModel, name: string, body: string): Reply {
  const n = m.nodes.get(name)
  if (!n?.isNode) return notFound('nodes', name)
  const stored = renderNode(m, n)
  const refused = deletePrecondition({ resource: 'nodes', group: '' }, name, body, { resourceVersion: (stored.metadata as Obj).resourceVersion as string, uid: n.uid })
  if (refused) return refused
  const deleted = m.deleteNode(name, (x) => renderNode(m, x))
  return deleted ? json(deleted) : notFound('nodes', name)
}

/** Secrets created through the API (kubeadm's and k0s's bootstrap tokens): stored as sent, `stringData` folded into
 *  `data` as the registry does. */
async function createSecret(m: ClusterModel, ns: string, r: Request): Promise<Reply> {
  let body: { metadata?: { name?: string; generateName?: string; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: unknown[] }; type?: string; data?: Record<string, string>; stringData?: Record<string, string> }
  try {
    body = JSON.parse(await r.body())
  } catch {
    return status(400, 'BadRequest', 'the request body is not valid JSON')
  }
  const name = body.metadata?.name ?? (body.metadata?.generateName ? `${body.metadata.generateName}${randomUUID().slice(0, 5)}` : undefined)
  if (!name) return status(422, 'Invalid', 'Secret "" is invalid: metadata.name: Required value: name or generateName is required')
  const exists = collections(m).secrets!.items(ns).some((i) => i.name === name)
  if (exists) return status(409, 'AlreadyExists', `secrets "${name}" already exists`, { name, kind: 'secrets' })
  const data: Record<string, string> = { ...(body.data ?? {}) }
  for (const [k, v] of Object.entries(body.stringData ?? {})) data[k] = Buffer.from(v).toString('base64')
  const object: Obj = {
    kind: 'Secret', apiVersion: 'v1',
    metadata: { name, namespace: ns, uid: randomUUID(), creationTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'), ...(body.metadata?.labels ? { labels: body.metadata.labels } : {}), ...(body.metadata?.annotations ? { annotations: body.metadata.annotations } : {}), ...(body.metadata?.ownerReferences ? { ownerReferences: body.metadata.ownerReferences } : {}) },
    data, type: body.type ?? 'Opaque',
  }
  if (r.query.get('dryRun')) return json(object, 201)
  m.storedSecrets.set(`${ns}/${name}`, { object, resourceVersion: m.nextRv() })
  return json({ ...object, metadata: { ...(object.metadata as Obj), resourceVersion: String(m.resourceVersion) } }, 201)
}

/** Deleting a Secret: a stored one, or a k3s node-password Secret (the next agent of that name sets a new one). */
function deleteSecret(m: ClusterModel, ns: string, name: string): Reply {
  const found = collections(m).secrets!.items(ns).find((i) => i.name === name)
  if (!found) return notFound('secrets', name)
  const node = ns === 'kube-system' && name.endsWith('.node-password.k3s') ? name.slice(0, -'.node-password.k3s'.length) : undefined
  if (m.storedSecrets.delete(`${ns}/${name}`) || (node !== undefined && m.nodePasswords.delete(node))) {
    m.nextRv()
    return json(found.object)
  }
  return status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource')
}

async function createPod(m: ClusterModel, ns: string, r: Request): Promise<Reply> {
  let body: { metadata?: { name?: string; generateName?: string; labels?: Record<string, string> }; spec?: Record<string, unknown> }
  try {
    body = JSON.parse(await r.body())
  } catch {
    return status(400, 'BadRequest', 'the request body is not valid JSON')
  }
  const name = body.metadata?.name ?? (body.metadata?.generateName ? `${body.metadata.generateName}${randomUUID().slice(0, 5)}` : undefined)
  if (!name) return status(422, 'Invalid', 'Pod "" is invalid: metadata.name: Required value: name or generateName is required')
  if (r.query.get('dryRun')) return json({ kind: 'Pod', apiVersion: 'v1', metadata: { name, namespace: ns }, spec: body.spec ?? {} }, 201)
  const parsed = parseBarePodSpec(name, body.spec ?? {})
  if ('error' in parsed) return status(422, 'Invalid', parsed.error, { name, kind: 'Pod' })
  const p = m.createBarePod(ns, name, parsed.spec, body.spec ?? {}, body.metadata?.labels ?? {})
  if (p === 'exists') return status(409, 'AlreadyExists', `pods "${name}" already exists`, { name, kind: 'pods' })
  return json(renderPod(m, p), 201)
}

/** Node PATCH (cordon, labels, annotations) applied to the rendered Node; a stale resourceVersion is a 409. */
async function patchNode(m: ClusterModel, name: string, r: Request): Promise<Reply> {
  const n = m.nodes.get(name)
  if (!n?.isNode) return notFound('nodes', name)
  const current = renderNode(m, n)
  const patched = applyPatch(current, await r.body(), r.contentType)
  if ('badRequest' in patched) return status(400, 'BadRequest', patched.badRequest)
  if ('error' in patched) return patchNotApplied()
  const stored = (current.metadata as Obj).resourceVersion as string
  const refused = updatePrecondition({ resource: 'nodes', group: '' }, name, (patched.object.metadata as Obj | undefined)?.resourceVersion ?? stored, stored)
  if (refused) return refused
  const change: { unschedulable?: boolean | null; labels?: Record<string, string | null>; annotations?: Record<string, string | null> } = {}
  const spec = (patched.object.spec ?? {}) as { unschedulable?: boolean }
  if (Boolean(spec.unschedulable) !== n.unschedulable) change.unschedulable = spec.unschedulable === true ? true : null
  const meta = (patched.object.metadata ?? {}) as { labels?: Record<string, string>; annotations?: Record<string, string> }
  const before = current.metadata as { labels: Record<string, string>; annotations: Record<string, string> }
  change.labels = mapChanges(before.labels, meta.labels ?? {})
  change.annotations = mapChanges(before.annotations, meta.annotations ?? {})
  const updated = m.patchNode(name, change)
  return updated ? json(renderNode(m, updated)) : notFound('nodes', name)
}

/** What changed between two string maps, as a merge patch would say it (null deletes). */
function mapChanges(before: Record<string, string>, after: Record<string, string>): Record<string, string | null> {
  const out: Record<string, string | null> = {}
  for (const [k, v] of Object.entries(after)) if (before[k] !== v) out[k] = v
  for (const k of Object.keys(before)) if (!(k in after)) out[k] = null
  return out
}
