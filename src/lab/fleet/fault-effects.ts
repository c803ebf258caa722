import type { FaultSpec } from '../faults.js'
import type { ClusterModel } from './cluster.js'

/**
 * What switching a cluster-side fault on or off changes in the model at that moment. Most cluster-side faults need
 * nothing here: they are read when a request is served (render.ts, logs.ts, health.ts, the API server's TLS and
 * latency). These four change stored state: a PDB, node allocatable, a stuck node's readiness, kube-proxy's pods.
 */
export function applyClusterFault(m: ClusterModel, spec: FaultSpec, on: boolean): void {
  switch (spec.fault) {
    case 'pdb-blocks-drain': {
      // A budget nobody can satisfy (minAvailable 100%) on the first user Deployment (or CoreDNS on a bare cluster):
      // its own PDB is tightened if it has one (two PDBs on one pod would be a different failure), else one is added.
      const target = [...m.deployments.values()].find((d) => d.kind === 'workload') ?? [...m.deployments.values()][0]
      if (!target) return
      const own = [...m.pdbs.values()].find((b) => b.namespace === target.namespace && b.app === target.name)
      if (on) {
        if (own) {
          m.tightened = { key: `${own.namespace}/${own.name}`, minAvailable: own.minAvailable, maxUnavailable: own.maxUnavailable }
          own.minAvailable = '100%'
          delete own.maxUnavailable
        } else m.addPdb({ name: `${target.name}-strict`, namespace: target.namespace, app: target.name, minAvailable: '100%' })
      } else if (m.tightened) {
        const b = m.pdbs.get(m.tightened.key)
        if (b) {
          b.minAvailable = m.tightened.minAvailable
          b.maxUnavailable = m.tightened.maxUnavailable
          if (b.minAvailable === undefined) delete b.minAvailable
          if (b.maxUnavailable === undefined) delete b.maxUnavailable
        }
        m.tightened = undefined
      } else m.pdbs.delete(`${target.namespace}/${target.name}-strict`)
      return
    }
    case 'insufficient-capacity': {
      for (const n of m.nodes.values()) {
        if (spec.node && n.name !== spec.node) continue
        if (!on) { delete n.allocatableOverride; continue }
        let cpu = 0
        let mem = 0
        for (const p of m.pods.values()) if (p.nodeName === n.name && p.phase !== 'Succeeded' && p.phase !== 'Failed') { cpu += p.cpuMilli; mem += p.memoryBytes }
        n.allocatableOverride = { cpuMilli: cpu, memoryBytes: mem }
      }
      return
    }
    case 'node-not-ready-after-upgrade':
      // Takes effect at the next service start; clearing it lets a stuck node become Ready after the delay.
      if (!on) for (const n of m.nodes.values()) {
        if ((!spec.node || n.name === spec.node) && n.kubeletActive && n.ready.status === 'False') m.serviceStarted(n.name, n.kubeletVersion)
      }
      return
    case 'kube-proxy-skew':
      m.rollKubeProxy()
      return
    default:
      return // the others are read at request time (render, logs, readyz, TLS, latency)
  }
}
