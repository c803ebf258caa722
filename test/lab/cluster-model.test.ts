import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ClusterModel } from '../../src/lab/fleet/cluster.js'
import { pdbStatus } from '../../src/lab/fleet/pdb.js'
import { normalizeTopology } from '../../src/lab/topology.js'
import { smallTopology } from './helpers.js'

/** The cluster model without servers: controllers, version bookkeeping, PDB arithmetic, scheduling messages. */
const model = (over: Parameters<typeof smallTopology>[1] = {}) => {
  const m = new ClusterModel(normalizeTopology(smallTopology('127.0.35', over)).clusters[0]!, { readyDelayMs: 10_000, drainEvictionDelayMs: 10_000 })
  return m
}

describe('cluster model', () => {
  it('kubeadm: upgrade apply moves the apiserver; kube-proxy follows once every control-plane node moved', () => {
    const m = model({ distribution: 'kubeadm' })
    try {
      expect(m.apiServerVersion).toBe('v1.29.6')
      m.controlPlaneUpgraded('cp-1', 'v1.30.4')
      expect(m.apiServerVersion).toBe('v1.30.4')
      expect(m.nodes.get('cp-1')!.kubeletVersion).toBe('v1.29.6') // the kubelet package is upgraded separately
      expect(m.kubeProxyImage()).toBe('registry.k8s.io/kube-proxy:v1.30.4') // cp-1 is the only control-plane node
      expect(m.pods.get('kube-system/kube-apiserver-cp-1')!.image).toBe('registry.k8s.io/kube-apiserver:v1.30.4')
      const proxies = [...m.pods.values()].filter((p) => p.kind === 'kube-proxy' && !p.deletionTimestamp)
      expect(proxies.length).toBe(3)
      expect(proxies.every((p) => p.image.endsWith(':v1.30.4'))).toBe(true)
    } finally {
      m.stop()
    }
  })

  it('k3s: the service start moves kubelet and apiserver together; there is no kube-proxy DaemonSet', () => {
    const m = model({ distribution: 'k3s' })
    try {
      expect(m.daemonSets.has('kube-system/kube-proxy')).toBe(false)
      m.serviceStarted('cp-1', 'v1.30.4+k3s1')
      expect(m.apiServerVersion).toBe('v1.30.4')
      expect(m.nodes.get('cp-1')!.ready.status).toBe('False') // until the Ready delay passes
    } finally {
      m.stop()
    }
  })

  it('PDB arithmetic: minAvailable, maxUnavailable and percentages', () => {
    const m = model({ replicas: 4 })
    try {
      const base = { name: 'x', namespace: 'default', app: 'web', uid: 'u', createdAt: new Date() }
      expect(pdbStatus(m, { ...base, minAvailable: 3 })).toEqual({ currentHealthy: 4, desiredHealthy: 3, expectedPods: 4, disruptionsAllowed: 1 })
      expect(pdbStatus(m, { ...base, maxUnavailable: 2 }).disruptionsAllowed).toBe(2)
      expect(pdbStatus(m, { ...base, minAvailable: '50%' }).disruptionsAllowed).toBe(2)
      expect(pdbStatus(m, { ...base, minAvailable: '100%' }).disruptionsAllowed).toBe(0)
    } finally {
      m.stop()
    }
  })

  it('a Deployment’s pods: none on a cordoned node; what fits nowhere gets kube-scheduler’s message, its reasons sorted as it sorts them', () => {
    // Three replicas asking 3 CPUs each: one per 4-CPU worker, never the tainted control-plane node.
    const topology = smallTopology('127.0.35', { distribution: 'kubeadm', replicas: 3 })
    topology.spec.clusters[0]!.workloads!.deployments![0]!.requests = { cpu: '3', memory: '256Mi' }
    const m = new ClusterModel(normalizeTopology(topology).clusters[0]!, { readyDelayMs: 10_000, drainEvictionDelayMs: 10_000 })
    try {
      const web = () => [...m.pods.values()].filter((p) => p.app === 'web' && !p.deletionTimestamp)
      expect(web().map((p) => p.nodeName ?? 'Pending').sort()).toEqual(['Pending', 'w-1', 'w-2'])
      m.reconcile()
      // Word for word what a real v1.31 kube-scheduler said in the same spot (the gates' fixture): it sorts the
      // "COUNT reason" strings, the count first; preemption finds no victims on the nodes short of room only.
      const real = (JSON.parse(readFileSync('test/gates/fixtures/events-1.31-failedscheduling.json', 'utf8')) as { items: { message: string }[] }).items[0]!.message
      expect(real).toMatch(/2 Insufficient cpu\. preemption: .*2 No preemption victims/)
      expect(m.events.filter((e) => e.reason === 'FailedScheduling').map((e) => e.message)).toEqual([real])
      // w-1 cordoned, its pod deleted: the replacement waits, as the Pending one does, and w-1 is named unschedulable.
      m.patchNode('w-1', { unschedulable: true })
      m.deletePod('default', web().find((p) => p.nodeName === 'w-1')!.name)
      expect(web().map((p) => p.nodeName ?? 'Pending').sort()).toEqual(['Pending', 'Pending', 'w-2'])
      expect(m.events.filter((e) => e.reason === 'FailedScheduling').map((e) => e.message).at(-1)).toBe(
        '0/3 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 1 node(s) were unschedulable. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.',
      )
    } finally {
      m.stop()
    }
  })
})
