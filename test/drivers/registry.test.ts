import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { COMMON_MODULES, driverFor, drivers, EXECUTOR_ACTIONS, moduleFor } from '../../src/drivers/registry.js'
import type { Driver } from '../../src/drivers/types.js'
import { clusterSchema } from '../../src/plan/schema.js'
import { DISTRIBUTIONS, type Distribution } from '../../src/plan/versions.js'
import { planHops } from '../../src/planner/hops.js'

const schemaDistributions = (): string[] => {
  const def = (clusterSchema.shape.distribution as unknown as { _zod: { def: { entries: Record<string, string> } } })._zod.def
  return Object.values(def.entries)
}

const isDriver = (x: unknown): x is Driver =>
  x !== null && typeof x === 'object' && typeof (x as Driver).name === 'string' &&
  typeof (x as Driver).planBackup === 'function' && typeof (x as Driver).planNodeUpgrade === 'function' && typeof (x as Driver).programFor === 'function'

describe('driver registry', () => {
  it("has exactly the schema's distribution enum as keys", () => {
    expect([...drivers.keys()].sort()).toEqual(schemaDistributions().sort())
    expect([...DISTRIBUTIONS].sort()).toEqual(schemaDistributions().sort())
  })

  it('each driver is registered under its own name', () => {
    for (const [name, driver] of drivers) expect(driver.name).toBe(name)
  })

  it('every module under src/drivers that exports a Driver is registered', async () => {
    const dir = join(import.meta.dirname, '..', '..', 'src', 'drivers')
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && statSync(join(dir, f)).isFile())
    const found: Driver[] = []
    for (const file of files) {
      const mod = (await import(join(dir, file))) as Record<string, unknown>
      for (const value of Object.values(mod)) if (isDriver(value)) found.push(value)
    }
    expect(found.length).toBeGreaterThanOrEqual(3)
    for (const d of found) expect(drivers.get(d.name), `driver ${d.name} exported but not registered`).toBe(d)
  })

  it('driverFor throws for an unknown distribution', () => {
    expect(() => driverFor('rke2' as Distribution)).toThrow('no driver registered for distribution rke2')
  })

  it('no action is claimed by two modules of one distribution, and executor actions by none', () => {
    for (const d of drivers.values()) {
      const owners = [...COMMON_MODULES, d].flatMap((m) => m.actions.map((a) => `${a}:${m.name}`))
      const actions = owners.map((o) => o.split(':')[0]!)
      expect(new Set(actions).size, owners.join(' ')).toBe(actions.length)
      for (const a of EXECUTOR_ACTIONS) expect(actions).not.toContain(a)
      for (const a of EXECUTOR_ACTIONS) expect(() => moduleFor(a, d.name)).toThrow(/carried out by the executor/)
    }
  })

  it.each([...drivers.keys()])('%s plans a backup and a node upgrade for both roles', (name) => {
    const driver = driverFor(name)
    const from = name === 'k3s' ? 'v1.29.2+k3s1' : name === 'k0s' ? 'v1.29.2+k0s.0' : 'v1.29.2'
    const r = planHops(name, from, { kubernetes: 'v1.30.4' })
    if (!r.ok) throw new Error(r.message)
    const hop = r.hops[0]!
    expect(driver.planBackup(hop).length).toBeGreaterThan(0)
    for (const role of ['control-plane', 'worker'] as const) {
      const steps = driver.planNodeUpgrade(hop, { role, firstControlPlane: role === 'control-plane', lastControlPlane: false }, { source: { kind: 'installer' }, apiEndpoint: 'https://10.0.0.10:6443' })
      expect(steps.length).toBeGreaterThan(0)
      expect(steps[0]!.action).toBe('backup-files')
      expect(driver.serviceName(role)).toMatch(/^[a-z0-9-]+$/)
    }
  })
})
