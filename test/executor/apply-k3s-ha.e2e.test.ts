import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiEvent } from '../../src/lab/recorder/types.js'
import { events, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * k3s with three servers (embedded etcd) and an agent through `kupgrade apply` (issue 10's HA case), proven with the
 * lab's recorder: the datastore is snapshotted on the first server before anything changes, the servers go one at a
 * time and all before the agent, and because two servers keep serving while the third restarts, the run keeps its
 * lock and every write it makes is answered.
 */
describe('apply: k3s 3 servers + 1 agent', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.138', [{ name: 'kha', distribution: 'k3s', controlPlanes: 3, workers: 1 }]))
  }, 60_000)
  afterAll(async () => l?.stop())

  it('snapshots etcd, upgrades the servers one at a time before the agent, and the API answers throughout', async () => {
    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(0)
    const ev = events(r.out)

    const backup = ev.find((e) => e.type === 'step-done' && e.step.action === 'backup')
    expect(backup?.step.node).toBe('kha-cp-1')
    expect(backup.evidence.join('\n')).toMatch(/k3s etcd-snapshot save/)
    const rec = l.lab.recorder
    expect(rec.nodeUpgradeOrder('kha')).toEqual(['kha-cp-1', 'kha-cp-2', 'kha-cp-3', 'kha-w-1'])
    expect(rec.maxConcurrentDisruptions('kha', 'control-plane')).toBe(1)
    expect(rec.maxConcurrentDisruptions('kha')).toBe(1)

    // Two servers serve while one restarts: no write of the run was refused or failed, the lock was never lost.
    const api = rec.events({ afterSeq: mark, source: 'api' }) as ApiEvent[]
    expect(api.filter((e) => e.code >= 500), JSON.stringify(api.filter((e) => e.code >= 500))).toEqual([])
    expect(api.some((e) => e.resource === 'leases' && e.verb === 'update' && e.code === 200)).toBe(true)
    expect(ev.some((e) => e.type === 'lock-lost' || e.type === 'step-failed' || e.type === 'step-retrying')).toBe(false)

    const status = l.lab.status().clusters[0]!
    expect(status.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ['kha-cp-1', 'v1.30.4+k3s1', 'True', false], ['kha-cp-2', 'v1.30.4+k3s1', 'True', false],
      ['kha-cp-3', 'v1.30.4+k3s1', 'True', false], ['kha-w-1', 'v1.30.4+k3s1', 'True', false],
    ])
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'done', exitCode: 0 })
  }, 420_000)
})
