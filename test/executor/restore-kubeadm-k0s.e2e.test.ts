import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KUBECTL } from '../lab/helpers.js'
import { events, startExecLab, topology, type ExecLab } from './helpers.js'

const run = promisify(execFile)

/**
 * The same for a kubeadm cluster with one control-plane node: after a finished upgrade to v1.30, `kupgrade restore`
 * takes every node back to v1.29 — on the control-plane node the previous packages and `etcdutl snapshot restore` of
 * the hop's snapshot with /etc/kubernetes back; on the workers their own undos (packages from the old minor's
 * repository, held again) — each a step of its own, not an undo inside a rollback.
 */
describe('kupgrade restore: a kubeadm cluster back before its hop, from its etcd snapshot', () => {
  let l: ExecLab
  const nodeFile = (node: string, path: string) => join(l.dir, 'nodes', 'kr', node, path)

  beforeAll(async () => {
    // Two workers: the control-plane node is tainted, so a worker's pods need the other worker for the capacity gate.
    l = await startExecLab(topology('127.0.145', [{ name: 'kr', distribution: 'kubeadm', controlPlanes: 1, workers: 2 }]))
    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(0)
  }, 300_000)
  afterAll(async () => l?.stop())

  it('every node back at v1.29: etcd and the manifests restored, packages from the v1.29 repository and held, the API at v1.29', async () => {
    const r = await l.cli(['restore', l.plan, '--cluster', 'kr', '--yes', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)
    const ev = events(r.out)
    expect(ev.filter((e) => e.type === 'step-done' && e.step.node === 'kr-cp-1' && e.step.action !== 'wait-ready').map((e) => `${e.step.action}:${e.changed}`)).toEqual([
      'unhold-packages:true', 'downgrade-packages:true', 'restore-datastore:true', 'downgrade-packages:true', 'hold-packages:true', 'switch-repo:false', 'uncordon:false',
    ])
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ['kr-cp-1', 'v1.29.6', 'True', false], ['kr-w-1', 'v1.29.6', 'True', false], ['kr-w-2', 'v1.29.6', 'True', false],
    ])
    expect(readFileSync(nodeFile('kr-cp-1', 'etc/kubernetes/manifests/kube-apiserver.yaml'), 'utf8')).toMatch(/kube-apiserver:v1\.29\.6$/m)
    expect(readFileSync(nodeFile('kr-cp-1', 'var/lib/etcd/member/lab-written-by'), 'utf8').trim()).toBe('v1.29.6')
    for (const node of ['kr-cp-1', 'kr-w-1', 'kr-w-2']) {
      expect(readFileSync(nodeFile(node, 'etc/apt/sources.list.d/kubernetes.list'), 'utf8'), node).toContain('/v1.29/')
      expect(readFileSync(nodeFile(node, 'lab/state/apt-holds'), 'utf8').trim().split('\n').sort(), node).toEqual(['kubeadm', 'kubectl', 'kubelet'])
    }
    const gates = ev.filter((e) => e.type === 'gate-result')
    expect(gates.every((e) => e.status === 'pass' || e.status === 'warn'), JSON.stringify(gates.map((e) => [e.gate, e.status, e.summary]))).toBe(true)
    const version = JSON.parse((await run(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'kr', 'version', '-o', 'json'])).stdout)
    expect(version.serverVersion.gitVersion).toBe('v1.29.6')
  }, 300_000)
})

/**
 * And for k0s: the only controller reset and restored from the hop's `k0s backup` (k0s reset, k0s restore, the kept
 * binary and unit), the worker's kept binary back; a controller without a kubelet has no Node to wait for.
 */
describe('kupgrade restore: a k0s cluster back before its hop, from its k0s backup', () => {
  let l: ExecLab
  beforeAll(async () => {
    // Two workers: a k0s controller is tainted, so a worker's pods need the other worker for the capacity gate.
    l = await startExecLab(topology('127.0.146', [{ name: 'k0', distribution: 'k0s', controlPlanes: 1, workers: 2 }]))
    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(0)
  }, 300_000)
  afterAll(async () => l?.stop())

  it('the controller restored from the backup (forced), the workers\' binaries back: every machine at v1.29, the API at v1.29', async () => {
    const r = await l.cli(['restore', l.plan, '--cluster', 'k0', '--yes', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)
    const ev = events(r.out)
    expect(ev.find((e) => e.type === 'step-done' && e.step.action === 'restore-datastore')).toMatchObject({ changed: true, step: { node: 'k0-cp-1' } })
    expect(ev.filter((e) => e.type === 'step-done' && e.step.action === 'restore-binary' && e.changed).map((e) => e.step.node)).toEqual(['k0-w-1', 'k0-w-2'])
    const cp = l.lab.clusters.get('k0')!.nodes.get('k0-cp-1')!.getState()
    expect([cp.installedVersion, cp.runningVersion, cp.serviceActive]).toEqual(['v1.29.6+k0s.0', 'v1.29.6+k0s.0', true])
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ['k0-cp-1', 'v1.29.6+k0s', 'True', false], ['k0-w-1', 'v1.29.6+k0s', 'True', false], ['k0-w-2', 'v1.29.6+k0s', 'True', false],
    ])
    const version = JSON.parse((await run(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'k0', 'version', '-o', 'json'])).stdout)
    expect(version.serverVersion.gitVersion).toBe('v1.29.6+k0s')
  }, 300_000)
})
