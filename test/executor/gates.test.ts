import { describe, expect, it } from 'vitest'
import { gateWait, gateWaitPolicy } from '../../src/executor/gates.js'
import { gateGroups, segments } from '../../src/executor/segments.js'
import type { GateResult } from '../../src/gates/types.js'
import { waitForGate } from '../../src/gates/wait.js'
import { buildExecutionPlan } from '../../src/planner/build.js'
import { loadPlan } from '../../src/plan/load.js'

const policy = gateWaitPolicy({ interval: '1s', stableFor: 3, timeout: '2m' })
const r = (status: GateResult['status']): GateResult => ({ status, summary: status, evidence: [], incident: 'x' })

/** Runs the wait loop over a scripted sequence of observations on a fake clock; returns the verdict and checks made. */
async function scripted(seq: GateResult['status'][], wait: ReturnType<typeof gateWait>, checkTakesMs = 0) {
  let t = 0
  let i = 0
  const check = async () => {
    t += checkTakesMs
    return r(seq[Math.min(i++, seq.length - 1)]!)
  }
  const v = await waitForGate(check, { ...wait, now: () => t, sleep: async (ms) => { t += ms } })
  return { status: v.status, checks: i, flapped: v.flapped === true }
}

describe('how apply waits on a gate', () => {
  it('spec.gates.wait defaults: 2s, 3 in a row, 5m', () => {
    expect(gateWaitPolicy(undefined)).toEqual({ intervalMs: 2000, stableFor: 3, timeoutMs: 300_000 })
    expect(policy).toEqual({ intervalMs: 1000, stableFor: 3, timeoutMs: 120_000 })
  })

  it('before a change: the first pass passes; a failure is checked twice more, and a lasting one blocks', async () => {
    const w = gateWait(false, 'api-vip', {}, policy)
    expect(await scripted(['pass'], w)).toEqual({ status: 'pass', checks: 1, flapped: false })
    expect(await scripted(['fail', 'pass'], w)).toEqual({ status: 'pass', checks: 2, flapped: false })
    expect(await scripted(['fail'], w)).toEqual({ status: 'fail', checks: 3, flapped: false })
    expect(await scripted(['unknown'], w)).toMatchObject({ status: 'unknown', checks: 3 })
    // Checks that each take long (probe timeouts on a busy network) still get their confirmation.
    expect(await scripted(['fail', 'pass'], w, 200_000)).toEqual({ status: 'pass', checks: 2, flapped: false })
  })

  it('after a change: it must hold stableFor checks in a row at a fixed interval; a pass that breaks is a flap', async () => {
    const w = gateWait(true, 'kube-proxy-sync', {}, policy)
    expect(w).toMatchObject({ stableFor: 3, intervalMs: 1000, backoff: 1, timeoutMs: 120_000 })
    expect(await scripted(['fail', 'fail', 'pass', 'pass', 'pass'], w)).toEqual({ status: 'pass', checks: 5, flapped: false })
    expect(await scripted(['pass', 'pass', 'fail'], w)).toEqual({ status: 'fail', checks: 3, flapped: true })
    // Never passing: fails at the timeout, one check per interval (a fault is seen within one interval).
    expect(await scripted(['fail'], w)).toMatchObject({ status: 'fail', checks: 121 })
  })

  it('nodes-ready after a change waits as long as its own timeout says', () => {
    expect(gateWait(true, 'nodes-ready', { timeout: '4s' }, policy).timeoutMs).toBe(4000)
    expect(gateWait(true, 'dns', { timeout: '4s' }, policy).timeoutMs).toBe(120_000)
  })
})

describe('which gates run side by side', () => {
  it('consecutive gate steps of one point form one group, in cluster steps and in node runs', () => {
    const plan = buildExecutionPlan(loadPlan('examples/k3s-homelab.yaml').plan)
    const c = plan.stages[0]!.clusters[0]!
    const segs = segments(c.steps)
    const pre = segs.find((s) => s.kind === 'gates')!
    expect(pre.kind === 'gates' && pre.steps.every((s) => s.action === 'gate' && s.phase === 'preflight')).toBe(true)
    expect(pre.kind === 'gates' && pre.steps.length).toBe(c.steps.filter((s) => s.action === 'gate' && s.phase === 'preflight').length)
    const node = segs.find((s) => s.kind === 'node')!
    const groups = gateGroups(node.kind === 'node' ? node.steps : [])
    // before-node gates, …, after-node gates: every multi-step group is gates only, and no two gate groups touch.
    for (const g of groups) if (g.length > 1) expect(g.every((s) => s.action === 'gate')).toBe(true)
    groups.forEach((g, i) => { if (i > 0) expect(g[0]!.action === 'gate' && groups[i - 1]![0]!.action === 'gate').toBe(false) })
    expect(groups.flat()).toEqual(node.kind === 'node' ? node.steps : [])
  })
})
