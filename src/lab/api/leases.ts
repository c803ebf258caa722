import { randomUUID } from 'node:crypto'
import type { ClusterModel } from '../fleet/cluster.js'
import { allowCreateOnUpdate, deletePrecondition, invalid, patchNotApplied, updatePrecondition, type GroupResource } from './concurrency.js'
import { json, notFound, status, type Reply } from './http.js'
import { applyPatch } from './patch.js'

/**
 * Lease writes (coordination.k8s.io/v1; kupgrade's run lock `kube-system/kupgrade-lock` and any client's leader
 * election) as the registry handles them: create, update (PUT; create-on-update allowed, a resourceVersion required),
 * PATCH (merge, strategic or JSON patch; a stale resourceVersion in the patch is a 409), DELETE with preconditions,
 * and ValidateLease on every write. Node heartbeat Leases in kube-node-lease are the kubelets' and read-only here.
 */
type Obj = Record<string, unknown>
const LEASES: GroupResource = { resource: 'leases', group: 'coordination.k8s.io' }

export interface LeaseWrite {
  method: string
  ns: string
  name?: string
  contentType?: string
  body: string
}

const rendered = (l: { object: Obj; resourceVersion: number }): Obj => ({ ...l.object, metadata: { ...(l.object.metadata as Obj), resourceVersion: String(l.resourceVersion) } })
const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')

/** coordination/validation ValidateLeaseSpec. */
function validateLease(name: string, o: Obj): Reply | undefined {
  const spec = (o.spec ?? {}) as { leaseDurationSeconds?: unknown; leaseTransitions?: unknown }
  const errs: { field: string; message: string }[] = []
  if (typeof spec.leaseDurationSeconds === 'number' && spec.leaseDurationSeconds <= 0) errs.push({ field: 'spec.leaseDurationSeconds', message: `Invalid value: ${spec.leaseDurationSeconds}: must be greater than 0` })
  if (typeof spec.leaseTransitions === 'number' && spec.leaseTransitions < 0) errs.push({ field: 'spec.leaseTransitions', message: `Invalid value: ${spec.leaseTransitions}: must be greater than or equal to 0` })
  return errs.length ? invalid('Lease.coordination.k8s.io', name, errs, { resource: 'Lease', group: 'coordination.k8s.io' }) : undefined
}

export function writeLease(m: ClusterModel, w: LeaseWrite): Reply {
  const key = (n: string) => `${w.ns}/${n}`
  const existing = w.name ? m.leases.get(key(w.name)) : undefined
  if (w.method === 'DELETE') {
    if (!w.name || !existing) return notFound('leases', w.name ?? '', LEASES.group)
    const meta = existing.object.metadata as { uid?: string }
    const refused = deletePrecondition(LEASES, w.name, w.body, { resourceVersion: String(existing.resourceVersion), uid: meta.uid ?? '' })
    if (refused) return refused
    m.leases.delete(key(w.name))
    m.nextRv()
    return status(200, '', '', { name: w.name, group: LEASES.group, kind: 'leases' })
  }
  if (w.method === 'PATCH') {
    if (!w.name || !existing) return notFound('leases', w.name ?? '', LEASES.group)
    const current = rendered(existing)
    const r = applyPatch(current, w.body, w.contentType)
    if ('badRequest' in r) return status(400, 'BadRequest', r.badRequest)
    if ('error' in r) return patchNotApplied()
    const sent = (r.object.metadata as Obj | undefined)?.resourceVersion
    // The patched object carries the current resourceVersion unless the patch set another: that one must match.
    const refused = updatePrecondition(LEASES, w.name, sent ?? String(existing.resourceVersion), String(existing.resourceVersion)) ?? validateLease(w.name, r.object)
    if (refused) return refused
    return store(m, w.ns, w.name, r.object, existing.object.metadata as Obj, 200)
  }
  let body: Obj
  try {
    body = JSON.parse(w.body) as Obj
  } catch {
    return status(400, 'BadRequest', 'the request body is not valid JSON')
  }
  const bodyMeta = (body.metadata ?? {}) as Obj
  const target = w.name ?? (bodyMeta.name as string | undefined)
  if (!target) return invalid('Lease.coordination.k8s.io', '', [{ field: 'metadata.name', message: 'Required value: name or generateName is required' }])
  const current = m.leases.get(key(target))
  const bad = validateLease(target, body)
  if (w.method === 'POST') {
    if (current) return status(409, 'AlreadyExists', `leases.coordination.k8s.io "${target}" already exists`, { name: target, group: LEASES.group, kind: 'leases' })
    return bad ?? store(m, w.ns, target, body, undefined, 201)
  }
  if (w.method === 'PUT') {
    if (!current) return allowCreateOnUpdate('leases') ? (bad ?? store(m, w.ns, target, body, undefined, 201)) : notFound('leases', target, LEASES.group)
    const refused = updatePrecondition(LEASES, target, bodyMeta.resourceVersion, String(current.resourceVersion)) ?? bad
    return refused ?? store(m, w.ns, target, body, current.object.metadata as Obj, 200)
  }
  return status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource')
}

/** Stores the new object: system fields (uid, creationTimestamp) are kept from the stored one, or made on create. */
function store(m: ClusterModel, ns: string, name: string, body: Obj, storedMeta: Obj | undefined, code: number): Reply {
  const meta: Obj = { ...((body.metadata ?? {}) as Obj), name, namespace: ns }
  meta.uid = storedMeta?.uid ?? randomUUID()
  meta.creationTimestamp = storedMeta?.creationTimestamp ?? now()
  delete meta.resourceVersion
  const object = { ...body, kind: 'Lease', apiVersion: 'coordination.k8s.io/v1', metadata: meta }
  const rv = m.nextRv()
  m.putLease({ namespace: ns, name, object, resourceVersion: rv })
  return json(rendered({ object, resourceVersion: rv }), code)
}
