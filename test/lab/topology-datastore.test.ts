import { describe, expect, it } from 'vitest'
import { PlanError } from '../../src/errors.js'
import { parseTopology } from '../../src/lab/topology.js'

/** `datastore: sqlite` (a k3s server installed without --cluster-init): only where k3s would run that way. */
const problemsOf = (text: string): string[] => {
  try {
    parseTopology(text, 'topo.yaml')
  } catch (err) {
    if (err instanceof PlanError) return err.problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.message}`)
    throw err
  }
  return []
}

const base = (cluster: string) => `apiVersion: kupgrade.dev/v1alpha1
kind: LabTopology
metadata: { name: t }
spec:
  mirror: [v1.29.6, v1.30.4]
  clusters:
${cluster}`

describe('lab topology: k3s datastore', () => {
  it('defaults to embedded etcd and takes sqlite for a k3s cluster with one server', () => {
    const t = parseTopology(base(`    - name: a
      distribution: k3s
      version: v1.29.6
      nodes: [{ name: s1, role: control-plane }]
    - name: b
      distribution: k3s
      datastore: sqlite
      version: v1.29.6
      nodes: [{ name: s1, role: control-plane }, { name: a1, role: worker }, { name: a2, role: worker }]
`), 'topo.yaml')
    expect(t.clusters.map((c) => c.datastore)).toEqual(['etcd', 'sqlite'])
  })

  it('refuses sqlite for several servers, for other distributions, with a real etcd and with etcd faults, each located', () => {
    expect(problemsOf(base(`    - name: ha
      distribution: k3s
      datastore: sqlite
      version: v1.29.6
      nodes: [{ name: s1, role: control-plane }, { name: s2, role: control-plane }]
`))).toEqual(['topo.yaml:9:18: spec.clusters[0].datastore: datastore sqlite allows one server, cluster ha has 2: k3s joins more servers only with embedded etcd (--cluster-init) or an external database; use datastore etcd'])
    expect(problemsOf(base(`    - name: k
      distribution: kubeadm
      datastore: sqlite
      version: v1.29.6
      nodes: [{ name: cp, role: control-plane }]
`))).toEqual(['topo.yaml:9:18: spec.clusters[0].datastore: datastore sqlite is for k3s clusters only (a k3s server installed without --cluster-init); kubeadm keeps its data in etcd'])
    expect(problemsOf(base(`    - name: s
      distribution: k3s
      datastore: sqlite
      etcd: real
      version: v1.29.6
      nodes: [{ name: s1, role: control-plane }]
      faults: [{ fault: etcd-unhealthy }]
`))).toEqual([
      'topo.yaml:10:13: spec.clusters[0].etcd: etcd real needs datastore etcd: a SQLite k3s server runs no etcd',
      'topo.yaml:13:25: spec.clusters[0].faults[0].fault: etcd-unhealthy needs etcd, and cluster s keeps its data in SQLite (datastore sqlite)',
    ])
    expect(problemsOf(base(`    - name: s
      distribution: k3s
      datastore: postgres
      version: v1.29.6
      nodes: [{ name: s1, role: control-plane }]
`))).toEqual([expect.stringMatching(/^topo\.yaml:9:\d+: spec\.clusters\[0\]\.datastore: expected datastore etcd or sqlite/)])
  })
})
