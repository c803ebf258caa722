import { describe, expect, it } from 'vitest'
import { CUSTOM_GATES, DEFAULT_GATES, GATE_IDS, GATES, gateById } from '../../src/gates/catalog.js'
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

  it('every default gate is on when the plan says nothing (safe defaults)', () => {
    const r = resolveGates({})
    for (const list of Object.keys(DEFAULT_GATES) as (keyof typeof DEFAULT_GATES)[]) {
      expect(r[list].map((g) => g.id)).toEqual([...DEFAULT_GATES[list]])
      for (const g of r[list]) expect(g.label).toBe(g.id)
    }
    expect(r.skipped).toEqual([])
    // Every built-in gate except the custom ones is on somewhere by default: nothing is off unless the plan says so.
    const on = new Set<string>(Object.values(DEFAULT_GATES).flat())
    expect(GATE_IDS.filter((id) => !on.has(id))).toEqual([...CUSTOM_GATES])
  })

  it('a plan list adds to the defaults or re-parameterises one in place; it never drops a default', () => {
    const r = resolveGates({ pre: ['etcd', { certificates: { minValidity: '2d' } }, { 'disk-space': null }, { command: { run: 'true' } }], afterNode: [] })
    expect(r.pre.map((g) => g.id)).toEqual([...DEFAULT_GATES.pre, 'command'])
    const cert = r.pre.find((g) => g.id === 'certificates')!
    expect([cert.label, cert.params]).toEqual(['certificates (minValidity 2d)', { minValidity: '2d' }])
    expect(r.pre.find((g) => g.id === 'disk-space')!.params).toEqual({ minFree: '15%', minFreeBytes: '2Gi', paths: ['/', '/var/lib', '/var/log'] })
    // An empty list is "nothing added", not "everything off".
    expect(r.afterNode.map((g) => g.id)).toEqual([...DEFAULT_GATES.afterNode])
    expect(r.post.map((g) => g.id)).toEqual([...DEFAULT_GATES.post])
  })

  it('examples/kubeadm-ha.yaml keeps the defaults it does not list (the bug that dropped kube-proxy-sync)', () => {
    const r = resolveGates({ pre: ['version-skew', 'etcd'] })
    for (const id of ['kube-proxy-sync', 'iptables-backend', 'system-pods', 'pending-pods']) expect(r.pre.map((g) => g.id)).toContain(id)
  })

  it('custom gates may be listed several times, each with its own parameters', () => {
    const r = resolveGates({ pre: [{ command: { run: 'a' } }, { command: { run: 'b' } }] })
    expect(r.pre.filter((g) => g.id === 'command').map((g) => g.params.run)).toEqual(['a', 'b'])
  })

  it('only gates.skip turns a default off, and the skip keeps its reason and the lists it left', () => {
    const r = resolveGates({ skip: [{ gate: 'kube-proxy-sync', reason: 'cilium replaces kube-proxy' }] })
    for (const list of Object.keys(DEFAULT_GATES) as (keyof typeof DEFAULT_GATES)[]) expect(r[list].map((g) => g.id)).not.toContain('kube-proxy-sync')
    expect(r.skipped).toEqual([{ gate: 'kube-proxy-sync', reason: 'cilium replaces kube-proxy', lists: ['pre', 'post', 'afterNode'] }])
  })

  it('the JSON Schema offers every gate id, bare and with parameters', () => {
    const json = JSON.stringify(planJsonSchema())
    for (const id of GATE_IDS) expect(json).toContain(`"${id}"`)
  })
})
