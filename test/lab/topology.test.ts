import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { PlanError } from '../../src/errors.js'
import { defaultTopology } from '../../src/lab/default-topology.js'
import { labPlan } from '../../src/lab/outputs.js'
import { parsePlan } from '../../src/plan/load.js'
import { buildExecutionPlan } from '../../src/planner/build.js'
import { normalizeTopology, parseTopology } from '../../src/lab/topology.js'

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

describe('lab topology', () => {
  it('examples/lab/demo.yaml is the demo topology', () => {
    const file = parseTopology(readFileSync('examples/lab/demo.yaml', 'utf8'), 'examples/lab/demo.yaml')
    expect(file).toEqual(normalizeTopology(defaultTopology()))
  })

  it('every example topology is valid', () => {
    for (const f of ['examples/lab/demo.yaml', 'examples/lab/k0s-incident.yaml', 'examples/lab/kubeadm-mid-upgrade.yaml']) {
      expect(() => parseTopology(readFileSync(f, 'utf8'), f)).not.toThrow()
    }
  })

  it('fills defaults and assigns one loopback /24 per cluster', () => {
    const t = normalizeTopology(defaultTopology())
    expect(t.mirror).toEqual(['v1.29.6', 'v1.29.8', 'v1.30.4'])
    expect(t.timing).toEqual({ serviceRestartMs: 500, readyDelayMs: 1000, rebootMs: 2000, drainEvictionDelayMs: 500, nodeMonitorGracePeriodMs: 3000, podStartDelayMs: 1000, kubeProxySyncMs: 30_000 })
    expect(t.clusters.map((c) => c.apiAddress)).toEqual(['127.0.10.1', '127.0.10.2'])
    expect(t.clusters[1]!.nodes.map((n) => n.address)).toEqual(['127.0.12.1', '127.0.12.2', '127.0.12.3', '127.0.12.4', '127.0.12.5'])
    expect(t.clusters[1]!.nodes[3]).toMatchObject({ cpuMilli: 8000, memoryBytes: 16 * 1024 ** 3, sshPort: 2222, os: 'debian-12', iptables: 'nf_tables' })
  })

  it('locates schema errors to file:line:col', () => {
    const problems = problemsOf(base(`    - name: c1
      distribution: k8s
      version: v1.29.6
      nodes:
        - { name: n1, role: control-plane, colour: blue }
`))
    expect(problems.some((p) => p.startsWith('topo.yaml:8:21: spec.clusters[0].distribution: expected distribution k0s, k3s or kubeadm, got "k8s"'))).toBe(true)
    // Unknown fields are reported as in plans: at the key, by name.
    expect(problems).toContain('topo.yaml:11:44: spec.clusters[0].nodes[0].colour: unknown field "colour"')
  })

  it('reports a missing field at the map that should hold it', () => {
    const problems = problemsOf(base(`    - name: c1
      distribution: k3s
      nodes: [{ name: n1, role: control-plane }]
`))
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/^topo\.yaml:7:7: spec\.clusters\[0\]: missing required field \"version\"$/)
  })

  it('checks references and uniqueness with locations', () => {
    const problems = problemsOf(base(`    - name: c1
      distribution: k3s
      version: v1.28.1
      nodes:
        - { name: n1, role: worker, address: 127.0.50.1 }
        - { name: n1, role: worker, address: 127.0.50.1 }
      faults:
        - { fault: disk-full, node: nope }
`))
    expect(problems).toContain('topo.yaml:9:16: spec.clusters[0].version: version v1.28.1 is not in spec.mirror (v1.29.6, v1.30.4)')
    expect(problems).toContain('topo.yaml:11:9: spec.clusters[0].nodes: cluster c1 has no control-plane node')
    expect(problems).toContain('topo.yaml:12:19: spec.clusters[0].nodes[1].name: duplicate node name "n1" in cluster c1')
    expect(problems).toContain('topo.yaml:12:46: spec.clusters[0].nodes[1].address: 127.0.50.1:2222 is already used by node c1/n1')
    expect(problems).toContain('topo.yaml:14:37: spec.clusters[0].faults[0].node: no node "nope" in cluster c1')
  })

  it('names the known faults when one is misspelt', () => {
    const problems = problemsOf(base(`    - name: c1
      distribution: k3s
      version: v1.29.6
      nodes: [{ name: n1, role: control-plane }]
      faults: [{ fault: disk-ful }]
`))
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/^topo\.yaml:11:25: spec\.clusters\[0\]\.faults\[0\]\.fault: expected one of: kube-proxy-sync-failure, .*disk-full/)
  })

  it('refuses non-loopback addresses', () => {
    const problems = problemsOf(base(`    - name: c1
      distribution: k3s
      version: v1.29.6
      apiAddress: 10.0.0.1
      nodes: [{ name: n1, role: control-plane }]
`))
    expect(problems).toEqual(['topo.yaml:10:19: spec.clusters[0].apiAddress: expected a loopback IPv4 address (127.x.y.z): the lab never listens elsewhere, got "10.0.0.1"'])
  })

  it('takes the pending OS updates of a node as package names only (the stand-ins word-split them)', () => {
    const ok = parseTopology(base(`    - name: c1
      distribution: k3s
      version: v1.29.6
      nodes: [{ name: n1, role: control-plane, osUpdates: [openssl, libssl3] }, { name: n2, role: worker }]
`), 'topo.yaml')
    expect(ok.clusters[0]!.nodes.map((n) => n.osUpdates)).toEqual([['openssl', 'libssl3'], undefined])
    const problems = problemsOf(base(`    - name: c1
      distribution: k3s
      version: v1.29.6
      nodes: [{ name: n1, role: control-plane, osUpdates: ['a b'] }]
`))
    expect(problems).toEqual([expect.stringMatching(/^topo\.yaml:10:\d+: spec\.clusters\[0\]\.nodes\[0\]\.osUpdates\[0\]: expected a package name/)])
  })

  it('reports YAML syntax errors with their position', () => {
    const problems = problemsOf('apiVersion: kupgrade.dev/v1alpha1\nkind: [LabTopology\n')
    expect(problems.length).toBeGreaterThan(0)
    expect(problems[0]).toMatch(/^topo\.yaml:\d+:\d+: /)
  })

  it('writes a plan for the fleet that targets the newest mirror version, with its schema line first', () => {
    const plan = labPlan(normalizeTopology(defaultTopology()))
    const lines = plan.split('\n')
    expect(lines[0]).toMatch(/^# yaml-language-server: \$schema=\S+schema\.json$/)
    expect(plan).toContain('kubernetes: v1.30.4')
    expect(plan).toContain('from: v1.29.6+k3s1')
    expect(plan).toContain('apiEndpoint: https://127.0.10.2:6443')
    expect(plan).not.toContain('via:')
    // Ready waits (wait-ready, and the nodes-ready gate after a node) give up after a minute on the lab, not 5m.
    const loaded = parsePlan('plan.yaml', plan)
    expect(loaded.problems.filter((p) => p.severity !== 'warning')).toEqual([])
    const steps = buildExecutionPlan(loaded.plan!).steps.filter((s) => s.action === 'wait-ready')
    expect(steps.length).toBeGreaterThan(0)
    for (const s of steps) expect(s.params).toMatchObject({ timeout: '1m' })
  })
})

/** `datastore: sqlite` (a k3s server installed without --cluster-init): only where k3s would run that way. */
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

describe('a topology file it cannot read', () => {
  it('is a usage error naming the file, as a plan it cannot read is', async () => {
    const { loadTopology } = await import('../../src/lab/topology.js')
    for (const [file, reason] of [['no-such-topology.yaml', 'no such file'], ['test', 'a directory, not a regular file'], ['/dev/zero', 'a character device, not a regular file']]) {
      const err = await loadTopology(file!).then(() => undefined, (e: unknown) => e as { message: string; exitCode: number; hint: string })
      expect([err?.message, err?.exitCode, err?.hint]).toEqual([`${file}: cannot read the topology (${reason})`, 2, 'pass the path of a LabTopology YAML file (examples/lab/README.md)'])
    }
  })
})
