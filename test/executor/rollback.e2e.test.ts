import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiEvent } from '../../src/lab/recorder/types.js'
import { events, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * onFailure: rollback on the lab (execution.md "Rollback"): a worker whose new version does not come up Ready is
 * detected by the wait for Ready, its done steps are undone in reverse (the kept binary back, restarted, Ready at the
 * old version, then uncordoned), the cluster's post-gates run again (kube-proxy-sync and api-vip among them), and the
 * run fails with exit 1 without touching the next worker (maxFailedNodes: 1).
 */
describe('apply: onFailure rollback', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.84', [{ name: 'rb', distribution: 'k3s', controlPlanes: 1, workers: 2 }]))
    await l.editPlan((d) => {
      d.spec.strategy.onFailure = 'rollback'
      d.spec.strategy.maxFailedNodes = 1
      d.spec.gates = { ...d.spec.gates, afterNode: [{ 'nodes-ready': { timeout: '4s' } }] }
    })
  }, 60_000)
  afterAll(async () => l?.stop())

  it('a worker that stays NotReady after its upgrade is rolled back to its old version, uncordoned, and the post-gates re-run', async () => {
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'rb', node: 'rb-w-1' }
    l.lab.setFault(fault, true)
    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)

    const nodes = Object.fromEntries(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n]))
    expect(nodes['rb-cp-1']!.version).toBe('v1.30.4+k3s1')
    expect([nodes['rb-w-1']!.version, nodes['rb-w-1']!.cordoned]).toEqual(['v1.29.6+k3s1', false])
    // The breaker: the next worker was never touched.
    expect([nodes['rb-w-2']!.version, nodes['rb-w-2']!.cordoned]).toEqual(['v1.29.6+k3s1', false])
    const api = l.lab.recorder.mutations({ afterSeq: mark, source: 'api' }) as ApiEvent[]
    expect(api.some((e) => e.resource === 'nodes' && e.name === 'rb-w-2' && e.unschedulable !== undefined)).toBe(false)

    // Detected by the wait for Ready at the new version, then the rollback, in this order.
    const types = ev.map((e) => e.type)
    const failed = ev.findIndex((e) => e.type === 'step-failed' && e.step.node === 'rb-w-1')
    expect(ev[failed].step.action).toBe('wait-ready')
    const started = types.indexOf('rollback-started')
    expect(started).toBeGreaterThan(failed)
    expect(ev[started]).toMatchObject({ cluster: 'rb', node: 'rb-w-1', path: 'previous-version' })
    const undone = ev.filter((e) => e.type === 'undo-done').map((e) => `${e.step.action}:${e.changed}`)
    // restore the kept binary first, uncordon last (drain's and cordon's undo are one uncordon).
    expect(undone).toEqual(['replace-binary:true', 'drain:true'])
    // After the rollback the post-gates ran again, the data-plane ones included, and passed.
    const rbGates = ev.filter((e) => e.type === 'gate-result' && e.during === 'rollback')
    expect(rbGates.map((e) => e.gate)).toEqual(expect.arrayContaining(['kube-proxy-sync', 'api-vip', 'nodes-ready']))
    expect(rbGates.every((e) => e.status === 'pass' || e.status === 'warn'), JSON.stringify(rbGates.map((e) => [e.gate, e.status, e.summary]))).toBe(true)
    expect(types.indexOf('rollback-done')).toBeGreaterThan(ev.indexOf(rbGates.at(-1)))
    const fin = ev.at(-1)
    expect(fin).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })
    expect(fin.message).toMatch(/rolled back: rb-w-1 back at the old version/)

    // The journal says the same: undoing → undone on the step ids, the run failed.
    const journal = readFileSync(fin.journal, 'utf8').trim().split('\n').slice(1).map((x) => JSON.parse(x))
    const replace = journal.filter((e) => e.step === 'rb/rb/hop1/rb-w-1/replace-binary').map((e) => e.state)
    expect(replace).toEqual(['started', 'done', 'undoing', 'undone'])
    expect(journal.at(-1)).toMatchObject({ step: 'run', state: 'failed' })
  }, 300_000)

  it('once the fault is fixed, a new apply finishes the upgrade (the rolled-back steps run again)', async () => {
    const r = await l.cli(['apply', l.plan])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(0)
    const nodes = l.lab.status().clusters[0]!.nodes
    expect(nodes.map((n) => [n.name, n.version, n.cordoned])).toEqual([
      ['rb-cp-1', 'v1.30.4+k3s1', false], ['rb-w-1', 'v1.30.4+k3s1', false], ['rb-w-2', 'v1.30.4+k3s1', false],
    ])
  }, 300_000)

  it('kupgrade rollback undoes the finished run newest first: the agents go back, the server that moved stops it with the restore procedure', async () => {
    const mark = l.lab.recorder.mark()
    const r = await l.cli(['rollback', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(1)
    const ev = events(r.out)
    expect(ev.filter((e) => e.type === 'rollback-done').map((e) => e.node)).toEqual(['rb-w-2', 'rb-w-1'])
    const failed = ev.find((e) => e.type === 'rollback-failed')
    expect(failed).toMatchObject({ node: 'rb-cp-1' })
    expect(failed.error).toMatch(/snapshot/)
    expect(ev.at(-1).message).toMatch(/rollback of rb\/rb-cp-1 stopped: .*rolled back before it: rb\/rb-w-2, rb\/rb-w-1/)
    const nodes = l.lab.status().clusters[0]!.nodes
    expect(nodes.map((n) => [n.name, n.version, n.cordoned])).toEqual([
      ['rb-cp-1', 'v1.30.4+k3s1', false], ['rb-w-1', 'v1.29.6+k3s1', false], ['rb-w-2', 'v1.29.6+k3s1', false],
    ])
    // The server was never touched by the rollback, and the lock was taken and given back.
    const api = l.lab.recorder.mutations({ afterSeq: mark, source: 'api' }) as ApiEvent[]
    expect(api.some((e) => e.resource === 'nodes' && e.name === 'rb-cp-1')).toBe(false)
    expect(types(ev)).toEqual(expect.arrayContaining(['lock-acquired', 'lock-released']))
  }, 300_000)
})

const types = (ev: any[]): string[] => ev.map((e) => e.type)

