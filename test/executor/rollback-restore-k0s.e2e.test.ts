import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { NodeEvent } from '../../src/lab/recorder/types.js'
import { KUBECTL } from '../lab/helpers.js'
import { downloadFailsMidRun, events, rollbackOnFailure, startExecLab, topology, type ExecLab } from './helpers.js'

const run = promisify(execFile)
const ARCHIVE = '/var/lib/kupgrade/backup/v1.29.6+k0s.0/k0s-backup/k0s_backup_…'

/**
 * onFailure: rollback of a k0s cluster's only controller once its k0s moved (execution.md "Rollback"): its old binary
 * alone would not start on the moved datastore (the lab's k0s refuses it, as k0s supports no controller downgrade),
 * and `k0s restore` refuses the controller's own etcd data, so the undo is the documented restore on a reset node:
 * k0s stopped, the kept binary back, `k0s reset`, `k0s restore` of the hop's `k0s backup`, the unit back, `k0s
 * start`. Two clusters: a controller that runs a kubelet (a Node, Ready again at the old version) and a plain one
 * (no Node: its own service is what comes back), each with workers the run never touches.
 */
describe('apply: the only k0s controller rolled back from its pre-hop k0s backup', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.142', [
      // Two workers each: a k0s controller is tainted, so a worker's pods need the other worker for the capacity gate.
      // One stage: two cases side by side, each run alone with --cluster (stages would go in order).
      { name: 'kr', stage: 'k0s', distribution: 'k0s', controlPlanes: 1, workers: 2, enableWorker: [1] },
      { name: 'kp', stage: 'k0s', distribution: 'k0s', controlPlanes: 1, workers: 2 },
    ]))
    await l.editPlan(rollbackOnFailure())
    await l.editPlan(downloadFailsMidRun)
  }, 90_000)
  afterAll(async () => l?.stop())

  const state = (cluster: string, node: string) => {
    const s = l.lab.clusters.get(cluster)!.nodes.get(node)!.getState()
    return [s.installedVersion, s.runningVersion, s.serviceActive]
  }
  const restoreOrder = (cluster: string, node: string, mark: number) =>
    (l.lab.recorder.events({ cluster, source: 'node', afterSeq: mark }) as NodeEvent[]).filter((e) => e.node === node && ['backup', 'reset', 'restore'].includes(e.action)).map((e) => (e.path ? `${e.action} ${e.path.replace(/k0s_backup_.*$/, 'k0s_backup_…')}` : e.action))

  it('a controller with a kubelet that stays NotReady: restored from the backup, Ready at the old version, the API back at v1.29', async () => {
    const mark = l.lab.recorder.mark()
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'kr', node: 'kr-cp-1' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--cluster', 'kr', '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    expect(ev.find((e) => e.type === 'step-failed' && e.step.node === 'kr-cp-1').step.action).toBe('wait-ready')
    expect(ev.find((e) => e.type === 'rollback-started')).toMatchObject({ node: 'kr-cp-1', path: 'snapshot-restore', detail: expect.stringMatching(/^automatic: .*k0s reset, k0s restore/) })
    const undo = ev.find((e) => e.type === 'undo-started' && e.step.action === 'replace-binary')
    expect(undo.title).toMatch(/^restore k0s v1\.29\.6\+k0s\.0 from the pre-hop backup in \/var\/lib\/kupgrade\/backup\/v1\.29\.6\+k0s\.0\/k0s-backup: .*k0s reset, k0s restore/)
    // The restore, then k0s already running the old release: the stop's undo (start) has nothing left to do.
    expect(ev.filter((e) => e.type === 'undo-done').map((e) => `${e.step.action}:${e.changed}`)).toEqual(['replace-binary:true', 'stop-service:false', 'drain:true'])
    expect(restoreOrder('kr', 'kr-cp-1', mark)).toEqual([`backup ${ARCHIVE}`, 'reset', `restore ${ARCHIVE}`])
    const rbGates = ev.filter((e) => e.type === 'gate-result' && e.during === 'rollback')
    expect(rbGates.map((e) => e.gate)).toEqual(expect.arrayContaining(['kube-proxy-sync', 'api-vip', 'nodes-ready', 'version-skew']))
    expect(rbGates.every((e) => e.status === 'pass' || e.status === 'warn'), JSON.stringify(rbGates.map((e) => [e.gate, e.status, e.summary]))).toBe(true)
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })

    expect(state('kr', 'kr-cp-1')).toEqual(['v1.29.6+k0s.0', 'v1.29.6+k0s.0', true])
    expect(l.lab.status().clusters.find((c) => c.name === 'kr')!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ['kr-cp-1', 'v1.29.6+k0s', 'True', false], ['kr-w-1', 'v1.29.6+k0s', 'True', false], ['kr-w-2', 'v1.29.6+k0s', 'True', false],
    ])
    expect(ev.some((e) => e.type === 'step-started' && e.step.node?.startsWith('kr-w-') && e.step.mutates)).toBe(false)
    const version = JSON.parse((await run(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'kr', 'version', '-o', 'json'])).stdout)
    expect(version.serverVersion.gitVersion).toBe('v1.29.6+k0s')
  }, 300_000)

  it('a plain controller (no Node) whose k0s install failed after k0s stop: the kept binary back and started, no restore, no Node waited for', async () => {
    const mark = l.lab.recorder.mark()
    const fault = { fault: 'upgrade-command-fails' as const, cluster: 'kp', node: 'kp-cp-1' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--cluster', 'kp', '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    expect(ev.find((e) => e.type === 'step-failed' && e.step.node === 'kp-cp-1').step.action).toBe('replace-binary')
    expect(ev.find((e) => e.type === 'rollback-started')).toMatchObject({ node: 'kp-cp-1', path: 'previous-version', detail: expect.stringMatching(/^its control plane had not moved/) })
    expect(ev.find((e) => e.type === 'rollback-done'), JSON.stringify(ev.filter((e) => e.type === 'rollback-failed'))).toMatchObject({ node: 'kp-cp-1' })
    // The run's message: what failed and what was done about it on the first line, then what the node said.
    const [headline, ...said] = ev.at(-1).message.split('\n')
    expect(headline).toMatch(/^kp\/kp-cp-1: .*command failed on kp\/kp-cp-1 .*; rolled back: kp-cp-1 back at the old version, uncordoned, post-gates passing$/)
    expect(said.join('\n')).toContain('curl: (56) Recv failure: Connection reset by peer')
    expect(ev.filter((e) => e.type === 'undo-done').map((e) => `${e.step.action}:${e.changed}`)).toEqual(['replace-binary:true', 'stop-service:false'])
    // The new k0s never ran, so its datastore did not move: no reset, no restore (that would lose what the cluster
    // wrote since the backup), the kept binary back and started.
    expect(restoreOrder('kp', 'kp-cp-1', mark)).toEqual([`backup ${ARCHIVE}`])
    expect(ev.find((e) => e.type === 'undo-started' && e.step.action === 'replace-binary').title).toMatch(/^k0s stop, put the kept k0s v1\.29\.6\+k0s\.0 back/)
    expect(state('kp', 'kp-cp-1')).toEqual(['v1.29.6+k0s.0', 'v1.29.6+k0s.0', true])
    expect(l.lab.status().clusters.find((c) => c.name === 'kp')!.nodes.map((n) => [n.name, n.node, n.version, n.ready, n.cordoned])).toEqual([
      ['kp-cp-1', false, expect.anything(), expect.anything(), false], ['kp-w-1', true, 'v1.29.6+k0s', 'True', false], ['kp-w-2', true, 'v1.29.6+k0s', 'True', false],
    ])
    expect(ev.some((e) => e.type === 'step-started' && e.step.node?.startsWith('kp-w-') && e.step.mutates)).toBe(false)
    const version = JSON.parse((await run(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'kp', 'version', '-o', 'json'])).stdout)
    expect(version.serverVersion.gitVersion).toBe('v1.29.6+k0s')
  }, 300_000)
})
