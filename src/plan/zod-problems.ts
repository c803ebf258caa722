import type { z } from 'zod'
import type { Problem } from '../errors.js'
import { formatPath, type Locator, type Path } from './locate.js'
import { didYouMean } from './suggest.js'

/** Turns zod issues into located problems with messages a person can act on. */
export function zodProblems(
  file: string, issues: z.core.$ZodIssue[], raw: unknown, schema: z.ZodType, locator: Locator,
  /** Where `schema` sits in the document, when it validates a part of it (a gate's parameters). */
  prefix: Path = [],
): Problem[] {
  const out: Problem[] = []
  for (const issue of issues) {
    const local = issue.path as (string | number)[]
    const path = [...prefix, ...local]
    if (issue.code === 'unrecognized_keys') {
      const allowed = keysAt(schema, local)
      for (const key of issue.keys) {
        const where = locator.at([...path, key], { key: true })
        out.push({ file, ...where, message: `${formatPath([...path, key])}: unknown field "${key}"${didYouMean(key, allowed)}` })
      }
      continue
    }
    const value = valueAt(raw, path)
    if (issue.code === 'invalid_type' && value === undefined && path.length > 0) {
      const field = path[path.length - 1]
      out.push({ file, ...locator.at(path.slice(0, -1)), message: `${formatPath(path.slice(0, -1)) || 'document'}: missing required field "${String(field)}"` })
      continue
    }
    const message = issue.code === 'invalid_value' && 'values' in issue && value !== undefined
      ? `${cleanMessage(issue.message)}, got ${JSON.stringify(value)}`
      : cleanMessage(issue.message)
    out.push({ file, ...locator.at(path), message: `${formatPath(path) || 'document'}: ${message}` })
  }
  return out
}

// zod's stock messages say "Invalid input: expected string, received number"; keep the useful half.
const cleanMessage = (m: string): string => m.replace(/^Invalid input: /, '').replace(/^Invalid option: /, '')

const valueAt = (raw: unknown, path: Path): unknown =>
  path.reduce<unknown>((v, seg) => (v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[seg] : undefined), raw)

/** The field names an object schema allows at a data path, for "did you mean". */
export function keysAt(schema: z.ZodType, path: Path): string[] {
  let s: unknown = schema
  for (const seg of [...path, null]) {
    s = unwrap(s)
    const def = (s as { _zod?: { def?: Record<string, unknown> } })?._zod?.def
    if (!def) return []
    if (seg === null) return def.type === 'object' ? Object.keys(def.shape as object) : []
    if (def.type === 'object') s = (def.shape as Record<string, unknown>)[String(seg)]
    else if (def.type === 'array') s = def.element
    else if (def.type === 'union') s = (def.options as unknown[]).find((o) => unwrapDef(o)?.type === 'object')
    else return []
  }
  return []
}

const unwrapDef = (s: unknown) => (unwrap(s) as { _zod?: { def?: Record<string, unknown> } })?._zod?.def

function unwrap(s: unknown): unknown {
  for (;;) {
    const def = (s as { _zod?: { def?: Record<string, unknown> } })?._zod?.def
    if (!def) return s
    if (['optional', 'default', 'prefault', 'nullable', 'readonly', 'catch'].includes(def.type as string)) s = def.innerType
    else if (def.type === 'pipe') s = def.in
    else return s
  }
}
