import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KUBECTL, labKubectl, openSsh } from '../lab/helpers.js'
import { events, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * Nodes the cluster has and the plan does not list (added after the plan was written, forgotten, or left out on
 * purpose). kupgrade never upgrades them, yet they are as much part of the skew as the listed ones: the version-skew
 * gate judged the listed nodes only, passed, and the control plane moved past a kubelet it left out of policy
 * (k3s), or past a node whose kube-proxy k0s's controllers move with them (k0s). A control-plane node left out (a
 * k3s server; a k0s controller, which has no Node, seen by its lease) would stay behind the kubelets the run moves.
 */
describe('apply with nodes in the API the plan does not list', () => {
  let l: ExecLab
  beforeAll(async () => {
    const t = topology('127.0.166', [
      { name: 'edge', stage: 'one', distribution: 'k3s', controlPlanes: 1, workers: 2 },
      { name: 'zero', stage: 'one', distribution: 'k0s', version: 'v1.29.6+k0s.0', controlPlanes: 1, workers: 2 },
      { name: 'ha', stage: 'one', distribution: 'k3s', version: 'v1.29.6', controlPlanes: 3, workers: 1 },
      { name: 'kz', stage: 'one', distribution: 'k0s', version: 'v1.29.6+k0s.0', controlPlanes: 3, workers: 1 },
    ], ['v1.26.15', 'v1.29.6', 'v1.30.4'])
    // edge-w-2 was left behind three minors ago; zero-w-2 is at the cluster's version.
    const edge = (t as any).spec.clusters[0]
    edge.version = 'v1.29.6'
    edge.nodes[2].version = 'v1.26.15'
    l = await startExecLab(t)
    await l.editPlan((d) => {
      for (const c of d.spec.clusters) c.nodes = c.nodes.filter((n: { name: string }) => !n.name.endsWith('-w-2') && n.name !== 'ha-cp-3' && n.name !== 'kz-cp-3')
    })
  }, 120_000)
  afterAll(async () => l?.stop())

  const { ok } = openSsh(() => l)

  // What the run changed on the nodes and their Node objects (the lock's Lease and the gates' probe pods aside).
  const nodeChanges = (mark: number) =>
    l.lab.recorder.mutations({ afterSeq: mark }).filter((e) => e.source === 'node' || (e.client !== 'lab' && (e.resource === 'nodes' || e.subresource === 'eviction')))

  it('k3s: a lagging kubelet the plan leaves out blocks the control plane\'s move before anything changes (exit 3)', async () => {
    const live = await l.cli(['plan', l.plan, '--live'])
    expect(live.out).toContain('~ nodes in the API but not in the plan: edge-w-2 (kubelet v1.26.15+k3s1)')

    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', l.plan, '--cluster', 'edge', '--yes', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(3)
    const skew = events(r.out).find((e) => e.type === 'gate-result' && e.gate === 'version-skew')
    expect(skew).toMatchObject({ status: 'fail', step: { id: 'one/edge/pre/gate/version-skew' } })
    expect(skew.summary).toContain('kubelet v1.26.15+k3s1 on edge-w-2 must be at v1.28 or newer before kube-apiserver moves to v1.30')
    expect(skew.summary).toContain('(edge-w-2 is not in the plan: this run does not upgrade it)')
    expect(skew.hint).toBe("edge-w-2 is in the API but not in the plan, so this run leaves it as it is: upgrade it first, list it in the cluster's nodes (plan --live then says whether the hops can take it along), or delete its Node object (kubectl delete node) if the machine is gone")
    expect(skew.evidence).toContain('node edge-w-2 (not in the plan): kubelet v1.26.15+k3s1, kube-proxy v1.26.15+k3s1 (k3s-process)')
    expect(nodeChanges(mark)).toEqual([])
    // Nothing moved: every node still at its version.
    expect([...l.lab.clusters.get('edge')!.model.nodes.values()].map((n) => n.kubeletVersion)).toEqual(['v1.29.6', 'v1.29.6', 'v1.26.15'])

    // The hint's last way out: the machine is gone, its Node object deleted (real kubectl). The gate then passes.
    // (Asynchronously: the lab answers from this process.)
    const del = await promisify(execFile)(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'edge', 'delete', 'node', 'edge-w-2'])
    expect(del.stdout).toBe('node "edge-w-2" deleted\n')
    const check = await l.cli(['check', l.plan, '--cluster', 'edge', '--format', 'json'])
    const after = JSON.parse(check.out).clusters[0].results.find((g: any) => g.gate === 'version-skew')
    expect(after, check.out.slice(0, 3000)).toMatchObject({ status: 'pass', summary: 'kubelet, kube-proxy and kube-apiserver versions within the skew policy (2 nodes, ready for v1.30.4)' })
  }, 120_000)

  it('k0s: a worker the plan leaves out would get the controllers\' next kube-proxy on its old kubelet: blocked before the hop (exit 3)', async () => {
    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', l.plan, '--cluster', 'zero', '--yes', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(3)
    const skew = events(r.out).find((e) => e.type === 'gate-result' && e.gate === 'version-skew')
    expect(skew).toMatchObject({ status: 'fail', step: { id: 'one/zero/pre/gate/version-skew' } })
    expect(skew.summary).toMatch(/^1 version skew violation: kube-proxy on zero-w-2 moves to v1\.30 with k0s's controllers while its kubelet stays at v1\.29\.6\+k0s: k0s requires the same minor \(zero-w-2 is not in the plan: this run does not upgrade it\)/)
    expect(skew.evidence).toContain('node zero-w-2 (not in the plan): kubelet v1.29.6+k0s, kube-proxy v1.29.6 (daemonset-pod)')
    expect(nodeChanges(mark)).toEqual([])
  }, 120_000)

  it('k3s: a server the plan leaves out is an etcd member no planned node accounts for, and an apiserver the kubelets would outrun: blocked before anything changes (exit 3)', async () => {
    // k3s names a member after its node and 8 hex digits (pkg/etcd setName), as the lab does: seen over OpenSSH.
    const listed = JSON.parse((await ok('127.0.166.17', 'etcdctl --endpoints=https://127.0.0.1:2379 member list -w json')).replace(/:(\d{16,})/g, ':"$1"')) as { members: { name: string }[] }
    const names = listed.members.map((m) => m.name).sort()
    expect(names).toHaveLength(3)
    names.forEach((name, i) => expect(name).toMatch(new RegExp(`^ha-cp-${i + 1}-[0-9a-f]{8}$`)))

    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', l.plan, '--cluster', 'ha', '--yes', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(3)
    const etcd = events(r.out).find((e) => e.type === 'gate-result' && e.gate === 'etcd')
    expect(etcd).toMatchObject({ status: 'fail', step: { id: 'one/ha/pre/gate/etcd' } })
    expect(etcd.summary).toContain(`etcd has 3 members for 2 control-plane nodes in the plan: etcd member ${names[2]} is no control-plane node of the plan: this run would leave it at the current version`)
    expect(etcd.hint).toBe("list every control-plane node in the cluster's nodes (kupgrade upgrades, backs up and restores only the nodes the plan lists), or remove the member of a machine that is gone (etcdctl member remove <ID>) before upgrading")
    expect(etcd.evidence).toContain(`etcdctl member list on ha-cp-1, ha-cp-2: 3 members: ${listed.members.map((m) => `${m.name} (https://127.0.166.${16 + Number(m.name.split('-')[2])}:2380)`).join(', ')}; control-plane nodes in the plan: ha-cp-1, ha-cp-2`)
    // The skew it would leave: ha-cp-3's apiserver behind the kubelets the run moves (what an external datastore,
    // with no etcd member to count, is refused by alone).
    const skew = events(r.out).find((e) => e.type === 'gate-result' && e.gate === 'version-skew')
    expect(skew).toMatchObject({ status: 'fail', step: { id: 'one/ha/pre/gate/version-skew' } })
    expect(skew.summary).toContain('kube-apiserver v1.29.6+k3s1 on ha-cp-3 stays at v1.29 while this run moves the kubelets to v1.30: no kubelet may be newer than a kube-apiserver it can reach (ha-cp-3 is not in the plan: this run does not upgrade it)')
    expect(nodeChanges(mark)).toEqual([])
  }, 120_000)

  it('k0s: a controller the plan leaves out has no Node; its lease shows it, and the run is refused before anything changes (exit 3)', async () => {
    // Real kubectl: every controller holds kube-node-lease/k0s-ctrl-<node>, as k0s's controllers do.
    const kubectl = labKubectl(() => l, 'kz')
    const holders = async () => (await kubectl(['get', 'leases', '-n', 'kube-node-lease', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.spec.holderIdentity}{"\\n"}{end}'])).stdout.split('\n').filter((x) => x.startsWith('k0s-ctrl-'))
    expect((await holders()).map((x) => x.replace(/=[0-9a-f]{64}$/, '=held'))).toEqual(['k0s-ctrl-kz-cp-1=held', 'k0s-ctrl-kz-cp-2=held', 'k0s-ctrl-kz-cp-3=held'])

    const live = await l.cli(['plan', l.plan, '--live'])
    expect(live.out).toContain('~ nodes in the API but not in the plan: kz-cp-3 (k0s controller without a Node, lease kube-node-lease/k0s-ctrl-kz-cp-3 held)')

    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', l.plan, '--cluster', 'kz', '--yes', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(3)
    const gate = (id: string) => events(r.out).find((e) => e.type === 'gate-result' && e.gate === id)
    expect(gate('version-skew')).toMatchObject({ status: 'fail', step: { id: 'one/kz/pre/gate/version-skew' } })
    expect(gate('version-skew').summary).toContain("kz-cp-3 runs a k0s controller (its lease kube-node-lease/k0s-ctrl-kz-cp-3 is held) with no Node, so its version cannot be read through the API, and this run would leave its kube-apiserver where it is while it moves the kubelets to v1.30 (kz-cp-3 is not in the plan: this run does not upgrade it)")
    expect(gate('version-skew').evidence).toContain('node kz-cp-3 (not in the plan): k0s controller without a Node: lease kube-node-lease/k0s-ctrl-kz-cp-3 held, version unknown')
    expect(gate('version-skew').hint).toBe("kz-cp-3 is in the API but not in the plan, so this run leaves it as it is: upgrade it first or list it in the cluster's nodes (plan --live then says whether the hops can take it along)")
    expect(gate('etcd').summary).toContain('etcd member kz-cp-3 is no control-plane node of the plan')
    // Three controllers run, not the plan's two: no quorum warning.
    expect(gate('control-plane-ha'), r.out.split('\n').filter((x) => /gate-result|step-failed/.test(x)).join('\n')).toMatchObject({ status: 'pass', summary: '3 control-plane nodes (odd, ≥ 3)' })
    expect(gate('control-plane-ha').evidence, JSON.stringify(gate('control-plane-ha'))).toContain('plan + kubectl get leases -n kube-node-lease: plan: 2 (kz-cp-1, kz-cp-2); k0s controllers holding their lease (kube-node-lease/k0s-ctrl-*): 3 (kz-cp-1, kz-cp-2, kz-cp-3)')
    expect(nodeChanges(mark)).toEqual([])

    // Stopped, k0s releases its lease (ReleaseOnCancel): no holder, so it is no running controller.
    await ok('127.0.166.23', 'systemctl stop k0scontroller')
    expect(await holders()).toContain('k0s-ctrl-kz-cp-3=')
    const check = await l.cli(['check', l.plan, '--cluster', 'kz', '--gate', 'version-skew', '--format', 'json'])
    expect(JSON.parse(check.out).clusters[0].results[0], check.out.slice(0, 2000)).toMatchObject({ gate: 'version-skew', status: 'pass' })
  }, 120_000)
})
