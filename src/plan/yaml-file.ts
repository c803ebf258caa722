import type { Document, LineCounter, YAMLError } from 'yaml'
import { yamlLib } from './yaml-lib.js'
import type { Problem } from '../errors.js'
import { Locator } from './locate.js'
import { MAX_NESTING, tooDeep } from './nesting.js'

/** What a file is expected to hold, for messages: the plan (UpgradePlan) or the lab topology (LabTopology). */
export interface YamlFileKind {
  kind: string
  /** "plan", "topology": how messages name the file. */
  noun: string
  /** Where to look up the format. */
  hint: string
  /** The top-level keys a document of this kind has, for "expected a mapping with …". */
  topKeys: string
}

/**
 * Reads one YAML document that must be a mapping, with positions: every problem that stops it from being read —
 * binary content, no document, several documents, syntax errors, duplicate keys, alias bombs, not a mapping — comes
 * back located and worded for people. Plans and lab topologies are read the same way.
 */
export function readYamlMapping(file: string, source: string, k: YamlFileKind): { raw: Record<string, unknown>; locator: Locator } | { problems: Problem[] } {
  const deep = tooDeep(source)
  if (deep) return { problems: [{ file, ...deep, message: `YAML syntax error: the document is nested too deeply to read (more than ${MAX_NESTING} levels)` }] }
  if (source.includes('\u0000')) {
    const at = source.indexOf('\u0000')
    const line = source.slice(0, at).split('\n').length
    return { problems: [{ file, line, col: at - source.lastIndexOf('\n', at - 1), message: `this is not a text file: it contains NUL bytes (a UTF-16 file? save the ${k.noun} as UTF-8)` }] }
  }
  const { LineCounter, parseAllDocuments } = yamlLib()
  const lines = new LineCounter()
  const docs = parseAllDocuments(source, { lineCounter: lines, uniqueKeys: true, prettyErrors: false })
  const list = Array.isArray(docs) ? docs : []
  const nonEmpty = list.filter((d) => d.contents !== null || d.errors.length > 0)
  if (nonEmpty.length === 0) {
    return { problems: [{ file, line: 1, col: 1, message: `the ${k.noun} is empty: expected one ${k.kind} document (${k.hint})` }] }
  }
  if (nonEmpty.length > 1) {
    const second = nonEmpty[1]!
    const pos = lines.linePos(second.range[0])
    return { problems: [{ file, ...pos, message: `found ${nonEmpty.length} YAML documents: a ${k.noun} file holds exactly one ${k.kind} (split them into separate files)` }] }
  }
  const doc = nonEmpty[0]!
  // yaml only fills `linePos` with prettyErrors, so every syntax error used to point at 1:1; locate from the offset.
  const syntax: Problem[] = doc.errors.map((e) => ({ file, ...syntaxProblem(doc, e, lines, source) }))
  if (syntax.length > 0) return { problems: dedupe(syntax) }
  const tags = tagProblems(doc, lines, source, file, k)
  if (tags.length > 0) return { problems: tags }

  let raw: unknown
  try {
    raw = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    // yaml throws (ReferenceError) on an alias expansion bomb or an alias with no anchor; bad input, not a crash.
    const message = (err as Error).message
    const unresolved = /unresolved alias/i.test(message)
    let at: { line: number; col: number } = { line: 1, col: 1 }
    let alias = ''
    yamlLib().visit(doc, {
      Alias(_, node) {
        if (unresolved && node.resolve(doc) !== undefined) return
        alias = node.source
        if (node.range) at = lines.linePos(node.range[0])
        return yamlLib().visit.BREAK
      },
    })
    return {
      problems: [{
        file, ...at,
        message: unresolved
          ? `the alias *${alias} names no anchor: define &${alias} before it is used, or write the value out`
          : `the YAML expands its aliases (*name) too many times (${message.toLowerCase()}): write the ${k.noun} without nested anchors`,
      }],
    }
  }
  const locator = Locator.of(doc, lines)
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    const shown = JSON.stringify(raw)
    const got = Array.isArray(raw) ? 'a list' : raw === null ? 'an empty value' : `the ${typeof raw} ${shown.length > 60 ? `${shown.slice(0, 50)}…` : shown}`
    return { problems: [{ file, ...locator.at([]), message: `expected a mapping with ${k.topKeys}, got ${got}` }] }
  }
  return { raw: raw as Record<string, unknown>, locator }
}

/** The tags a plan may carry: `!` and the YAML 1.2 core ones, which only restate what the value already is. */
const CORE_TAGS = new Set(['!', ...['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`)])

/**
 * Tags the core schema does not know (`!evil`, `!<tag:…>`, `!!js/function`, `!!binary`) were dropped silently, the
 * value read as if untagged, or turned into something no plan holds (a Buffer). A tag means the writer wanted some
 * other meaning than the one kupgrade would take, so it is refused where it stands.
 */
function tagProblems(doc: Document.Parsed, lines: LineCounter, source: string, file: string, k: YamlFileKind): Problem[] {
  const out: Problem[] = []
  const shown = (tag: string) => (tag.startsWith('tag:yaml.org,2002:') ? `!!${tag.slice('tag:yaml.org,2002:'.length)}` : tag.startsWith('!') ? tag : `!<${tag}>`)
  yamlLib().visit(doc, {
    Node(_, node) {
      const tag = (node as { tag?: string }).tag
      if (tag === undefined || CORE_TAGS.has(tag) || !node.range) return
      // The node's range starts after its tag: point at the tag as written, just before it.
      let end = node.range[0]
      while (end > 0 && /[ \t]/.test(source[end - 1]!)) end--
      let start = end
      while (start > 0 && !/\s/.test(source[start - 1]!)) start--
      const written = source.slice(start, end).startsWith('!') ? source.slice(start, end) : undefined
      out.push({ file, ...lines.linePos(written ? start : node.range[0]), message: `unknown YAML tag ${JSON.stringify(written ?? shown(tag))}: a ${k.noun} holds plain strings, numbers, booleans, lists and mappings (remove the tag)` })
    },
  })
  // A core tag that does not fit its value (`!!float abc`) is not resolved either.
  for (const w of doc.warnings) {
    if (w.code !== 'TAG_RESOLVE_FAILED') continue
    const pos = lines.linePos(w.pos[0])
    if (out.some((p) => p.line === pos.line)) continue
    out.push({ file, ...pos, message: `YAML tag cannot be applied: ${w.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')} (remove the tag)` })
  }
  return out.sort((a, b) => a.line - b.line || a.col - b.col)
}

/** A YAML syntax error as a located, readable problem: unclosed quotes and brackets point at where they were opened. */
function syntaxProblem(doc: Document.Parsed, e: YAMLError, lines: LineCounter, source: string): { line: number; col: number; message: string } {
  const offset = e.pos[0]
  const at = (o: number) => lines.linePos(o)
  const first = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')
  if (e.code === 'DUPLICATE_KEY') {
    let found: { key: string; firstAt?: number } | undefined
    yamlLib().visit(doc, {
      Map(_, map) {
        const i = map.items.findIndex((p) => yamlLib().isScalar(p.key) && p.key.range?.[0] === offset)
        if (i < 0) return
        const key = (map.items[i]!.key as { value: unknown }).value
        const prev = map.items.slice(0, i).find((p) => yamlLib().isScalar(p.key) && p.key.value === key)
        found = { key: String(key), firstAt: yamlLib().isScalar(prev?.key) ? prev.key.range?.[0] : undefined }
        return yamlLib().visit.BREAK
      },
    })
    const where = found?.firstAt !== undefined ? ` (first at line ${at(found.firstAt).line})` : ''
    return { ...at(offset), message: `duplicate key${found ? ` "${found.key}"` : ''}${where}: each key may appear once in a mapping` }
  }
  if (/Maximum call stack size exceeded/.test(first)) return { ...at(offset), message: 'YAML syntax error: the document is nested too deeply to read' }
  if (e.code === 'TAB_AS_INDENT') return { ...at(offset), message: 'YAML syntax error: a tab is used for indentation; YAML indents with spaces only' }
  if (e.code === 'MISSING_CHAR' && /quote/.test(first)) {
    const opened = findNode(doc, (n) => yamlLib().isScalar(n) && (n.type === 'QUOTE_DOUBLE' || n.type === 'QUOTE_SINGLE') && n.range?.[1] === offset)
    if (opened !== undefined) {
      const quote = source[opened]
      return { ...at(opened), message: `YAML syntax error: this ${quote === '"' ? 'double' : 'single'}-quoted string is never closed (add the closing ${quote})` }
    }
  }
  if (/^Flow (sequence|mapping|map)\b/.test(first)) {
    const opened = findNode(doc, (n) => (n as { flow?: boolean }).flow === true && (yamlLib().isMap(n) || !yamlLib().isScalar(n)) && n.range?.[1] === offset)
    if (opened !== undefined) {
      const close = source[opened] === '{' ? '}' : ']'
      return { ...at(opened), message: `YAML syntax error: this flow ${close === ']' ? 'sequence' : 'mapping'} is never closed (add the closing ${close}, or indent its continuation lines)` }
    }
  }
  let o = offset
  if (e.code === 'BAD_INDENT') {
    while (source[o] === ' ') o++
    if (/^All mapping items must start at the same column/.test(first)) {
      return { ...at(o), message: 'YAML syntax error: this key is not aligned with the keys above it (all keys of a mapping start at the same column; check the indentation)' }
    }
  }
  const hint = HINTS.find(([re]) => re.test(first))?.[1]
  return { ...at(o), message: `YAML syntax error: ${first}${hint ? ` (${hint})` : ''}` }
}

/** What usually causes yaml's rarer messages, in plan files. */
const HINTS: [RegExp, string][] = [
  [/^Nested mappings are not allowed in compact mappings/, 'a value that contains ": " must be quoted'],
  [/^Block collections are not allowed within flow collections/, 'a missing comma between items in { } or [ ]?'],
  [/^Implicit keys need to be on a single line/, 'check the indentation of this line'],
  [/^Plain value cannot start with reserved character/, 'quote the value'],
]

/** The start offset of the first node (document order) matching `test`. */
function findNode(doc: Document.Parsed, test: (n: { range?: [number, number, number] | null } & object) => boolean): number | undefined {
  let found: number | undefined
  yamlLib().visit(doc, {
    Node(_, node) {
      if (test(node as never)) {
        found = (node as { range?: [number, number, number] }).range?.[0]
        return yamlLib().visit.BREAK
      }
    },
  })
  return found
}

export const dedupe = (ps: Problem[]): Problem[] => {
  const seen = new Set<string>()
  return ps.filter((p) => {
    const k = `${p.line}:${p.col}:${p.message}`
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}
