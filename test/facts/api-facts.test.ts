import { describe, expect, it } from 'vitest'
import { readApiFacts } from '../../src/facts/api-facts.js'
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
})
