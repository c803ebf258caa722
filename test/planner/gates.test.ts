import { describe, expect, it } from 'vitest'
import { DEFAULT_GATES, GATE_IDS, GATES, gateById } from '../../src/gates/catalog.js'
import { planJsonSchema } from '../../src/plan/json-schema.js'
import { resolveGates } from '../../src/planner/gates.js'

const SCOPE = { pre: 'cluster', post: 'cluster', beforeNode: 'node', afterNode: 'node' } as const

describe('gate catalog', () => {
  it('ids are unique DNS-style words', () => {
    expect(new Set(GATE_IDS).size).toBe(GATE_IDS.length)
    for (const id of GATE_IDS) expect(id).toMatch(/^[a-z][a-z0-9-]*[a-z0-9]$/)
  })

  it('every gate has parameters with defaults: {} parses', () => {
    for (const g of GATES) expect(g.params.safeParse({}).success, g.id).toBe(true)
  })

  it('every gate has a title, an incident and at least one scope', () => {
    for (const g of GATES) {
      expect(g.title.length, g.id).toBeGreaterThan(10)
      expect(g.incident, g.id).toMatch(/^[a-z0-9-]+$/)
      expect(g.scopes.length, g.id).toBeGreaterThan(0)
    }
  })

  it('the defaults name known gates, each allowed where it is listed', () => {
    for (const [list, ids] of Object.entries(DEFAULT_GATES) as [keyof typeof SCOPE, readonly string[]][]) {
      for (const id of ids) expect(gateById(id)?.scopes, `${list}: ${id}`).toContain(SCOPE[list])
    }
  })

  it('every default gate is on unless the plan lists its own (safe defaults)', () => {
    const r = resolveGates({})
    for (const list of Object.keys(DEFAULT_GATES) as (keyof typeof DEFAULT_GATES)[]) {
      expect(r[list].map((g) => g.id)).toEqual([...DEFAULT_GATES[list]])
      for (const g of r[list]) expect(g.label).toBe(g.id)
    }
    // Every built-in gate is on somewhere by default: nothing is off unless the plan says so.
    const on = new Set<string>(Object.values(DEFAULT_GATES).flat())
    expect(GATE_IDS.filter((id) => !on.has(id))).toEqual([])
  })

  it('a plan list replaces the default, an empty list turns the point off, parameters get their defaults', () => {
    const r = resolveGates({ pre: ['etcd', { certificates: { minValidity: '2d' } }, { 'disk-space': null }], afterNode: [] })
    expect(r.pre.map((g) => [g.id, g.label])).toEqual([['etcd', 'etcd'], ['certificates', 'certificates (minValidity 2d)'], ['disk-space', 'disk-space']])
    expect(r.pre[1]!.params).toEqual({ minValidity: '2d' })
    expect(r.pre[2]!.params).toEqual({ minFree: '15%', paths: ['/', '/var'] })
    expect(r.afterNode).toEqual([])
    expect(r.post.map((g) => g.id)).toEqual([...DEFAULT_GATES.post])
  })

  it('the JSON Schema offers every gate id, bare and with parameters', () => {
    const json = JSON.stringify(planJsonSchema())
    for (const id of GATE_IDS) expect(json).toContain(`"${id}"`)
  })
})
