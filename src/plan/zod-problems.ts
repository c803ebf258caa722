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
    // A missing field is reported as such, whatever check the field's schema failed first (type, enum or literal).
    if (value === undefined && path.length > 0 && (issue.code === 'invalid_type' || issue.code === 'invalid_value' || issue.code === 'invalid_union')) {
      const field = path[path.length - 1]
      const only = issue.code === 'invalid_value' && issue.values.length === 1 ? ` (${String(field)}: ${String(issue.values[0])})` : ''
      out.push({ file, ...locator.at(path.slice(0, -1)), message: `${formatPath(path.slice(0, -1)) || 'document'}: missing required field "${String(field)}"${only}` })
      continue
    }
    out.push({ file, ...locator.at(path), message: `${formatPath(path) || 'document'}: ${describeIssue(issue, value, locator.scalarText(path))}` })
  }
  return out
}

/**
 * zod's stock messages read "Invalid input: expected string, received number" or "Too big: expected number to be
 * <=65535"; say instead what was expected and what the plan holds, in the plan's own words.
 */
function describeIssue(issue: z.core.$ZodIssue, value: unknown, source: string | undefined): string {
  const custom = !/^(Invalid input|Invalid option|Too big|Too small|Invalid string|Invalid)\b/.test(issue.message)
  const got = describeValue(value, source)
  switch (issue.code) {
    case 'invalid_type': {
      const expected = custom ? issue.message : `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}`
      let fix = ''
      if (issue.expected === 'string' && typeof value === 'number' && /duration/.test(issue.message)) fix = `; add a unit, e.g. ${source ?? String(value)}s`
      else if (issue.expected === 'string' && !custom && (typeof value === 'number' || typeof value === 'boolean')) fix = `; put it in quotes ("${source ?? String(value)}") to make it a string`
      else if ((issue.expected === 'number' || issue.expected === 'int') && typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim())) fix = '; remove the quotes'
      else if (issue.expected === 'array' && typeof value === 'string') fix = `; write [${value}]`
      return `${expected}, got ${got}${fix}`
    }
    case 'invalid_value': {
      const values = issue.values.map(String)
      const expected = custom ? issue.message : `expected ${values.length === 1 ? values[0] : `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`}`
      return `${expected}, got ${got}${typeof value === 'string' && values.length > 1 ? didYouMean(value, values) : ''}`
    }
    case 'too_big':
    case 'too_small': {
      if (custom) return issue.message
      const bound = issue.code === 'too_big' ? issue.maximum : issue.minimum
      const big = issue.code === 'too_big'
      if (issue.origin === 'array' || issue.origin === 'set') return `${big ? 'at most' : 'at least'} ${String(bound)} item${Number(bound) === 1 ? '' : 's'} expected, got ${Array.isArray(value) ? value.length : got}`
      if (issue.origin === 'string') return `${big ? 'at most' : 'at least'} ${String(bound)} character${Number(bound) === 1 ? '' : 's'} expected`
      const rel = big ? (issue.inclusive ? 'at most' : 'less than') : issue.inclusive ? 'at least' : 'more than'
      return `must be ${rel} ${String(bound)}, got ${typeof value === 'number' ? String(value) : got}`
    }
    case 'invalid_union':
      return custom ? `${issue.message}, got ${got}` : `expected ${issue.errors.length} kinds of value, none matched, got ${got}`
    case 'unrecognized_keys':
      return issue.message
    default:
      // custom refinements and regex formats carry our own messages: add the offending value.
      return value !== undefined && (typeof value !== 'object' || value === null) ? `${cleanMessage(issue.message)}, got ${got}` : cleanMessage(issue.message)
  }
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string', number: 'a number', int: 'a whole number', boolean: 'true or false', array: 'a list', object: 'a mapping',
}

function describeValue(value: unknown, source: string | undefined): string {
  if (value === null) return 'an empty value'
  if (Array.isArray(value)) return 'a list'
  switch (typeof value) {
    case 'string': {
      // A URL's password is never echoed, whatever else is wrong with the value.
      const shown = value.replace(/(\/\/[^/@\s:]*):[^/@\s]*@/g, '$1:***@')
      return shown.length > 80 ? `${JSON.stringify(shown.slice(0, 60))}… (${shown.length} characters)` : JSON.stringify(shown)
    }
    case 'number': return `the number ${source ?? String(value)}`
    case 'boolean': return String(value)
    case 'object': return 'a mapping'
    default: return String(value)
  }
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
