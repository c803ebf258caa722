import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KUBECTL } from '../lab/helpers.js'
import { etcdSimMembers, events, nodeFile, startKubeadmRebuildLab, type ExecLab } from './helpers.js'

const run = promisify(execFile)

/**
 * onFailure: rebuild of a kubeadm control-plane node of three (issue 11 item 3), on the lab that refuses what kubeadm
 * refuses (test/lab/kubeadm-control-plane-rejoin.test.ts): the second control-plane node, upgraded to v1.30 after the
 * first moved the cluster there (`kubeadm upgrade node`, kubelet v1.30), stays NotReady. It is reset (`kubeadm reset -f` removes its etcd member), its Node
 * deleted, its packages put back at v1.29 and held, and it joins the control plane again with a certificate key and a
 * token made on another control-plane node: a member of the stacked etcd again, its static pods at the cluster's
 * version, Ready at v1.29; key and token never show; the other nodes are untouched (maxFailedNodes: 1).
 */
describe('apply: onFailure rebuild of a kubeadm control-plane node (three, stacked etcd)', () => {
  let l: ExecLab
  const file = (node: string, rel: string) => nodeFile(l, 'kh', node, rel)
  const members = () => etcdSimMembers(l, 'kh')
  beforeAll(async () => {
    l = await startKubeadmRebuildLab('127.0.156')
  }, 60_000)
  afterAll(async () => l?.stop())

  it('plan shows the rebuild of every control-plane node: reset, upload-certs and a control-plane join on another', async () => {
    const r = await l.cli(['plan', l.plan])
    expect(r.code, r.err).toBe(0)
    expect(r.out).toMatch(/rebuild on failure \(hop 1\) of kh-cp-1, kh-cp-2, kh-cp-3: kubeadm reset -f \(its etcd member removed\), kubectl delete node, kubeadm\/kubelet\/kubectl v1\.29\.6 \(held\), kubeadm init phase upload-certs --upload-certs/)
    expect(r.out).not.toContain('not automatic for')
  })

  it('the second control-plane node, NotReady after its upgrade, is reset and joins the control plane again', async () => {
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'kh', node: 'kh-cp-2' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    const failed = ev.find((e) => e.type === 'step-failed' && e.step.node === 'kh-cp-2')
    expect(failed.step.id).toBe('kh/kh/hop1/kh-cp-2/wait-ready')
    // It had moved: its static pods and its kubelet at v1.30.
    expect(ev.some((e) => e.type === 'step-done' && e.step.node === 'kh-cp-2' && e.step.action === 'upgrade-control-plane')).toBe(true)
    const started = ev.findIndex((e) => e.type === 'rebuild-started')
    expect(ev[started]).toMatchObject({ cluster: 'kh', node: 'kh-cp-2', hop: 1 })
    const done = ev.slice(started).filter((e) => e.type === 'step-done' && /\/rebuild\//.test(e.step.id))
    expect(done.map((e) => e.step.action), JSON.stringify(ev.slice(started).filter((e) => /failed/.test(e.type)))).toEqual(['reset-node', 'delete-node', 'unhold-packages', 'downgrade-packages', 'hold-packages', 'join-node', 'wait-ready', 'uncordon'])
    const join = done.find((e) => e.step.action === 'join-node').evidence.join('\n')
    expect(join).toContain('(on the peer control plane node)')
    // Neither the certificate key nor the bootstrap token shows anywhere.
    expect(r.out + r.err).not.toMatch(/[0-9a-f]{64}/)
    expect(r.out + r.err).not.toMatch(/\b[a-z0-9]{6}\.[a-z0-9]{16}\b/)
    const gates = ev.filter((e) => e.type === 'gate-result' && e.during === 'rollback')
    expect(gates.length).toBeGreaterThan(0)
    expect(gates.every((e) => e.status === 'pass' || e.status === 'warn'), JSON.stringify(gates.map((e) => [e.gate, e.status, e.summary]))).toBe(true)
    expect(ev.some((e) => e.type === 'rebuild-done')).toBe(true)
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })

    // On the machines: a member again; the static pods at the cluster's version (kubeadm-config: v1.30.4, which the
    // first node's upgrade apply wrote); the packages back at v1.29.6 and held; the shared CA the cluster's.
    expect(members()).toEqual(['kh-cp-1', 'kh-cp-2', 'kh-cp-3'])
    expect(file('kh-cp-2', 'etc/kubernetes/manifests/kube-apiserver.yaml')).toContain('image: registry.k8s.io/kube-apiserver:v1.30.4')
    expect(file('kh-cp-2', 'etc/kubernetes/manifests/etcd.yaml')).toContain('--initial-cluster-state=existing')
    expect(file('kh-cp-2', 'lab/state/apt-holds').trim().split('\n').sort()).toEqual(['kubeadm', 'kubectl', 'kubelet'])
    expect(file('kh-cp-2', 'etc/kubernetes/pki/ca.key')).toBe(file('kh-cp-1', 'etc/kubernetes/pki/ca.key'))
    const versions = Object.fromEntries(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version]))
    expect(versions).toEqual({ 'kh-cp-1': 'v1.30.4', 'kh-cp-2': 'v1.29.6', 'kh-cp-3': 'v1.29.6', 'kh-w-1': 'v1.29.6', 'kh-w-2': 'v1.29.6' })
    const node = l.lab.clusters.get('kh')!.model.nodes.get('kh-cp-2')!
    expect([node.isNode, node.unschedulable]).toEqual([true, false])
  }, 300_000)
})

/**
 * The same rebuild of the first control-plane node, the one whose `kubeadm upgrade apply` moved the cluster to v1.30:
 * its certificates and join command come from the next control-plane node (cp-1 is the one being reset), and the
 * cluster's kubeadm-config stays at v1.30.4, which its static pods are rejoined at.
 */
describe('apply: onFailure rebuild of the first kubeadm control-plane node (the one that ran upgrade apply)', () => {
  let l: ExecLab
  const file = (node: string, rel: string) => nodeFile(l, 'kh', node, rel)
  beforeAll(async () => {
    l = await startKubeadmRebuildLab('127.0.158')
  }, 60_000)
  afterAll(async () => l?.stop())

  it('is reset and joins again through the second control-plane node; the cluster stays at v1.30.4', async () => {
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'kh', node: 'kh-cp-1' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    expect(ev.find((e) => e.type === 'step-failed' && e.step.node === 'kh-cp-1').step.id).toBe('kh/kh/hop1/kh-cp-1/wait-ready')
    const started = ev.findIndex((e) => e.type === 'rebuild-started')
    expect(ev[started]).toMatchObject({ cluster: 'kh', node: 'kh-cp-1', hop: 1 })
    const done = ev.slice(started).filter((e) => e.type === 'step-done' && /\/rebuild\//.test(e.step.id))
    expect(done.map((e) => e.step.action), JSON.stringify(ev.slice(started).filter((e) => /failed/.test(e.type)))).toEqual(['reset-node', 'delete-node', 'unhold-packages', 'downgrade-packages', 'hold-packages', 'join-node', 'wait-ready', 'uncordon'])
    // The key and the join command came from the peer, which is the second control-plane node here; no other node was reset.
    expect(done.find((e) => e.step.action === 'join-node').evidence.join('\n')).toContain('(on the peer control plane node)')
    expect(l.lab.recorder.mutations({ cluster: 'kh', source: 'node' }).filter((e) => e.source === 'node' && e.action === 'reset').map((e) => e.source === 'node' && e.node)).toEqual(['kh-cp-1'])
    expect(r.out + r.err).not.toMatch(/[0-9a-f]{64}/)
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })

    expect(etcdSimMembers(l, 'kh')).toEqual(['kh-cp-1', 'kh-cp-2', 'kh-cp-3'])
    expect(file('kh-cp-1', 'etc/kubernetes/manifests/kube-apiserver.yaml')).toContain('image: registry.k8s.io/kube-apiserver:v1.30.4')
    expect(file('kh-cp-2', 'etc/kubernetes/manifests/kube-apiserver.yaml')).toContain('image: registry.k8s.io/kube-apiserver:v1.29.6')
    // kubeadm-config, which the join read its version from, still names the version upgrade apply wrote.
    const cc = await run(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'kh', '-n', 'kube-system', 'get', 'configmap', 'kubeadm-config', '-o', 'jsonpath={.data.ClusterConfiguration}'])
    expect(cc.stdout).toMatch(/^kubernetesVersion: v1\.30\.4$/m)
    const versions = Object.fromEntries(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version]))
    expect(versions).toEqual({ 'kh-cp-1': 'v1.29.6', 'kh-cp-2': 'v1.29.6', 'kh-cp-3': 'v1.29.6', 'kh-w-1': 'v1.29.6', 'kh-w-2': 'v1.29.6' })
  }, 300_000)
})
