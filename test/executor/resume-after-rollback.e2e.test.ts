import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { events, rollbackOnFailure, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * After onFailure: rollback, `kupgrade status` says how to go on: `kupgrade resume` once the cause is fixed. That
 * resume must upgrade the rolled-back node again, every step of it: its rollback put the old binary back, so a
 * restart journaled done before it (it has no undo of its own) must run again, or the node never starts the new
 * version and the resume fails the same way.
 */
describe('resume after a rollback', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.161', [{ name: 'rr', distribution: 'k3s', controlPlanes: 1, workers: 1 }]))
    await l.editPlan(rollbackOnFailure(1))
  }, 60_000)
  afterAll(async () => l?.stop())

  it('the rolled-back worker is upgraded by resume once the fault is gone: every forward step of it runs again', async () => {
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'rr', node: 'rr-w-1' }
    l.lab.setFault(fault, true)
    const first = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(first.code, first.err + first.out.slice(-3000)).toBe(1)
    expect(events(first.out).some((e) => e.type === 'rollback-done' && e.node === 'rr-w-1')).toBe(true)

    const status = await l.cli(['status'])
    const resume = /to continue: kupgrade resume (\S+)/.exec(status.out)
    expect(resume, status.out).not.toBeNull()
    const r = await l.cli(['resume', resume![1]!, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(0)
    const ev = events(r.out)
    // The worker's forward steps ran, the restart among them; the server's stayed done.
    const ran = ev.filter((e) => e.type === 'step-done' && e.step.node === 'rr-w-1').map((e) => e.step.action)
    expect(ran).toEqual(expect.arrayContaining(['cordon', 'drain', 'replace-binary', 'restart', 'wait-ready', 'uncordon']))
    expect(ev.some((e) => e.type === 'step-done' && e.step.node === 'rr-cp-1' && e.step.mutates)).toBe(false)
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.cordoned])).toEqual([
      ['rr-cp-1', 'v1.30.4+k3s1', false], ['rr-w-1', 'v1.30.4+k3s1', false],
    ])
  }, 300_000)
})
