import { describe, expect, it } from 'vitest'
import { escapeJsonBytes, escapeJsonText } from '../../src/util/escape.js'

describe('escapeJsonBytes: escapeJsonText as UTF-8, with a byte scan deciding whether anything needs escaping', () => {
  // Every character escapeJsonText escapes, its neighbours just outside each range, and characters whose UTF-8 shares
  // a lead byte with them (£ is C2 A3, … is E2 80 A6, ⁥ is E2 81 A5) without needing an escape.
  const escaped = ['\u007f', '\u0080', '\u009b', '\u009f', '\u2028', '\u2029', '\u202a', '\u202e', '\u2066', '\u2069']
  const kept = ['~', '\u00a0', '£', 'é', '…', '\u2027', '\u202f', '\u2065', '\u206a', '日本', '🙂']

  it.each([...escaped, ...kept])('%j alone and inside a document', (c) => {
    for (const json of [JSON.stringify({ v: c }), JSON.stringify({ a: 'plain', v: `x${c}y`, n: [1, 2] }, null, 2)]) {
      const bytes = escapeJsonBytes(Buffer.from(json))
      expect(bytes.toString('utf8')).toBe(escapeJsonText(json))
      expect(JSON.parse(bytes.toString('utf8'))).toEqual(JSON.parse(json))
    }
  })

  it('escapes what must be escaped and keeps the rest as it is', () => {
    for (const c of escaped) expect(escapeJsonBytes(Buffer.from(JSON.stringify(c))).toString()).toBe(`"\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}"`)
    for (const c of kept) expect(escapeJsonBytes(Buffer.from(JSON.stringify(c))).toString()).toBe(JSON.stringify(c))
  })
})
