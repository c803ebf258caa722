import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CUSTOM_GATES, DEFAULT_GATES, GATE_IDS, GATES } from '../../src/gates/catalog.js'
import { GATE_REGISTRY } from '../../src/gates/registry.js'
import { planJsonSchema } from '../../src/plan/json-schema.js'

const root = join(import.meta.dirname, '..', '..')

/** The README's gate table: first column `id`, last column where it is on by default. */
function readmeGates(): Map<string, string> {
  const text = readFileSync(join(root, 'README.md'), 'utf8')
  const start = text.indexOf('| gate | checks | parameters (default) | default in |')
  expect(start, 'README has the gate table').toBeGreaterThan(0)
  const rows = text.slice(start).split('\n').slice(2).filter((l) => l.startsWith('| `'))
  return new Map(rows.map((r) => {
    // Cells may hold escaped pipes (\\|); the first and the last cell are plain.
    const cells = r.replace(/\\\|/g, '¦').split('|').map((c) => c.trim())
    return [/`([^`]+)`/.exec(cells[1]!)![1]!, cells[cells.length - 2]!]
  }))
}

describe('one registry of gates, agreeing with the catalog, the JSON Schema and the README', () => {
  it('the registry implements exactly the catalog ids, each under its own id', () => {
    expect(Object.keys(GATE_REGISTRY).sort()).toEqual([...GATE_IDS].sort())
    for (const [id, gate] of Object.entries(GATE_REGISTRY)) {
      expect(gate.id, id).toBe(id)
      expect(typeof gate.check, id).toBe('function')
    }
  })

  it('every gate has its own file under src/gates/checks', () => {
    for (const id of GATE_IDS) expect(() => readFileSync(join(root, 'src', 'gates', 'checks', `${id}.ts`)), id).not.toThrow()
  })

  it('the JSON Schema (and the shipped plans/schema.json) names every gate with its parameters, and gates.skip', () => {
    const live = planJsonSchema()
    const shipped = JSON.parse(readFileSync(join(root, 'plans', 'schema.json'), 'utf8')) as unknown
    expect(shipped, 'plans/schema.json is stale: run npm run schema').toEqual(live)
    const text = JSON.stringify(live)
    for (const g of GATES) {
      expect(text, g.id).toContain(`"${g.id}"`)
      const shape = (g.params as unknown as { shape?: Record<string, unknown> }).shape ?? {}
      for (const param of Object.keys(shape)) expect(text, `${g.id}.${param}`).toContain(`"${param}"`)
    }
    expect(text).toContain('"skip"')
    expect(text).toContain('"reason"')
  })

  it('the README table lists every gate once, with where it is on by default', () => {
    const table = readmeGates()
    expect([...table.keys()].sort()).toEqual([...GATE_IDS].sort())
    for (const id of GATE_IDS) {
      const lists = (Object.keys(DEFAULT_GATES) as (keyof typeof DEFAULT_GATES)[]).filter((l) => (DEFAULT_GATES[l] as readonly string[]).includes(id))
      expect(table.get(id), id).toBe((CUSTOM_GATES as readonly string[]).includes(id) ? 'opt-in' : lists.join(', '))
    }
  })
})

describe('skipped gates show in every plan format, with their reasons', () => {
  it('text, markdown and json of `plan` name the skipped gate and the reason', async () => {
    const { runCli } = await import('../helpers/run-cli.js')
    const file = join(root, 'test', 'fixtures', 'plans', 'valid', 'percentages-and-gates.yaml')
    const reason = 'no CRDs or manifests older than 1.25 on this cluster (audited 2024-11)'
    for (const format of ['text', 'markdown', 'json']) {
      const r = await runCli(['plan', file, '--format', format], { env: { PATH: process.env.PATH, NO_COLOR: '1' }, cwd: root })
      expect(r.code, format).toBe(0)
      expect(r.out, format).toContain(reason)
      expect(r.out, format).toMatch(/removed-apis/)
      // Skipped means it does not run: no step for it.
      expect(r.out, format).not.toMatch(/gate removed-apis(?!`| skipped)/)
    }
  })
})
