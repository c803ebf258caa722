import { describe, expect, it, vi } from 'vitest'

// The helpers a 2,000-node plan must not call once per node (or worse): each is wrapped to count its calls.
vi.mock('../../src/plan/versions.js', async (original) => {
  const m = await original<typeof import('../../src/plan/versions.js')>()
  return { ...m, parseKubeVersion: vi.fn(m.parseKubeVersion) }
})
vi.mock('../../src/drivers/registry.js', async (original) => {
  const m = await original<typeof import('../../src/drivers/registry.js')>()
  return { ...m, titleFor: vi.fn(m.titleFor) }
})
vi.mock('../../src/gates/skew/policy.js', async (original) => {
  const m = await original<typeof import('../../src/gates/skew/policy.js')>()
  return { ...m, evaluateSkew: vi.fn(m.evaluateSkew), checkApiserverUpgrade: vi.fn(m.checkApiserverUpgrade) }
})

const { parsePlan } = await import('../../src/plan/load.js')
const { renderPlanJson } = await import('../../src/report/plan-json.js')
const versions = await import('../../src/plan/versions.js')
const registry = await import('../../src/drivers/registry.js')
const policy = await import('../../src/gates/skew/policy.js')
const { drivers } = registry

/**
 * Work per plan that must not grow with its workers: validating, expanding and walking a fleet of W workers per cluster
 * calls these helpers exactly as often for W = 400 as for W = 8 (driver templates, titles and version parses are made
 * once per role and pass and found again by the rest; the skew walk evaluates one worker per set of versions). No
 * timing: a per-node call — a title rendered per node, a version parsed per node, the policy evaluated per worker, the
 * driver asked per node — shows up as a count that grows with W. (Version comparisons are not counted: the skew walk
 * moves every node's versions, one comparison per node and move, which is linear by nature.)
 */
function fleet(workers: number, onFailure: 'rollback' | 'rebuild'): string {
  const clusters = [
    { name: 'edge', distribution: 'k3s', from: 'v1.29.6+k3s1' },
    { name: 'core', distribution: 'k0s', from: 'v1.29.6+k0s.0' },
    { name: 'dc', distribution: 'kubeadm', from: 'v1.28.9' },
  ]
  const lines = [
    'apiVersion: kupgrade.dev/v1alpha1',
    'kind: UpgradePlan',
    'metadata: { name: scaling }',
    'spec:',
    '  target: { kubernetes: v1.30.4 }',
    '  stages: [{ name: staging, clusters: [edge] }, { name: production, clusters: [core, dc], approval: required }]',
    '  clusters:',
  ]
  clusters.forEach((c, ci) => {
    lines.push(`    - name: ${c.name}`, `      distribution: ${c.distribution}`, `      from: ${c.from}`, `      apiEndpoint: https://10.${ci}.0.1:6443`, '      nodes:')
    for (let n = 0; n < 3 + workers; n++) {
      lines.push(`        - { name: ${c.name}-n${n}, host: 10.${ci}.${Math.floor(n / 250) + 1}.${(n % 250) + 1}, role: ${n < 3 ? 'control-plane' : 'worker'} }`)
    }
  })
  lines.push(`  strategy: { workers: { maxUnavailable: 10%, canary: 1 }, onFailure: ${onFailure} }`)
  return `${lines.join('\n')}\n`
}

const counted = () => ({
  parseKubeVersion: vi.mocked(versions.parseKubeVersion),
  titleFor: vi.mocked(registry.titleFor),
  evaluateSkew: vi.mocked(policy.evaluateSkew),
  checkApiserverUpgrade: vi.mocked(policy.checkApiserverUpgrade),
})

/** Calls of each counted helper (and of each driver's planners) while planning `text` as `kupgrade plan --format json` does. */
function callsWhilePlanning(text: string): Record<string, number> {
  const spies = [...drivers.values()].flatMap((d) => [vi.spyOn(d, 'planNodeUpgrade'), vi.spyOn(d, 'planRebuild')])
  vi.clearAllMocks()
  const { plan, problems, expanded } = parsePlan('scaling.yaml', text)
  expect(problems.filter((p) => p.severity !== 'warning')).toEqual([])
  expect(plan && expanded).toBeTruthy()
  renderPlanJson(expanded!)
  const calls = Object.fromEntries(Object.entries(counted()).map(([name, fn]) => [name, fn.mock.calls.length]))
  calls.driverPlanners = spies.reduce((n, s) => n + s.mock.calls.length, 0)
  for (const s of spies) s.mockRestore()
  return calls
}

describe('planning work that must not grow with the number of nodes', () => {
  it.each(['rollback', 'rebuild'] as const)('onFailure %s: the same calls for 400 workers per cluster as for 8', (onFailure) => {
    // A first plan of the same shape fills the planner's caches, which the two counted plans then find alike.
    callsWhilePlanning(fleet(8, onFailure))
    const small = callsWhilePlanning(fleet(8, onFailure))
    const big = callsWhilePlanning(fleet(400, onFailure))
    expect(big).toEqual(small)
    // The helpers are really on the path (a count of zero everywhere would prove nothing).
    expect(small.evaluateSkew).toBeGreaterThan(0)
    expect(small.driverPlanners).toBeGreaterThan(0)
  })
})
