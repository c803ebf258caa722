import { status, type Reply } from './http.js'

/**
 * Optimistic concurrency as the generic registry store enforces it (apiserver registry/generic/registry/store.go and
 * storage preconditions), with its messages:
 *  - an update whose metadata.resourceVersion differs from the stored one is 409 Conflict;
 *  - an update without one is applied unconditionally only where the resource's strategy allows it
 *    (AllowUnconditionalUpdate), otherwise 422 "must be specified for an update";
 *  - a PUT of a missing object creates it only where the strategy allows it (AllowCreateOnUpdate), otherwise 404;
 *  - a DELETE whose preconditions (resourceVersion, uid) do not match is 409.
 */
export interface GroupResource {
  resource: string
  group: string
}

/** The strategies of the resources the lab accepts updates for (pkg/registry/<group>/<resource>/strategy.go). */
const STRATEGIES: Record<string, { unconditionalUpdate: boolean; createOnUpdate: boolean }> = {
  leases: { unconditionalUpdate: false, createOnUpdate: true },
  nodes: { unconditionalUpdate: true, createOnUpdate: false },
  pods: { unconditionalUpdate: true, createOnUpdate: false },
}
export const allowUnconditionalUpdate = (resource: string): boolean => STRATEGIES[resource]?.unconditionalUpdate ?? true
export const allowCreateOnUpdate = (resource: string): boolean => STRATEGIES[resource]?.createOnUpdate ?? false

const qualified = (gr: GroupResource) => (gr.group ? `${gr.resource}.${gr.group}` : gr.resource)
const details = (gr: GroupResource, name: string) => ({ name, ...(gr.group ? { group: gr.group } : {}), kind: gr.resource })

export const OPTIMISTIC_LOCK = 'the object has been modified; please apply your changes to the latest version and try again'

export function conflict(gr: GroupResource, name: string, why: string): Reply {
  return status(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(gr)} "${name}": ${why}`, details(gr, name))
}

/** The check of an update's resourceVersion against the stored one; undefined when the update may go ahead. */
export function updatePrecondition(gr: GroupResource, name: string, sent: unknown, stored: string): Reply | undefined {
  if (sent === undefined || sent === null || sent === '') {
    return allowUnconditionalUpdate(gr.resource) ? undefined : invalid(qualified(gr), name, [{ field: 'metadata.resourceVersion', message: 'Invalid value: 0x0: must be specified for an update' }], gr)
  }
  return String(sent) === stored ? undefined : conflict(gr, name, OPTIMISTIC_LOCK)
}

/** DeleteOptions.preconditions (a DELETE body); undefined when they hold or are absent. */
export function deletePrecondition(gr: GroupResource, name: string, body: string, stored: { resourceVersion: string; uid: string }): Reply | undefined {
  let opts: { preconditions?: { resourceVersion?: string; uid?: string } } = {}
  try {
    opts = body.trim() ? JSON.parse(body) : {}
  } catch {
    return status(400, 'BadRequest', 'the request body is not valid JSON')
  }
  const p = opts.preconditions ?? {}
  if (p.uid && p.uid !== stored.uid) return conflict(gr, name, `Precondition failed: UID in precondition: ${p.uid}, UID in object meta: ${stored.uid}`)
  if (p.resourceVersion && p.resourceVersion !== stored.resourceVersion) {
    return conflict(gr, name, `Precondition failed: ResourceVersion in precondition: ${p.resourceVersion}, ResourceVersion in object meta: ${stored.resourceVersion}`)
  }
  return undefined
}

/** 422 Invalid as apierrors.NewInvalid writes it: `KIND "name" is invalid: field: message[, …]`, with causes. */
export function invalid(kind: string, name: string, errors: { field: string; message: string }[], gr?: GroupResource): Reply {
  const list = errors.map((e) => `${e.field}: ${e.message}`)
  const text = list.length === 1 ? list[0] : `[${list.join(', ')}]`
  const r = status(422, 'Invalid', `${kind} "${name}" is invalid: ${text}`, gr ? details(gr, name) : { name, kind: kind.split('.')[0] })
  const body = r.body as { details: Record<string, unknown> }
  body.details.causes = errors.map((e) => ({ reason: 'FieldValueInvalid', message: e.message, field: e.field }))
  return r
}

/** A JSON patch that does not apply (failed `test`, missing path): NewGenericServerResponse(422, …). */
export function patchNotApplied(): Reply {
  return status(422, 'Invalid', 'the server rejected our request due to an error in our request', {})
}
