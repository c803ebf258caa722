/**
 * Values from plans, clusters and nodes are echoed in messages and reports. A newline in one could forge a
 * `plans/prod.yaml:1:1: …` line that a CI problem matcher turns into an annotation, and ESC/BEL sequences could
 * rewrite the terminal. So every output path escapes control characters: C0 (but tab), DEL, C1, the Unicode line
 * and paragraph separators, and the bidirectional overrides that make text read differently than it is.
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_NEWLINE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\u001b': '\\e', '\u0007': '\\a', '\b': '\\b', '\f': '\\f', '\v': '\\v', '\u0000': '\\0' }

const visible = (c: string): string => {
  const named = NAMED[c]
  if (named) return named
  const code = c.charCodeAt(0)
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`
}

/** One line, whatever it held: every control character (newlines too) shown as an escape such as `\n` or `\e`. */
export const escapeControl = (text: string): string => text.replace(CONTROL, visible)

/** Several lines kept as lines (a command's stderr tail, a rendered table), every other control character escaped. */
export const escapeControlKeepLines = (text: string): string => text.replace(/\r\n/g, '\n').replace(CONTROL_BUT_NEWLINE, visible)

const ANY_CONTROL = new RegExp(CONTROL.source)

/**
 * A copy of plain data (an ExecutionPlan, fleet facts) with every string escaped, for the renderers that print text:
 * they then need no care of their own, and add their own colour codes after. Strings without control characters are
 * kept as they are (the common case costs a test, not a copy). An object or array met again (an ExecutionPlan's
 * steps share their params, and list each step twice) is escaped once: the copy shares it the same way.
 */
export function escapeDeep<T>(value: T, o: { keepLines?: boolean } = {}): T {
  return escapeShared(value, new Map(), o.keepLines ? keepLines : oneLine)
}

const ANY_CONTROL_BUT_NEWLINE = new RegExp(CONTROL_BUT_NEWLINE.source)
const oneLine = (s: string): string => (ANY_CONTROL.test(s) ? escapeControl(s) : s)
const keepLines = (s: string): string => (ANY_CONTROL_BUT_NEWLINE.test(s) || s.includes('\r') ? escapeControlKeepLines(s) : s)

function escapeShared<T>(value: T, done: Map<object, unknown>, str: (s: string) => string): T {
  if (typeof value === 'string') return str(value) as T
  if (value === null || typeof value !== 'object') return value
  const before = done.get(value)
  if (before !== undefined) return before as T
  let result: unknown = value
  if (Array.isArray(value)) {
    let out: unknown[] | undefined
    for (let i = 0; i < value.length; i++) {
      const v = escapeShared(value[i] as unknown, done, str)
      if (v !== value[i] && !out) out = value.slice(0, i)
      out?.push(v)
    }
    result = out ?? value
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    let out: Record<string, unknown> | undefined
    const record = value as Record<string, unknown>
    for (const k of Object.keys(record)) {
      const v = record[k]
      const e = escapeShared(v, done, str)
      const ek = escapeShared(k, done, str)
      if ((e !== v || ek !== k) && !out) out = { ...value } as Record<string, unknown>
      if (out) {
        if (ek !== k) delete out[k]
        out[ek] = e
      }
    }
    result = out ?? value
  }
  done.set(value, result)
  return result as T
}

// JSON.stringify escapes C0 controls but leaves DEL, C1 (a terminal reads U+009B as CSI) and the separators raw.
// eslint-disable-next-line no-control-regex
const JSON_RAW = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/** JSON text with the control characters JSON.stringify leaves raw written as \u escapes: the same value, safe to cat. */
export const escapeJsonText = (json: string): string => json.replace(JSON_RAW, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)

/**
 * escapeJsonText for JSON already encoded as UTF-8 (the multi-megabyte json of `plan`, encoded to be written anyway).
 * Every character it escapes is U+007F or has a UTF-8 lead byte of 0xC2 (U+0080–U+009F) or 0xE2 (U+2028–U+2069), so
 * bytes holding none of these three need no escaping: three byte scans instead of a pattern run over every character.
 */
export function escapeJsonBytes(json: Buffer): Buffer {
  if (json.indexOf(0x7f) === -1 && json.indexOf(0xc2) === -1 && json.indexOf(0xe2) === -1) return json
  return Buffer.from(escapeJsonText(json.toString('utf8')), 'utf8')
}
