import { describe, expect, it } from 'vitest'
import { ClusterModel } from '../../src/lab/fleet/cluster.js'
import { pdbStatus } from '../../src/lab/fleet/pdb.js'
import { schedule } from '../../src/lab/fleet/scheduler.js'
import type { NodeState } from '../../src/lab/fleet/types.js'
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

  it('a cordoned node gets no new pods; a full cluster gives the scheduler message', () => {
    const node = (name: string, unschedulable = false): NodeState => ({
      uid: name, name, role: 'worker', index: 0, address: '127.0.35.9', createdAt: new Date(), os: 'debian-12', iptables: 'nf_tables',
      kubeletVersion: 'v1.29.6', controlPlaneVersion: 'v1.29.6', isNode: true, runsKubelet: true, kubeletActive: true, ready: { status: 'True', reason: '', message: '', since: new Date() },
      heartbeat: new Date(), unschedulable, cpuMilli: 1000, memoryBytes: 2 ** 30, labels: {}, annotations: {},
    })
    const a = node('a', true)
    const b = node('b')
    const r = schedule({ cpuMilli: 500, memoryBytes: 1, tolerateControlPlane: false }, [{ node: a, taints: [] }, { node: b, taints: [] }], [])
    expect('node' in r && r.node.name).toBe('b')
    const full = schedule({ cpuMilli: 2000, memoryBytes: 1, tolerateControlPlane: false }, [{ node: a, taints: [] }, { node: b, taints: [] }, { node: node('c'), taints: ['node-role.kubernetes.io/control-plane'] }], [])
    expect('message' in full && full.message).toBe('0/3 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 1 node(s) were unschedulable. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.')
  })
})
