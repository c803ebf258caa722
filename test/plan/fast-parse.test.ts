import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { fastParse, parsePlan } from '../../src/plan/load.js'

// The loader parses valid-looking plans with js-yaml (fast, no positions) and falls back to `yaml` (positions) for
// anything odd. Both must read every plan the same way, or a plan could mean one thing to validate and another to apply.
const root = join(import.meta.dirname, '..', '..')
const yamlFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? yamlFiles(p) : /\.ya?ml$/.test(f) ? [p] : []
  })

const corpus = [...yamlFiles(join(root, 'examples')), ...yamlFiles(join(root, 'test', 'fixtures'))]

describe('plan/load fast path', () => {
  it('has a corpus to compare', () => {
    expect(corpus.length).toBeGreaterThan(3)
  })

  it.each(corpus)('reads %s exactly as the positional parser does', (file) => {
    const source = readFileSync(file, 'utf8')
    const fast = fastParse(source)
    if (fast === undefined) return // the slow path handles it alone
    const docs = parseAllDocuments(source, { uniqueKeys: true })
    const list = Array.isArray(docs) ? docs : []
    expect(list).toHaveLength(1)
    expect(list[0]!.errors).toEqual([])
    expect(fast).toEqual(list[0]!.toJS())
  })

  it.each([
    ['duplicate keys', 'a: 1\na: 2\n'],
    ['several documents', 'a: 1\n---\nb: 2\n'],
    ['a syntax error', 'a: [1, 2\n'],
    ['a top-level list', '- a\n'],
    ['an empty file', ''],
  ])('leaves %s to the positional parser', (_what, source) => {
    expect(fastParse(source)).toBeUndefined()
  })

  it('reads YAML 1.1 words as strings, as YAML 1.2 (and `yaml`) does', () => {
    expect(fastParse('a: yes\nb: on\nc: 2001-12-14\n')).toEqual({ a: 'yes', b: 'on', c: '2001-12-14' })
  })

  it('places problems found on the fast path at their line', () => {
    const source = 'apiVersion: kupgrade.dev/v1alpha1\nkind: UpgradePlan\nmetadata: { name: x }\nspec:\n  target: { kubernetes: v1.30.4 }\n  stages: [{ name: s, clusters: [c] }]\n  clusters:\n    - name: c\n      distribution: k3s\n      from: v1.29.2\n      apiEndpoint: https://10.0.0.1:6443\n      nodes: [{ name: n, host: 10.0.0.2, role: control-plane, colour: red }]\n'
    const { problems } = parsePlan('p.yaml', source)
    expect(problems.filter((p) => p.severity !== 'warning').map((p) => `${p.line}:${p.col}`)).toEqual(['12:63'])
  })
})

describe('plan/load fast path and anchors', () => {
  it('leaves any plan with anchors to the parser that caps alias expansion', () => {
    expect(fastParse('a: &x [1, 2]\nb: *x\n')).toBeUndefined()
    expect(fastParse('a: "&not-an-anchor"\n')).toEqual({ a: '&not-an-anchor' })
  })
})
