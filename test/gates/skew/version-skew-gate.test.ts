import type { Node, Pod } from 'kubernetes-types/core/v1.js'
import { describe, expect, it } from 'vitest'
import type { ClusterFacts, NodeFacts } from '../../../src/facts/types.js'
import { versionSkewGate } from '../../../src/gates/checks/version-skew.js'
import type { GateContext } from '../../../src/gates/types.js'
import type { KubectlClient } from '../../../src/transport/kubectl/client.js'
import type { Transport } from '../../../src/transport/types.js'
import { apiNode, systemPod } from '../../facts/helpers/fake-fleet.js'

/** A kubectl that serves canned API objects, and counts calls (the gate must read, three calls, never write). */
function fakeKubectl(a: { version: string; nodes: Node[]; pods: Pod[]; fail?: string }): KubectlClient & { calls: string[] } {
  const calls: string[] = []
  const guard = <T>(what: string, value: T) => {
    calls.push(what)
    if (a.fail) return Promise.reject(new Error(a.fail))
    return Promise.resolve(value)
  }
  return {
    calls,
    version: () => guard('version', { major: '1', minor: '30', gitVersion: a.version }),
    nodes: () => guard('nodes', { items: a.nodes }),
    pods: (ns: string) => guard(`pods ${ns}`, { items: a.pods }),
    // Any other read (the run lock's Lease is the facts' to read, not this gate's) is counted too.
    json: (args: string[]) => guard(`json ${args.join(' ')}`, {}),
  } as unknown as KubectlClient & { calls: string[] }
}

const noSsh = new Proxy({}, { get: () => () => Promise.reject(new Error('the version-skew gate reads no node over SSH')) }) as unknown as Transport
const target = (host: string) => ({ host, port: 22, user: 'root' }) as GateContext['nodes'][number]['target']

function ctx(dist: GateContext['distribution'], kubectl: KubectlClient, o: Partial<GateContext> = {}): GateContext {
  return {
    cluster: 'prod', distribution: dist, scope: 'cluster',
    nodes: [
      { name: 'cp-1', role: 'control-plane', target: target('10.0.0.1') },
      { name: 'w-1', role: 'worker', target: target('10.0.0.2') },
      { name: 'w-2', role: 'worker', target: target('10.0.0.3') },
    ],
    ssh: noSsh, kubectl, now: () => new Date('2026-12-01T00:00:00Z'), ...o,
  }
}

const kubeadmApi = (w2Kubelet: string, w2Proxy: string) => ({
  version: 'v1.30.4',
  nodes: [apiNode('cp-1', 'v1.30.4', { roles: ['control-plane'] }), apiNode('w-1', 'v1.30.4'), apiNode('w-2', w2Kubelet)],
  pods: [
    systemPod('kube-apiserver-cp-1', 'cp-1', 'registry.k8s.io/kube-apiserver:v1.30.4', { component: 'kube-apiserver' }),
    systemPod('kube-proxy-a', 'cp-1', 'registry.k8s.io/kube-proxy:v1.30.4', { 'k8s-app': 'kube-proxy' }),
    systemPod('kube-proxy-b', 'w-1', 'registry.k8s.io/kube-proxy:v1.30.4', { 'k8s-app': 'kube-proxy' }),
    systemPod('kube-proxy-c', 'w-2', `registry.k8s.io/kube-proxy:${w2Proxy}`, { 'k8s-app': 'kube-proxy' }),
  ],
})

describe('version-skew gate on the live cluster', () => {
  it('passes a cluster within the policy, with the versions it read as evidence, in three read-only calls', async () => {
    const kubectl = fakeKubectl(kubeadmApi('v1.29.8', 'v1.30.4'))
    const r = await versionSkewGate.check(ctx('kubeadm', kubectl), {})
    expect(r.status).toBe('pass')
    expect(r.incident).toBe('kubelet-kube-proxy-skew')
    expect(r.evidence).toEqual([
      { source: 'kube-apiserver (/version)', observed: 'v1.30.4' },
      { source: 'kube-apiserver (kube-apiserver pod on cp-1)', observed: 'v1.30.4' },
      { source: 'nodes cp-1, w-1', observed: 'kubelet v1.30.4, kube-proxy v1.30.4 (daemonset-pod)' },
      { source: 'node w-2', observed: 'kubelet v1.29.8, kube-proxy v1.30.4 (daemonset-pod)' },
    ])
    expect(kubectl.calls.sort()).toEqual(['nodes', 'pods kube-system', 'version'])
  })

  it('fails a kubelet newer than the apiserver (the issue: it used to print a warning and exit 0)', async () => {
    const r = await versionSkewGate.check(ctx('kubeadm', fakeKubectl(kubeadmApi('v1.31.0', 'v1.30.4'))), {})
    expect(r.status).toBe('fail')
    expect(r.summary).toContain('kubelet v1.31.0 on w-2 is newer than kube-apiserver')
    expect(r.evidence).toContainEqual(expect.objectContaining({ source: 'kubelet-newer-than-apiserver (w-2)' }))
    expect(r.hint).toBeDefined()
  })

  it('reads kube-proxy from its pod, never nodeInfo.kubeProxyVersion: a kube-proxy 4 minors behind fails', async () => {
    const r = await versionSkewGate.check(ctx('kubeadm', fakeKubectl(kubeadmApi('v1.30.4', 'v1.26.1'))), {})
    expect(r.status).toBe('fail')
    expect(r.summary).toContain('kube-proxy v1.26.1 on w-2 is 4 minors older')
  })

  it('warns when a node is at the edge (3 behind): legal, but the control plane cannot move', async () => {
    const r = await versionSkewGate.check(ctx('kubeadm', fakeKubectl(kubeadmApi('v1.27.9', 'v1.30.4'))), {})
    expect(r.status).toBe('warn')
    expect(r.summary).toContain('kubelet v1.27.9 on w-2 is 3 minors behind')
  })

  it('before the control plane moves to the target, applies the plan policy and kubeadm\'s kubelet rule', async () => {
    const api = kubeadmApi('v1.29.8', 'v1.30.4')
    const to31 = { expectedVersion: 'v1.31.2' }
    // kubeadm upgrade apply v1.31 refuses the 1.29 kubelet (more than one minor behind the target).
    const kubeadm = await versionSkewGate.check(ctx('kubeadm', fakeKubectl(api), to31), { policy: 'permissive' })
    expect(kubeadm.status).toBe('fail')
    expect(kubeadm.evidence.map((e) => e.source)).toContain('kubeadm-kubelet-too-old (w-2)')
    // On k3s a 1.28 kubelet is 3 behind 1.31: conservative refuses, permissive lets it through.
    const k3s = {
      version: 'v1.30.4+k3s1',
      nodes: [apiNode('cp-1', 'v1.30.4+k3s1'), apiNode('w-1', 'v1.30.4+k3s1'), apiNode('w-2', 'v1.28.15+k3s1')],
      pods: [],
    }
    const conservative = await versionSkewGate.check(ctx('k3s', fakeKubectl(k3s), to31), { policy: 'conservative' })
    expect(conservative.status).toBe('fail')
    expect(conservative.summary).toContain('kubelet v1.28.15+k3s1 on w-2 must be at v1.29 or newer before kube-apiserver moves to v1.31')
    expect((await versionSkewGate.check(ctx('k3s', fakeKubectl(k3s), to31), { policy: 'permissive' })).status).toBe('pass')
  })

  it('k3s: servers are apiservers, the embedded kube-proxy is the kubelet; HA apiservers two minors apart fail', async () => {
    const r = await versionSkewGate.check(ctx('k3s', fakeKubectl({
      version: 'v1.30.4+k3s1',
      nodes: [apiNode('cp-1', 'v1.30.4+k3s1'), apiNode('cp-2', 'v1.28.9+k3s1'), apiNode('w-1', 'v1.28.9+k3s1')],
      pods: [],
    }), { nodes: [{ name: 'cp-1', role: 'control-plane', target: target('a') }, { name: 'cp-2', role: 'control-plane', target: target('b') }, { name: 'w-1', role: 'worker', target: target('c') }] }), {})
    expect(r.status).toBe('fail')
    expect(r.evidence).toContainEqual({ source: 'kube-apiserver (k3s server on cp-2)', observed: 'v1.28.9+k3s1' })
    expect(r.summary).toContain('kube-apiserver instances span v1.28 to v1.30')
  })

  it('a node-scoped check judges that node only', async () => {
    const api = kubeadmApi('v1.31.0', 'v1.30.4')
    expect((await versionSkewGate.check(ctx('kubeadm', fakeKubectl(api), { scope: 'node', node: 'w-1' }), {})).status).toBe('pass')
    expect((await versionSkewGate.check(ctx('kubeadm', fakeKubectl(api), { scope: 'node', node: 'w-2' }), {})).status).toBe('fail')
  })

  it('uses the facts the caller already has (k0s: kube-proxy must match the kubelet) without calling kubectl', async () => {
    const kubectl = fakeKubectl({ version: 'x', nodes: [], pods: [], fail: 'must not be called' })
    const node = (name: string, kubelet: string, proxy: string, role: NodeFacts['role'] = 'worker'): NodeFacts => ({
      name, role, host: name, kubeletVersion: kubelet, kubeProxyVersion: proxy, kubeProxySource: 'daemonset-pod', roles: [], inApi: true, disk: [], services: {},
    })
    const facts: ClusterFacts = {
      name: 'prod', distribution: 'k0s', from: 'v1.30.4+k0s.0',
      apiserverVersions: [{ version: 'v1.30.4+k0s', source: '/version' }],
      nodes: [node('w-1', 'v1.30.4+k0s', 'v1.30.4'), node('w-2', 'v1.29.8+k0s', 'v1.30.4')],
      unlistedNodes: [],
    }
    const r = await versionSkewGate.check(ctx('k0s', kubectl, { facts }), {})
    expect(r.status).toBe('fail')
    expect(r.evidence.map((e) => e.source)).toContain('k0s-kube-proxy-matches-kubelet (w-2)')
    expect(kubectl.calls).toEqual([])

    // Mid-hop to v1.30 (the post-gates after a rollback or rebuild), w-2 waits for its turn: the controllers' kube-proxy
    // on its older kubelet is the upgrade's own doing, a warning until the hop reaches it.
    const mid = await versionSkewGate.check(ctx('k0s', kubectl, { facts, hopInProgress: { to: 'v1.30.4+k0s' } }), {})
    expect(mid.status).toBe('warn')
    expect(mid.summary).toMatch(/kube-proxy v1\.30\.4 on w-2 is not the minor of kubelet v1\.29\.8\+k0s.* until the hop to v1\.30\.4\+k0s reaches it/)
    // Not a kube-proxy the hop would explain: one from another minor than the hop's still fails.
    const odd: ClusterFacts = { ...facts, nodes: [node('w-1', 'v1.30.4+k0s', 'v1.30.4'), node('w-2', 'v1.29.8+k0s', 'v1.28.2')] }
    expect((await versionSkewGate.check(ctx('k0s', kubectl, { facts: odd, hopInProgress: { to: 'v1.30.4+k0s' } }), {})).status).toBe('fail')
  })

  it('k0s: a controller with a kubelet that has just moved keeps the old kube-proxy until the controllers have moved (its own after-gate warns); the hop\'s post-gates fail it', async () => {
    const kubectl = fakeKubectl({ version: 'x', nodes: [], pods: [], fail: 'must not be called' })
    const node = (name: string, kubelet: string, proxy: string, role: NodeFacts['role']): NodeFacts => ({
      name, role, host: name, kubeletVersion: kubelet, kubeProxyVersion: proxy, kubeProxySource: 'daemonset-pod', roles: [], inApi: true, disk: [], services: {},
    })
    const facts: ClusterFacts = {
      name: 'prod', distribution: 'k0s', from: 'v1.29.6+k0s.0',
      apiserverVersions: [{ version: 'v1.30.4+k0s', source: '/version' }],
      nodes: [node('cp-1', 'v1.30.4+k0s', 'v1.29.6', 'control-plane'), node('cp-2', 'v1.29.6+k0s', 'v1.29.6', 'control-plane'), node('w-1', 'v1.29.6+k0s', 'v1.29.6', 'worker')],
      unlistedNodes: [],
    }
    const nodes: GateContext['nodes'] = [
      { name: 'cp-1', role: 'control-plane', target: target('10.0.0.1') }, { name: 'cp-2', role: 'control-plane', target: target('10.0.0.2') }, { name: 'w-1', role: 'worker', target: target('10.0.0.3') },
    ]
    const after = await versionSkewGate.check(ctx('k0s', kubectl, { facts, nodes, scope: 'node', node: 'cp-1', expectedVersion: 'v1.30.4+k0s' }), {})
    expect(after.status).toBe('warn')
    expect(after.summary).toBe('kube-proxy v1.29.6 on cp-1 is not the minor of kubelet v1.30.4+k0s: k0s ships them together and requires the same minor — until every controller runs v1.30.4+k0s: k0s moves its kube-proxy DaemonSet with its controllers')
    // The hop's post-gates (cluster scope): the DaemonSet should have moved by then.
    expect((await versionSkewGate.check(ctx('k0s', kubectl, { facts, nodes, expectedVersion: 'v1.30.4+k0s' }), {})).status).toBe('fail')
    // The only controller moves the DaemonSet itself: no excuse there.
    const single = nodes.filter((n) => n.name !== 'cp-2')
    expect((await versionSkewGate.check(ctx('k0s', kubectl, { facts: { ...facts, nodes: facts.nodes.filter((n) => n.name !== 'cp-2') }, nodes: single, scope: 'node', node: 'cp-1', expectedVersion: 'v1.30.4+k0s' }), {})).status).toBe('fail')
    // A kube-proxy two minors behind is no transition.
    const old: ClusterFacts = { ...facts, nodes: [node('cp-1', 'v1.30.4+k0s', 'v1.28.2', 'control-plane'), ...facts.nodes.slice(1)] }
    expect((await versionSkewGate.check(ctx('k0s', kubectl, { facts: old, nodes, scope: 'node', node: 'cp-1', expectedVersion: 'v1.30.4+k0s' }), {})).status).toBe('fail')
  })

  it('unknown, never pass, when the API cannot be read or reports no readable version', async () => {
    const down = await versionSkewGate.check(ctx('kubeadm', fakeKubectl({ version: '', nodes: [], pods: [], fail: 'connection refused' })), {})
    expect(down.status).toBe('unknown')
    expect(down.summary).toContain('connection refused')
    const garbled = await versionSkewGate.check(ctx('kubeadm', fakeKubectl({ version: 'banana', nodes: [apiNode('w-1', 'v1.30.0')], pods: [] })), {})
    expect(garbled.status).toBe('unknown')
    const oddKubelet = await versionSkewGate.check(ctx('kubeadm', fakeKubectl({ version: 'v1.30.0', nodes: [apiNode('w-1', 'v1.30.0-weird+build.1~x')], pods: [] })), {})
    expect(oddKubelet.status).toBe('unknown')
  })
})

describe('version-skew gate and the nodes the plan does not list', () => {
  // kubeadm, control plane on v1.29 moving to v1.30; the plan lists cp-1, w-1 and w-2, the API has w-9 too.
  const api = (w9Kubelet: string, w9Proxy: string) => ({
    version: 'v1.29.6',
    nodes: [apiNode('cp-1', 'v1.29.6', { roles: ['control-plane'] }), apiNode('w-1', 'v1.29.6'), apiNode('w-2', 'v1.29.6'), apiNode('w-9', w9Kubelet)],
    pods: [
      systemPod('kube-apiserver-cp-1', 'cp-1', 'registry.k8s.io/kube-apiserver:v1.29.6', { component: 'kube-apiserver' }),
      ...['cp-1', 'w-1', 'w-2'].map((n) => systemPod(`kube-proxy-${n}`, n, 'registry.k8s.io/kube-proxy:v1.29.6', { 'k8s-app': 'kube-proxy' })),
      systemPod('kube-proxy-w-9', 'w-9', `registry.k8s.io/kube-proxy:${w9Proxy}`, { 'k8s-app': 'kube-proxy' }),
    ],
  })

  it('holds the control plane\'s next move to their kubelets too, says they are not in the plan and what to do', async () => {
    const r = await versionSkewGate.check(ctx('kubeadm', fakeKubectl(api('v1.27.3', 'v1.29.6')), { expectedVersion: 'v1.30.4' }), {})
    expect(r.status).toBe('fail')
    expect(r.summary).toContain('kubelet v1.27.3 on w-9 must be at v1.28 or newer before kube-apiserver moves to v1.30')
    expect(r.summary).toContain('(w-9 is not in the plan: this run does not upgrade it)')
    // kubeadm upgrade apply itself refuses it (it reads every Node), also named.
    expect(r.evidence).toContainEqual(expect.objectContaining({ source: 'kubeadm-kubelet-too-old (w-9)' }))
    expect(r.evidence).toContainEqual({ source: 'node w-9 (not in the plan)', observed: 'kubelet v1.27.3, kube-proxy v1.29.6 (daemonset-pod)' })
    expect(r.hint).toBe("w-9 is in the API but not in the plan, so this run leaves it as it is: upgrade it first, list it in the cluster's nodes (plan --live then says whether the hops can take it along), or delete its Node object (kubectl delete node) if the machine is gone")
    // A listed node's own check is about that node: the unlisted one is the cluster's pre-gates' concern.
    expect((await versionSkewGate.check(ctx('kubeadm', fakeKubectl(api('v1.27.3', 'v1.29.6')), { expectedVersion: 'v1.30.4', scope: 'node', node: 'w-1' }), {})).status).toBe('pass')
  })

  it('passes one at the cluster\'s version, counting it', async () => {
    const r = await versionSkewGate.check(ctx('kubeadm', fakeKubectl(api('v1.29.6', 'v1.29.6')), { expectedVersion: 'v1.30.4' }), {})
    expect(r.status).toBe('pass')
    expect(r.summary).toBe('kubelet, kube-proxy and kube-apiserver versions within the skew policy (3 nodes and 1 not in the plan, ready for v1.30.4)')
    expect(r.hint).toBeUndefined()
  })

  it('k3s: an unlisted server is an apiserver the run does not move; its kubelet and kube-proxy are the process\'s', async () => {
    const k3s = {
      version: 'v1.29.6+k3s1',
      nodes: [apiNode('cp-1', 'v1.29.6+k3s1', { roles: ['control-plane', 'master'] }), apiNode('w-1', 'v1.29.6+k3s1'), apiNode('w-2', 'v1.29.6+k3s1'), apiNode('cp-9', 'v1.28.9+k3s1', { roles: ['control-plane', 'etcd', 'master'] })],
      pods: [],
    }
    const r = await versionSkewGate.check(ctx('k3s', fakeKubectl(k3s), { expectedVersion: 'v1.30.4+k3s1' }), {})
    expect(r.evidence).toContainEqual({ source: 'node cp-9 (not in the plan)', observed: 'kubelet v1.28.9+k3s1, kube-proxy v1.28.9+k3s1 (k3s-process)' })
    // Already out of policy (the workers' kubelets are newer than cp-9's apiserver), and two minors between apiservers
    // once cp-1 moves: refused before it does. cp-9 is not moved by this run, so no minor of its own is skipped.
    expect(r.status).toBe('fail')
    expect(r.evidence).toContainEqual(expect.objectContaining({ source: 'kubelet-newer-than-apiserver (w-1)' }))
    expect(r.evidence).toContainEqual({ source: 'apiserver-ha-skew (cp-9)', observed: 'before a kube-apiserver moves to v1.30, every kube-apiserver must be at v1.29 or v1.30; the one on cp-9 is at v1.28.9+k3s1 (cp-9 is not in the plan: this run does not upgrade it)' })
    expect(r.evidence.map((e) => e.source)).not.toContain('apiserver-skipped-minor (cp-9)')
    expect(r.summary).toContain('cp-9')
  })

  it('k0s: the controllers\' next kube-proxy on an unlisted worker\'s kubelet fails before the hop; mid-hop it is no transition', async () => {
    const kubectl = fakeKubectl({ version: 'x', nodes: [], pods: [], fail: 'must not be called' })
    const facts: ClusterFacts = {
      name: 'prod', distribution: 'k0s', from: 'v1.29.6+k0s.0', target: 'v1.30.4+k0s.0',
      apiserverVersions: [{ version: 'v1.29.6+k0s', source: '/version' }],
      nodes: [{ name: 'w-1', role: 'worker', host: 'w-1', kubeletVersion: 'v1.29.6+k0s', kubeProxyVersion: 'v1.29.6', kubeProxySource: 'daemonset-pod', roles: [], inApi: true, disk: [], services: {} }],
      unlistedNodes: [{ name: 'w-9', roles: [], kubeletVersion: 'v1.29.6+k0s', kubeProxyVersion: 'v1.29.6', kubeProxySource: 'daemonset-pod' }],
    }
    const before = await versionSkewGate.check(ctx('k0s', kubectl, { facts }), {})
    expect(before.status).toBe('fail')
    expect(before.summary).toBe("1 version skew violation: kube-proxy on w-9 moves to v1.30 with k0s's controllers while its kubelet stays at v1.29.6+k0s: k0s requires the same minor (w-9 is not in the plan: this run does not upgrade it)")
    // The same worker listed is the hop's to upgrade: nothing to refuse.
    const listed: ClusterFacts = { ...facts, nodes: [...facts.nodes, { ...facts.nodes[0]!, name: 'w-9', host: 'w-9' }], unlistedNodes: [] }
    expect((await versionSkewGate.check(ctx('k0s', kubectl, { facts: listed }), {})).status).toBe('pass')
    // Mid-hop the controllers' kube-proxy reached it; the hop never will.
    const mid: ClusterFacts = { ...facts, apiserverVersions: [{ version: 'v1.30.4+k0s', source: '/version' }], unlistedNodes: [{ ...facts.unlistedNodes[0]!, kubeProxyVersion: 'v1.30.4' }] }
    expect((await versionSkewGate.check(ctx('k0s', kubectl, { facts: mid, hopInProgress: { to: 'v1.30.4+k0s' } }), {})).status).toBe('fail')
  })

  it('a control-plane node the plan leaves out, one minor behind the target, would stay behind the kubelets the run moves: refused before the control plane moves', async () => {
    // kubeadm with an external etcd (no stacked member for the etcd gate to count): cp-9's apiserver is a static pod.
    const kubeadm = {
      version: 'v1.29.6',
      nodes: [apiNode('cp-1', 'v1.29.6', { roles: ['control-plane'] }), apiNode('cp-9', 'v1.29.6', { roles: ['control-plane'] }), apiNode('w-1', 'v1.29.6'), apiNode('w-2', 'v1.29.6')],
      pods: ['cp-1', 'cp-9'].map((n) => systemPod(`kube-apiserver-${n}`, n, 'registry.k8s.io/kube-apiserver:v1.29.6', { component: 'kube-apiserver' })),
    }
    const r = await versionSkewGate.check(ctx('kubeadm', fakeKubectl(kubeadm), { expectedVersion: 'v1.30.4' }), {})
    expect(r.status).toBe('fail')
    expect(r.summary).toBe('1 version skew violation: kube-apiserver v1.29.6 on cp-9 stays at v1.29 while this run moves the kubelets to v1.30: no kubelet may be newer than a kube-apiserver it can reach (cp-9 is not in the plan: this run does not upgrade it)')
    expect(r.hint).toMatch(/^cp-9 is in the API but not in the plan, so this run leaves it as it is: upgrade it first, list it in the cluster's nodes/)
    // Once the control plane is at the target (the post-gates, or cp-9 upgraded by hand), nothing is left behind.
    const done = { ...kubeadm, version: 'v1.30.4', pods: ['cp-1', 'cp-9'].map((n) => systemPod(`kube-apiserver-${n}`, n, 'registry.k8s.io/kube-apiserver:v1.30.4', { component: 'kube-apiserver' })) }
    expect((await versionSkewGate.check(ctx('kubeadm', fakeKubectl(done), { expectedVersion: 'v1.30.4' }), {})).status).toBe('pass')
    // k3s on an external datastore: the unlisted server's apiserver is its process, at its kubelet's version.
    const k3s = {
      version: 'v1.29.6+k3s1',
      nodes: [apiNode('cp-1', 'v1.29.6+k3s1', { roles: ['control-plane', 'master'] }), apiNode('cp-9', 'v1.29.6+k3s1', { roles: ['control-plane', 'master'] }), apiNode('w-1', 'v1.29.6+k3s1'), apiNode('w-2', 'v1.29.6+k3s1')],
      pods: [],
    }
    const k = await versionSkewGate.check(ctx('k3s', fakeKubectl(k3s), { expectedVersion: 'v1.30.4+k3s1' }), {})
    expect(k.status).toBe('fail')
    expect(k.summary).toContain('kube-apiserver v1.29.6+k3s1 on cp-9 stays at v1.29 while this run moves the kubelets to v1.30')
  })

  it('k0s: an unlisted controller that runs a worker (--enable-worker) is a Node, and its apiserver is at its kubelet\'s version: left behind, it is said as such', async () => {
    const kubectl = fakeKubectl({ version: 'x', nodes: [], pods: [], fail: 'must not be called' })
    const node = (name: string, role: 'control-plane' | 'worker') => ({ name, role, host: name, kubeletVersion: 'v1.29.6+k0s', kubeProxyVersion: 'v1.29.6', kubeProxySource: 'daemonset-pod' as const, roles: role === 'control-plane' ? ['control-plane'] : [], inApi: true, disk: [], services: {} })
    const facts: ClusterFacts = {
      name: 'prod', distribution: 'k0s', from: 'v1.29.6+k0s.0', target: 'v1.30.4+k0s.0',
      apiserverVersions: [{ version: 'v1.29.6+k0s', source: '/version' }, { version: 'v1.29.6+k0s.0', source: 'k0s controller', node: 'cp-1' }],
      nodes: [node('cp-1', 'control-plane'), node('w-1', 'worker')],
      unlistedNodes: [{ name: 'cp-9', roles: ['control-plane'], kubeletVersion: 'v1.29.6+k0s', kubeProxyVersion: 'v1.29.6', kubeProxySource: 'daemonset-pod' }],
    }
    const r = await versionSkewGate.check(ctx('k0s', kubectl, { facts }), {})
    expect(r.status).toBe('fail')
    expect(r.evidence).toContainEqual({ source: 'kubelet-newer-than-apiserver (cp-9)', observed: 'kube-apiserver v1.29.6+k0s on cp-9 stays at v1.29 while this run moves the kubelets to v1.30: no kubelet may be newer than a kube-apiserver it can reach (cp-9 is not in the plan: this run does not upgrade it)' })
  })
})
