import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { NodeEvent } from '../../src/lab/recorder/types.js'
import { KUBECTL } from '../lab/helpers.js'
import { events, rollbackOnFailure, startExecLab, topology, type ExecLab } from './helpers.js'

const run = promisify(execFile)

/**
 * onFailure: rollback of a kubeadm cluster's only control-plane node once `kubeadm upgrade apply` moved it
 * (execution.md "Rollback"): kubeadm supports no control-plane downgrade (the old manifests alone crash-loop the
 * apiserver on the moved etcd, as the lab's kubelet shows), so after the previous packages the undo is the documented
 * restore: static pods stopped (manifests moved aside) and the API awaited down, /var/lib/etcd moved aside, `etcdutl
 * snapshot restore` of the hop's snapshot, /etc/kubernetes back from the hop's backup, kubelet restarted — then the
 * node Ready at v1.29, uncordoned, packages held, the API at v1.29; the workers never touched.
 */
describe('apply: the only kubeadm control-plane node rolled back from its pre-hop etcd snapshot', () => {
  let l: ExecLab
  beforeAll(async () => {
    // Two workers: the control-plane node is tainted, so a worker's pods need the other worker for the capacity gate.
    l = await startExecLab(topology('127.0.143', [{ name: 'ka', distribution: 'kubeadm', controlPlanes: 1, workers: 2 }]))
    await l.editPlan(rollbackOnFailure())
  }, 90_000)
  afterAll(async () => l?.stop())

  const nodeFile = (path: string) => join(l.dir, 'nodes', 'ka', 'ka-cp-1', path)

  it('restores etcd and the manifests, back Ready at the old version with the API, the packages held', async () => {
    const mark = l.lab.recorder.mark()
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'ka', node: 'ka-cp-1' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    expect(ev.find((e) => e.type === 'step-failed' && e.step.node === 'ka-cp-1').step.action).toBe('wait-ready')
    expect(ev.find((e) => e.type === 'rollback-started')).toMatchObject({ node: 'ka-cp-1', path: 'snapshot-restore', detail: expect.stringMatching(/^automatic: .*etcdutl snapshot restore/) })
    const undo = ev.find((e) => e.type === 'undo-started' && e.step.action === 'upgrade-control-plane')
    expect(undo.title).toMatch(/^restore the control plane at v1\.29\.6 from the pre-hop backup in \/var\/lib\/kupgrade\/backup\/v1\.29\.6: static pods stopped/)
    // In reverse: held packages unheld, kubelet and kubectl back (from the old minor's repository, which they switch
    // back to, so the repository's own undo finds it done), the control plane restored, kubeadm back, held again,
    // uncordoned.
    expect(ev.filter((e) => e.type === 'undo-done').map((e) => `${e.step.action}:${e.changed}`)).toEqual([
      'hold-packages:true', 'upgrade-package:true', 'upgrade-control-plane:true', 'upgrade-package:true', 'unhold-packages:true', 'switch-repo:false', 'drain:true',
    ])
    const rbGates = ev.filter((e) => e.type === 'gate-result' && e.during === 'rollback')
    expect(rbGates.map((e) => e.gate)).toEqual(expect.arrayContaining(['kube-proxy-sync', 'api-vip', 'nodes-ready', 'version-skew']))
    expect(rbGates.every((e) => e.status === 'pass' || e.status === 'warn'), JSON.stringify(rbGates.map((e) => [e.gate, e.status, e.summary]))).toBe(true)
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })

    // The lab's view: the snapshot the restore used was taken before the hop; every node at v1.29; the manifests,
    // the datastore and the repository back at v1.29; the packages held.
    const changes = (l.lab.recorder.events({ cluster: 'ka', source: 'node', afterSeq: mark }) as NodeEvent[]).filter((e) => e.node === 'ka-cp-1')
    expect(changes.filter((e) => e.action === 'backup').map((e) => e.path)).toEqual(['/var/lib/kupgrade/backup/v1.29.6/etcd-snapshot.db'])
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ['ka-cp-1', 'v1.29.6', 'True', false], ['ka-w-1', 'v1.29.6', 'True', false], ['ka-w-2', 'v1.29.6', 'True', false],
    ])
    expect(readFileSync(nodeFile('etc/kubernetes/manifests/kube-apiserver.yaml'), 'utf8')).toMatch(/kube-apiserver:v1\.29\.6$/m)
    expect(readFileSync(nodeFile('var/lib/etcd/member/lab-written-by'), 'utf8').trim()).toBe('v1.29.6')
    // Restored as the member its etcd manifest names, at its own peer URL (etcdutl's default would be a member
    // "default" advertising http://localhost:2380, which no control-plane node joined later could reach).
    const peer = /^ +- --initial-advertise-peer-urls=(\S+)$/m.exec(readFileSync(nodeFile('etc/kubernetes/manifests/etcd.yaml'), 'utf8'))![1]
    expect(readFileSync(nodeFile('var/lib/etcd/member/lab-cluster'), 'utf8')).toContain(`\nmembers=ka-cp-1=${peer}\n`)
    expect(readFileSync(nodeFile('etc/apt/sources.list.d/kubernetes.list'), 'utf8')).toContain('/v1.29/')
    expect(readFileSync(join(l.dir, 'nodes', 'ka', 'ka-cp-1', 'lab', 'state', 'apt-holds'), 'utf8').trim().split('\n').sort()).toEqual(['kubeadm', 'kubectl', 'kubelet'])
    expect(ev.some((e) => e.type === 'step-started' && e.step.node?.startsWith('ka-w-') && e.step.mutates)).toBe(false)
    const version = JSON.parse((await run(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'ka', 'version', '-o', 'json'])).stdout)
    expect(version.serverVersion.gitVersion).toBe('v1.29.6')
  }, 300_000)

  it('kubeadm upgrade apply that failed and left the manifests as they were: /etc/kubernetes back, no etcd restore', async () => {
    const mark = l.lab.recorder.mark()
    const fault = { fault: 'upgrade-command-fails' as const, cluster: 'ka', node: 'ka-cp-1', params: { tool: 'kubeadm' } }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    expect(ev.find((e) => e.type === 'step-failed' && e.step.node === 'ka-cp-1').step.action).toBe('upgrade-control-plane')
    expect(ev.find((e) => e.type === 'rollback-started')).toMatchObject({ node: 'ka-cp-1', path: 'previous-version' })
    expect(ev.find((e) => e.type === 'undo-started' && e.step.action === 'upgrade-control-plane').title).toMatch(/^restore \/etc\/kubernetes from /)
    expect(ev.find((e) => e.type === 'rollback-done')).toMatchObject({ node: 'ka-cp-1' })
    // The lab's view: a snapshot taken, none restored (its kubeadm-config and every API object as they were).
    const changes = (l.lab.recorder.events({ cluster: 'ka', source: 'node', afterSeq: mark }) as NodeEvent[]).filter((e) => e.node === 'ka-cp-1')
    expect(changes.filter((e) => e.action === 'backup').length).toBe(1)
    expect(changes.filter((e) => e.action === 'restore')).toEqual([])
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ['ka-cp-1', 'v1.29.6', 'True', false], ['ka-w-1', 'v1.29.6', 'True', false], ['ka-w-2', 'v1.29.6', 'True', false],
    ])
  }, 300_000)
})
