import type { Document, LineCounter, Node, Pair } from 'yaml'
import { yamlLib } from './yaml-lib.js'

export type Path = readonly (string | number)[]

/**
 * Maps a data path (spec.clusters[1].nodes[0].role) back to a line and column in the YAML source, so every problem
 * points at the exact character. Missing keys point at the map that should hold them; `key: true` points at a key
 * itself (for unknown fields) rather than its value.
 */
export class Locator {
  private parsed?: { doc: Document.Parsed; lines: LineCounter }
  /** Each mapping's pairs by key, built on first use: locating every one of n unknown keys stays linear, not n². */
  private readonly index = new WeakMap<object, Map<unknown, Pair>>()

  private constructor(private readonly text: string) {}

  static of(doc: Document.Parsed, lines: LineCounter): Locator {
    const l = new Locator('')
    l.parsed = { doc, lines }
    return l
  }

  /** Parses the source with positions only when a problem must be located (valid plans never pay for it). */
  static lazy(source: string): Locator {
    return new Locator(source)
  }

  private get doc(): Document.Parsed {
    return this.ensure().doc
  }

  private get lines(): LineCounter {
    return this.ensure().lines
  }

  private ensure() {
    if (!this.parsed) {
      const { LineCounter, parseDocument } = yamlLib()
      const lines = new LineCounter()
      this.parsed = { doc: parseDocument(this.text, { lineCounter: lines, uniqueKeys: false }), lines }
    }
    return this.parsed
  }

  at(path: Path, opts: { key?: boolean } = {}): { line: number; col: number } {
    let node: unknown = this.doc.contents
    let last: { line: number; col: number } = this.pos(node) ?? { line: 1, col: 1 }
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!
      const isLast = i === path.length - 1
      if (yamlLib().isMap(node)) {
        const pair = this.pair(node, seg)
        if (!pair) return last
        if (isLast && opts.key) return this.pos(pair.key) ?? last
        node = pair.value
        last = this.pos(node) ?? this.pos(pair.key) ?? last
      } else if (yamlLib().isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg]
        if (item === undefined) return last
        node = item
        last = this.pos(node) ?? last
      } else {
        return last
      }
    }
    return last
  }

  /** The source text of the scalar at `path` as written (`1.30`, which YAML reads as the number 1.3), if there is one. */
  scalarText(path: Path): string | undefined {
    let node: unknown = this.doc.contents
    for (const seg of path) {
      if (yamlLib().isMap(node)) node = this.pair(node, seg)?.value
      else if (yamlLib().isSeq(node) && typeof seg === 'number') node = node.items[seg]
      else return undefined
    }
    return yamlLib().isScalar(node) && typeof node.source === 'string' ? node.source : undefined
  }

  /** The first pair of a mapping with this key (as `find` would return it; duplicates are reported elsewhere). */
  private pair(map: { items: Pair[] }, key: string | number): Pair | undefined {
    let byKey = this.index.get(map)
    if (!byKey) {
      byKey = new Map()
      for (const p of map.items) {
        const k = yamlLib().isScalar(p.key) ? p.key.value : p.key
        if (!byKey.has(k)) byKey.set(k, p)
      }
      this.index.set(map, byKey)
    }
    return byKey.get(key)
  }

  private pos(node: unknown): { line: number; col: number } | undefined {
    const range = (node as Node | undefined)?.range
    if (!range) return undefined
    return this.lines.linePos(range[0])
  }
}

export const formatPath = (path: Path): string =>
  path.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : String(seg)), '')
