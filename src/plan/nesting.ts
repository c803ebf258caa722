/**
 * How deeply a YAML text nests, measured on the text before any parser sees it. Both YAML parsers recurse once per
 * level: ~2,000 nested block mappings overflow the stack (a RangeError wherever it happens to strike, the positional
 * parser included), so a document deeper than any plan could need is refused up front, at the line where it
 * passes the limit. A plan nests about 8 levels; a lab topology a few more.
 */
export const MAX_NESTING = 64

const FLOW_OR_QUOTE = /["'[{]/
const SPECIAL = /["'#[\]{}\\]/g

export function tooDeep(source: string, max = MAX_NESTING): { line: number; col: number } | undefined {
  const indents: number[] = []
  let flow = 0
  let blockScalarIndent: number | undefined
  let quote: '"' | "'" | undefined
  const lines = source.split('\n')
  for (let li = 0; li < lines.length; li++) {
    const text = lines[li]!
    let indent = 0
    while (text.charCodeAt(indent) === 32) indent++
    if (blockScalarIndent !== undefined) {
      // A literal or folded block's lines are text, however they are indented.
      if (text.trim() === '' || indent > blockScalarIndent) continue
      blockScalarIndent = undefined
    }
    if (quote === undefined && flow === 0) {
      if (text.trim() === '' || text.trimStart().startsWith('#')) continue
      // Each `- ` at the start of a line opens a level: `- - - x` is three.
      let col = indent
      const levels = [col]
      for (let m = /^-(?:[ \t]+|$)/.exec(text.slice(col)); m && text.length > col + m[0].length; m = /^-(?:[ \t]+|$)/.exec(text.slice(col))) {
        col += m[0].length
        levels.push(col)
      }
      for (const l of levels) {
        while (indents.length > 0 && indents[indents.length - 1]! >= l) indents.pop()
        indents.push(l)
        if (indents.length > max) return { line: li + 1, col: l + 1 }
      }
      if (/(?:^|[:\s-])[|>][-+0-9]*\s*(?:#.*)?$/.test(text)) blockScalarIndent = indent
    }
    // Flow collections and quoted scalars can span lines; brackets inside quotes and comments do not count. Most lines
    // hold none of these characters: one native test skips them (a cold CLI run pays for every JS-level loop).
    if (quote === undefined && flow === 0 && !FLOW_OR_QUOTE.test(text)) continue
    // Jump from one special character to the next natively; only those are looked at here.
    SPECIAL.lastIndex = quote === undefined && flow === 0 ? indent : 0
    for (let m = SPECIAL.exec(text); m; m = SPECIAL.exec(text)) {
      const i = m.index
      const c = m[0]
      if (quote === '"') {
        if (c === '\\') SPECIAL.lastIndex = i + 2
        else if (c === '"') quote = undefined
      } else if (quote === "'") {
        if (c === "'") {
          if (text[i + 1] === "'") SPECIAL.lastIndex = i + 2
          else quote = undefined
        }
      } else if (c === '#') {
        if (i === 0 || /\s/.test(text[i - 1]!)) break
      } else if (c === '"' || c === "'") {
        if (i === 0 || /[\s[{,:-]/.test(text[i - 1]!)) quote = c
      } else if (c === '[' || c === '{') {
        if (flow > 0 || /(?:^|[:?-])\s*$/.test(text.slice(0, i))) {
          if (++flow + indents.length > max) return { line: li + 1, col: i + 1 }
        }
      } else if ((c === ']' || c === '}') && flow > 0) flow--
    }
  }
  return undefined
}
