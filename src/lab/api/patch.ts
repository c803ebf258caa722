/**
 * PATCH bodies as the apiserver applies them to the current object (endpoints/handlers/patch.go):
 *  - application/json-patch+json: RFC 6902, all-or-nothing; a failed `test` or a missing path is a 422 and the
 *    object is left as it was;
 *  - application/merge-patch+json (RFC 7386) and strategic merge: a recursive merge where null deletes. The lab's
 *    objects have no lists whose strategic merge keys matter to a patch, so both merge the same way.
 * The caller then checks the patched object's resourceVersion against the stored one (a stale one is a 409).
 */
type Obj = Record<string, unknown>
export type PatchResult = { object: Obj } | { error: string }

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const clone = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T))

export function applyPatch(current: Obj, body: string, contentType: string | undefined): PatchResult | { badRequest: string } {
  let patch: unknown
  try {
    patch = JSON.parse(body)
  } catch (err) {
    return { badRequest: `error decoding patch: ${(err as Error).message}` }
  }
  if ((contentType ?? '').startsWith('application/json-patch+json')) {
    if (!Array.isArray(patch)) return { badRequest: 'json: cannot unmarshal object into Go value of type jsonpatch.Patch' }
    return applyJsonPatch(current, patch as JsonPatchOp[])
  }
  if (!isObj(patch)) return { badRequest: 'the patch is not a JSON object' }
  return { object: mergePatch(current, patch) as Obj }
}

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch)
  const out: Obj = isObj(target) ? clone(target) : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = mergePatch(out[k], v)
  }
  return out
}

interface JsonPatchOp {
  op: string
  path: string
  from?: string
  value?: unknown
}

/** RFC 6901 pointer → keys ("~1" is "/", "~0" is "~"). */
const pointer = (p: string): string[] | undefined =>
  p === '' ? [] : p.startsWith('/') ? p.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')) : undefined

function applyJsonPatch(current: Obj, ops: JsonPatchOp[]): PatchResult {
  let doc: unknown = clone(current)
  for (const o of ops) {
    const keys = pointer(o.path)
    if (!keys) return { error: `invalid JSON pointer ${JSON.stringify(o.path)}` }
    const r = step(doc, o, keys)
    if ('error' in r) return r
    doc = r.doc
  }
  return { object: doc as Obj }
}

function step(doc: unknown, o: JsonPatchOp, keys: string[]): { doc: unknown } | { error: string } {
  switch (o.op) {
    case 'test': {
      const got = get(doc, keys)
      // evanphx/json-patch's wording, as the apiserver returns it.
      return got.found && JSON.stringify(got.value) === JSON.stringify(o.value) ? { doc } : { error: `testing value ${o.path} failed: test failed` }
    }
    case 'remove': {
      const r = remove(doc, keys)
      return r ? { doc: r } : { error: `remove operation does not apply: doc is missing path: "${o.path}": missing value` }
    }
    case 'add':
    case 'replace': {
      if (o.op === 'replace' && !get(doc, keys).found) return { error: `replace operation does not apply: doc is missing key: ${o.path}: missing value` }
      const r = put(doc, keys, clone(o.value), o.op === 'add')
      return r ? { doc: r } : { error: `${o.op} operation does not apply: doc is missing path: "${o.path}": missing value` }
    }
    case 'move':
    case 'copy': {
      const from = pointer(o.from ?? '')
      const got = from ? get(doc, from) : { found: false as const }
      if (!from || !got.found) return { error: `${o.op} operation does not apply: doc is missing from path: ${o.from}: missing value` }
      const base = o.op === 'move' ? remove(doc, from) : doc
      const r = base && put(base, keys, clone(got.value), true)
      return r ? { doc: r } : { error: `${o.op} operation does not apply: doc is missing destination path: ${o.path}: missing value` }
    }
    default:
      return { error: `Unexpected kind: ${o.op}` }
  }
}

function get(doc: unknown, keys: string[]): { found: true; value: unknown } | { found: false } {
  let cur = doc
  for (const k of keys) {
    if (Array.isArray(cur) && /^\d+$/.test(k) && Number(k) < cur.length) cur = cur[Number(k)]
    else if (isObj(cur) && k in cur) cur = cur[k]
    else return { found: false }
  }
  return { found: true, value: cur }
}

/** Sets keys to value in a copy (add inserts into arrays, "-" appends); undefined when the parent is missing. */
function put(doc: unknown, keys: string[], value: unknown, insert: boolean): unknown {
  if (!keys.length) return value
  const root = clone(doc)
  const parent = get(root, keys.slice(0, -1))
  if (!parent.found) return undefined
  const last = keys[keys.length - 1]!
  const p = parent.value
  if (Array.isArray(p)) {
    const i = last === '-' ? p.length : Number(last)
    if (!Number.isInteger(i) || i < 0 || i > p.length) return undefined
    if (insert) p.splice(i, 0, value)
    else p[i] = value
  } else if (isObj(p)) p[last] = value
  else return undefined
  return root
}

function remove(doc: unknown, keys: string[]): unknown {
  if (!keys.length || !get(doc, keys).found) return undefined
  const root = clone(doc)
  const p = (get(root, keys.slice(0, -1)) as { value: unknown }).value
  const last = keys[keys.length - 1]!
  if (Array.isArray(p)) p.splice(Number(last), 1)
  else delete (p as Obj)[last]
  return root
}
