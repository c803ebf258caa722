import { describe, expect, it } from 'vitest'
import { readApiFacts } from '../../src/facts/api-facts.js'
import { unlistedNodes } from '../../src/facts/unlisted.js'
import type { KubectlClient } from '../../src/transport/kubectl/client.js'

/**
 * What readApiFacts asks the API for: /version and the Nodes always; kube-system's pods only where they hold what it
 * reads (kubeadm's static apiserver and etcd pods, the kube-proxy DaemonSet of kubeadm and k0s). A k3s server runs
 * them inside its own process, so a k3s cluster is not asked (one kubectl process fewer per version-skew check).
 */
function client() {
  const asked: string[] = []
  const kubectl = {
    version: async () => { asked.push('version'); return { gitVersion: 'v1.30.4+k3s1' } },
    nodes: async () => { asked.push('nodes'); return { items: [] } },
    pods: async (ns: string) => { asked.push(`pods ${ns}`); return { items: [{ metadata: { name: 'kube-proxy-abc', labels: { 'k8s-app': 'kube-proxy' } }, spec: { nodeName: 'w-1', containers: [{ name: 'kube-proxy', image: 'registry.k8s.io/kube-proxy:v1.30.4' }] } }] } },
  } as unknown as KubectlClient
  return { kubectl, asked }
}

describe('readApiFacts', () => {
  it("reads kube-system's pods for kubeadm and k0s, not for k3s", async () => {
    for (const dist of ['kubeadm', 'k0s'] as const) {
      const c = client()
      const facts = await readApiFacts(c.kubectl, dist)
      expect(c.asked.sort(), dist).toEqual(['nodes', 'pods kube-system', 'version'])
      expect(facts.kubeProxy.get('w-1'), dist).toBe('v1.30.4')
    }
    const k3s = client()
    const facts = await readApiFacts(k3s.kubectl, 'k3s')
    expect(k3s.asked.sort()).toEqual(['nodes', 'version'])
    expect([facts.kubeProxy.size, facts.apiserverPods]).toEqual([0, []])
  })

  it("k0s: the controllers running now, by the k0s-ctrl-<node> lease each holds; released, expired or other leases are none; unreadable leases leave them unknown", async () => {
    const now = Date.now()
    const lease = (name: string, holder: string, renewedAgoS: number, durationS = 60) => ({ metadata: { name }, spec: { holderIdentity: holder, leaseDurationSeconds: durationS, renewTime: new Date(now - renewedAgoS * 1000).toISOString().replace('Z', '000Z') } })
    const asked: string[] = []
    const kubectl = {
      ...client().kubectl,
      nodes: async () => ({ items: [{ metadata: { name: 'c2', labels: { 'node-role.kubernetes.io/control-plane': 'true' } }, status: { nodeInfo: { kubeletVersion: 'v1.30.4+k0s' } } }, { metadata: { name: 'w-1' }, status: { nodeInfo: { kubeletVersion: 'v1.30.4+k0s' } } }] }),
      leases: async (ns: string) => {
        asked.push(`leases ${ns}`)
        return { items: [lease('k0s-ctrl-c1', 'a1', 5), lease('k0s-ctrl-c2', 'b2', 5), lease('k0s-ctrl-c3', 'c3', 5), lease('k0s-ctrl-gone', 'd4', 120), lease('k0s-ctrl-stopped', '', 0, 1), lease('w-1', 'w-1', 5), lease('k0s-endpoint-reconciler', 'a1', 5)] }
      },
    } as unknown as KubectlClient
    const facts = await readApiFacts(kubectl, 'k0s')
    expect(asked).toEqual(['leases kube-node-lease'])
    expect(facts.controllers).toEqual(['c1', 'c2', 'c3'])
    // Not in the plan: c3 (no Node: seen by its lease only) and w-1; c2 (enable-worker) is an unlisted Node like any other.
    expect(unlistedNodes('k0s', facts, new Set(['c1', 'c2']))).toEqual([
      { name: 'c3', roles: ['control-plane'], kubeProxySource: 'none', controllerLease: 'kube-node-lease/k0s-ctrl-c3' },
      { name: 'w-1', roles: [], kubeletVersion: 'v1.30.4+k0s', kubeProxyVersion: 'v1.30.4', kubeProxySource: 'daemonset-pod' },
    ])
    // k3s and kubeadm have Nodes for their control planes: no lease read.
    const k = { ...client().kubectl, leases: async () => { throw new Error('must not be asked') } } as unknown as KubectlClient
    expect((await readApiFacts(k, 'kubeadm')).controllers).toBeUndefined()
    // Forbidden (RBAC): unknown, and the rest of the facts still read.
    const forbidden = { ...client().kubectl, leases: async () => { throw new Error('leases.coordination.k8s.io is forbidden') } } as unknown as KubectlClient
    const f = await readApiFacts(forbidden, 'k0s')
    expect([f.controllers, f.version]).toEqual([undefined, 'v1.30.4+k3s1'])
  })
})
