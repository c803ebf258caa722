import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { fastParse, parsePlan } from '../../src/plan/load.js'
import { mulberry32, pick } from '../planner/gen-plan.js'

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

/**
 * One plan, one meaning: the fast path (js-yaml) and the positional path (`yaml`) must give the same verdict and the
 * same value for any document. A comment holding `&` sends a document down the positional path without changing what
 * it says, so each generated plan is validated both ways and the results compared. The scalars are the spellings on
 * which YAML 1.1, js-yaml's and yaml's core schemas have disagreed (`0b101`, `1_000`, `yes`, `017`, `.inf`, …),
 * sometimes under a `%YAML 1.1` directive, in block and flow style.
 */
const SCALARS = [
  'yes', 'no', 'on', 'off', 'y', 'n', 'Yes', 'ON', 'true', 'True', 'TRUE', 'false', 'FALSE', 'tRUE', 'null', 'Null', 'NULL', '~', '',
  '0b101', '0o17', '017', '0x1F', '0X1F', '1_000', '+12', '-0', '0', '00', '22', '022', '65535', '65536', '.5', '1.', '1.0', '1e3', '1E3', '+.5',
  '.inf', '-.Inf', '+.INF', '.NaN', '.nan', '2001-12-14', '12:30:00', '1:30', '1.30', 'v1.30', '=', '<<', "'quoted'", '"dq"', '"0x1F"',
  '0.0.0.0', '1e', '.e3', '0o8', '0xG', '9007199254740993', '-', 'a b', 'NaN', 'Infinity',
]

function generatedPlan(seed: number): string {
  const rng = mulberry32(seed)
  const s = () => pick(rng, SCALARS)
  const flow = rng() < 0.5
  const node = flow
    ? `        - { name: cp-1, host: 10.0.0.11, role: control-plane, port: ${s()}, ssh: { sudo: ${s()}, user: ${s()} } }`
    : `        - name: cp-1\n          host: 10.0.0.11\n          role: control-plane\n          port: ${s()}\n          ssh:\n            sudo: ${s()}\n            user: ${s()}`
  return [
    ...(rng() < 0.25 ? [pick(rng, ['%YAML 1.1', '%YAML 1.2']), '---'] : []),
    'apiVersion: kupgrade.dev/v1alpha1',
    'kind: UpgradePlan',
    'metadata:',
    '  name: p',
    `  description: ${s()}`,
    `  labels: { a: ${s()}, b: ${s()} }`,
    'spec:',
    `  target: { kubernetes: v1.30.4 }`,
    '  stages: [{ name: s, clusters: [c] }]',
    '  strategy:',
    `    workers: { canary: ${s()} }`,
    `    drain: { force: ${s()} }`,
    '  clusters:',
    '    - name: c',
    '      distribution: k3s',
    '      from: v1.29.2',
    '      apiEndpoint: https://10.0.0.1:6443',
    '      nodes:',
    node,
    '',
  ].join('\n')
}

describe('plan/load: both parse paths agree on generated plans', () => {
  const SEEDS = 300
  it(`${SEEDS} plans with tricky scalars: same value from fastParse as from yaml, same verdict and problems from parsePlan`, () => {
    const failures: string[] = []
    let fastTaken = 0
    for (let seed = 1; seed <= SEEDS && failures.length < 5; seed++) {
      const source = generatedPlan(seed)
      const fast = fastParse(source)
      if (fast !== undefined) {
        fastTaken++
        const docs = parseAllDocuments(source, { uniqueKeys: true })
        const doc = Array.isArray(docs) ? docs[0] : undefined
        if (!doc || doc.errors.length > 0) failures.push(`seed ${seed}: fast path read a document yaml refuses:\n${source}`)
        else if (JSON.stringify(fast) !== JSON.stringify(doc.toJS())) failures.push(`seed ${seed}: values differ:\nfast ${JSON.stringify(fast)}\nyaml ${JSON.stringify(doc.toJS())}\n${source}`)
      }
      const a = parsePlan('p.yaml', source)
      const b = parsePlan('p.yaml', `${source}# &slow: an anchor-like comment sends this copy down the positional path\n`)
      const verdict = (r: typeof a) => ({ plan: r.plan, problems: r.problems.map((p) => `${p.line}:${p.col}: ${p.message}`) })
      if (JSON.stringify(verdict(a)) !== JSON.stringify(verdict(b))) {
        failures.push(`seed ${seed}: verdicts differ:\nfast ${JSON.stringify(verdict(a).problems)}\nslow ${JSON.stringify(verdict(b).problems)}\n${source}`)
      }
    }
    expect(failures, failures.join('\n\n')).toEqual([])
    expect(fastTaken).toBeGreaterThan(SEEDS / 2) // the fast path is really exercised
  })

  it('under %YAML 1.1 both paths read `sudo: yes` the same way (with or without an anchor in the file)', () => {
    const source = generatedPlan(1).replace(/^(%YAML 1\.[12]\n---\n)?/, '%YAML 1.1\n---\n').replace(/sudo: [^,\n}]*/, 'sudo: yes')
    const a = parsePlan('p.yaml', source)
    const b = parsePlan('p.yaml', `${source}# &x\n`)
    expect(a.problems.map((p) => p.message)).toEqual(b.problems.map((p) => p.message))
    expect(a.plan?.spec.clusters[0]?.nodes[0]?.ssh?.sudo).toBe(b.plan?.spec.clusters[0]?.nodes[0]?.ssh?.sudo)
  })

  it('leaves documents with directives or tags to the positional parser', () => {
    expect(fastParse('%YAML 1.1\n---\na: yes\n')).toBeUndefined()
    expect(fastParse('a: !evil x\n')).toBeUndefined()
    expect(fastParse('a: !!str 1\n')).toBeUndefined()
    expect(fastParse('a: "not a tag!"\n')).toEqual({ a: 'not a tag!' })
  })
})
