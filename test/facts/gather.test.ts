import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { gatherFleetFacts } from '../../src/facts/gather.js'
import { renderInventory, renderLiveStateMarkdown, skewMarkers } from '../../src/facts/render.js'
import type { FleetFacts } from '../../src/facts/types.js'
import { loadPlan } from '../../src/plan/load.js'
import { Fixture } from '../transport/helpers/fixture.js'
import type { TestServer } from '../transport/helpers/ssh-server.js'
import { apiNode, nodeBin, systemPod, writeApi } from './helpers/fake-fleet.js'
import { runCli } from '../helpers/run-cli.js'

const FAKE_KUBECTL = join(import.meta.dirname, 'fixtures', 'fake-kubectl-api.sh')
let fx: Fixture
let servers: Record<string, TestServer>
let planFile: string
let env: NodeJS.ProcessEnv
let facts: FleetFacts

beforeAll(async () => {
  fx = new Fixture()
  const bin = (n: string, o: Parameters<typeof nodeBin>[1]) => nodeBin(join(fx.dir, 'bin', n), o)
  servers = {
    'e-cp': await fx.server({ pathPrefix: bin('e-cp', { k3s: 'v1.29.2+k3s10', active: ['k3s'] }) }),
    // Binary already replaced, service not yet restarted: the running kube-proxy is still the old k3s.
    'e-w1': await fx.server({ pathPrefix: bin('e-w1', { k3s: 'v1.29.2+k3s10', active: ['k3s-agent'], iptables: 'legacy' }) }),
    'c-cp': await fx.server({ pathPrefix: bin('c-cp', { kubeadm: 'v1.29.2', kubelet: 'v1.29.2', active: ['kubelet'] }) }),
  }
  for (const s of Object.values(servers)) fx.trust(s)
  const closed = await fx.server()
  const deadPort = closed.port
  await closed.close()

  const api = join(fx.dir, 'api')
  writeApi(api, 'edge', {
    version: 'v1.29.2+k3s10',
    nodes: [apiNode('e-cp', 'v1.29.2+k3s10', { roles: ['control-plane', 'etcd', 'master'] }), apiNode('e-w1', 'v1.29.2+k3s2', { cordoned: true })],
    pods: [],
  })
  writeApi(api, 'core', {
    version: 'v1.29.2',
    nodes: [apiNode('c-cp', 'v1.29.2', { roles: ['control-plane'] }), apiNode('c-w1', 'v1.30.0', { ready: false }), apiNode('c-extra', 'v1.29.2'), apiNode('c-extra-cp', 'v1.28.9', { roles: ['control-plane'] })],
    pods: [
      systemPod('kube-proxy-a', 'c-cp', 'registry.k8s.io/kube-proxy:v1.29.2', { 'k8s-app': 'kube-proxy' }),
      systemPod('kube-proxy-old', 'c-w1', 'registry.k8s.io/kube-proxy:v1.25.0', { 'k8s-app': 'kube-proxy' }, '2026-01-01T00:00:00Z'),
      systemPod('kube-proxy-new', 'c-w1', 'registry.k8s.io/kube-proxy:v1.26.3', { 'k8s-app': 'kube-proxy' }, '2026-01-02T00:00:00Z'),
      systemPod('kube-proxy-x', 'c-extra', 'registry.k8s.io/kube-proxy:v1.29.2', { 'k8s-app': 'kube-proxy' }),
      systemPod('kube-apiserver-c-cp', 'c-cp', 'registry.k8s.io/kube-apiserver:v1.29.2', { component: 'kube-apiserver' }),
      systemPod('etcd-c-cp', 'c-cp', 'registry.k8s.io/etcd:3.5.10-0', { component: 'etcd' }),
    ],
  })
  // Another run holds core's lock (renewed just now); edge has no Lease (the stand-in answers NotFound).
  const now = new Date().toISOString().replace('Z', '000Z')
  writeFileSync(join(api, 'core', 'lease.json'), JSON.stringify({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'kupgrade-lock', namespace: 'kube-system' }, spec: { holderIdentity: '20261206T150000Z-abcd ops@ci-7', leaseDurationSeconds: 300, acquireTime: now, renewTime: now } }))
  const s = (n: string) => servers[n]!
  planFile = join(fx.dir, 'plan.yaml')
  writeFileSync(planFile, `apiVersion: kupgrade.dev/v1alpha1
kind: UpgradePlan
metadata: { name: facts-test }
spec:
  kubectl: ${FAKE_KUBECTL}
  target: { kubernetes: v1.29.8 }
  stages:
    - { name: all, clusters: [edge, core] }
  clusters:
    - name: edge
      distribution: k3s
      from: v1.29.2+k3s10
      context: edge
      apiEndpoint: https://127.0.0.1:6443
      ssh: { user: root, identityFile: ./id_ed25519, knownHosts: ./known_hosts }
      nodes:
        - { name: e-cp, host: ${s('e-cp').host}, port: ${s('e-cp').port}, role: control-plane }
        - { name: e-w1, host: ${s('e-w1').host}, port: ${s('e-w1').port}, role: worker }
    - name: core
      distribution: kubeadm
      from: v1.28.9
      context: core
      apiEndpoint: https://127.0.0.1:6443
      ssh: { user: root, identityFile: ./id_ed25519, knownHosts: ./known_hosts }
      nodes:
        - { name: c-cp, host: ${s('c-cp').host}, port: ${s('c-cp').port}, role: control-plane }
        - { name: c-w1, host: 127.0.0.1, port: ${deadPort}, role: worker }
`)
  env = { PATH: process.env.PATH, HOME: fx.dir, FAKE_API_DIR: api }
  const pool = fx.pool({ connectAttempts: 2 })
  facts = await gatherFleetFacts(loadPlan(planFile), { transport: pool, env, stateDir: join(fx.dir, '.kupgrade') })
})
afterAll(() => fx.cleanup())

const node = (c: string, n: string) => facts.clusters.find((x) => x.name === c)!.nodes.find((x) => x.name === n)!

describe('facts/gather against ssh2 test nodes and a fake kubectl', () => {
  it('reads each node in one SSH round trip', () => {
    for (const s of Object.values(servers)) expect(s.commands).toHaveLength(1)
  })

  it('makes four kubectl calls per cluster (version, nodes, kube-system pods, the run lock), with its own cache dir', async () => {
    const { readFileSync } = await import('node:fs')
    const all = readFileSync(join(fx.dir, 'api', 'core', 'calls'), 'utf8').trim().split('\n')
    // This stand-in cannot run `kubectl proxy`: tried once, and the reads run as kubectl processes.
    expect(all.filter((c) => / proxy --unix-socket=/.test(c))).toHaveLength(1)
    const calls = all.filter((c) => !/ proxy --unix-socket=/.test(c))
    expect(calls).toHaveLength(4)
    expect(calls.filter((c) => c.includes('get lease kupgrade-lock -n kube-system -o json'))).toHaveLength(1)
    expect(calls[0]).toContain(`--cache-dir=${join(fx.dir, '.kupgrade', 'cache', 'kubectl', 'core')}`)
    expect(calls[0]).toContain('--context=core')
  })

  it("reads who holds a cluster's run lock, says it in the live state, and what apply would meet there", async () => {
    const core = facts.clusters.find((c) => c.name === 'core')!
    expect(core.runLock).toEqual({ holder: '20261206T150000Z-abcd ops@ci-7', since: expect.stringMatching(/^\d{4}-/), expired: false })
    expect(facts.clusters.find((c) => c.name === 'edge')!.runLock).toBeUndefined()
    expect(renderInventory(facts)).toContain(`\n  ! run lock (Lease kube-system/kupgrade-lock) held by "20261206T150000Z-abcd ops@ci-7" since ${core.runLock!.since}: another kupgrade run is working on this cluster; apply stops here (exit 4) until it finishes\n`)
    const { runLockWarning } = await import('../../src/facts/live.js')
    expect(runLockWarning(core)).toBe(`cluster core: run lock (Lease kube-system/kupgrade-lock) held by "20261206T150000Z-abcd ops@ci-7" since ${core.runLock!.since}: another kupgrade run is working on this cluster; apply stops here (exit 4) until it finishes`)
    expect(runLockWarning({ ...core, runLock: { ...core.runLock!, expired: true } })).toBe(`cluster core: run lock (Lease kube-system/kupgrade-lock) held by "20261206T150000Z-abcd ops@ci-7" since ${core.runLock!.since}, expired (its run stopped renewing it): apply takes it over only with --force-unlock`)
    expect(runLockWarning(facts.clusters.find((c) => c.name === 'edge')!)).toBeUndefined()
  })

  it('reports k3s versions: installed binary, kubelet, kube-proxy of the running process', () => {
    expect(node('edge', 'e-cp')).toMatchObject({ installedVersion: 'v1.29.2+k3s10', kubeletVersion: 'v1.29.2+k3s10', kubeProxyVersion: 'v1.29.2+k3s10', kubeProxySource: 'k3s-binary', ready: true, cordoned: false, services: { k3s: 'active', 'k3s-agent': 'inactive' } })
    expect(node('edge', 'e-w1')).toMatchObject({ installedVersion: 'v1.29.2+k3s10', kubeletVersion: 'v1.29.2+k3s2', kubeProxyVersion: 'v1.29.2+k3s2', kubeProxySource: 'k3s-process', cordoned: true, iptablesBackend: 'legacy' })
    expect(node('edge', 'e-cp').roles).toEqual(['control-plane', 'etcd', 'master'])
  })

  it('reports host facts: OS, kernel, iptables, disk, package manager', () => {
    const n = node('edge', 'e-cp')
    expect(n.os?.id).toBeTruthy()
    expect(n.kernel).toMatch(/^\d+\.\d+/)
    expect(n.kernel).not.toBe('6.1.0-api')
    expect(n.iptablesBackend).toBe('nf_tables')
    expect(n.disk.map((d) => d.path)).toEqual(['/', '/var'])
  })

  it('takes kube-proxy from the newest DaemonSet pod per node, never nodeInfo.kubeProxyVersion', () => {
    expect(node('core', 'c-cp')).toMatchObject({ kubeProxyVersion: 'v1.29.2', kubeProxySource: 'daemonset-pod', installedVersion: 'v1.29.2', kubeletBinaryVersion: 'v1.29.2' })
    expect(node('core', 'c-w1').kubeProxyVersion).toBe('v1.26.3')
    expect(JSON.stringify(facts)).not.toContain('v9.9.9')
  })

  it('lists apiserver versions per source and etcd members', () => {
    const edge = facts.clusters.find((c) => c.name === 'edge')!
    expect(edge.apiserverVersions).toEqual([{ version: 'v1.29.2+k3s10', source: '/version' }, { version: 'v1.29.2+k3s10', source: 'k3s server', node: 'e-cp' }])
    expect(edge.etcdMembers).toEqual([{ name: 'e-cp', node: 'e-cp' }])
    const core = facts.clusters.find((c) => c.name === 'core')!
    expect(core.apiserverVersions).toEqual([{ version: 'v1.29.2', source: '/version' }, { version: 'v1.29.2', source: 'kube-apiserver pod', node: 'c-cp' }])
    expect(core.etcdMembers).toEqual([{ name: 'c-cp', node: 'c-cp', version: '3.5.10-0' }])
    // The nodes the plan does not list, with the versions the skew gate holds them to (c-extra-cp has no kube-proxy pod).
    expect(core.unlistedNodes).toEqual([
      { name: 'c-extra', roles: [], kubeletVersion: 'v1.29.2', kubeProxyVersion: 'v1.29.2', kubeProxySource: 'daemonset-pod' },
      { name: 'c-extra-cp', roles: ['control-plane'], kubeletVersion: 'v1.28.9', kubeProxySource: 'none' },
    ])
  })

  it('turns an unreachable node into a row with its error, keeping its API facts', () => {
    const n = node('core', 'c-w1')
    expect(n.error).toMatch(/c-w1/)
    expect(n).toMatchObject({ kubeletVersion: 'v1.30.0', ready: false, kernel: '6.1.0-api', inApi: true, unreachable: true })
    expect(node('core', 'c-cp').unreachable).toBeUndefined()
  })

  it('marks skew: kubelet newer than apiserver, kube-proxy 3 minors behind', () => {
    const m = skewMarkers(facts).filter((s) => s.node === 'c-w1').map((s) => [s.component, s.severity, s.short])
    expect(m).toEqual([['kubelet', 'error', 'kubelet>apiserver'], ['kube-proxy', 'warning', 'proxy -3'], ['kube-proxy', 'error', 'proxy-4 vs kubelet']])
  })

  it('renders a table with an error line and the from-mismatch, and markdown', () => {
    const text = renderInventory(facts)
    expect(text).toMatch(/NODE\s+STATUS\s+ROLES\s+KUBELET\s+KUBE-PROXY/)
    expect(text).toMatch(/e-w1\s+Ready,SchedulingDisabled/)
    expect(text).toMatch(/c-w1\s+NotReady/)
    expect(text).toContain('UNREACHABLE')
    expect(text).toContain('! c-w1:')
    // core runs v1.29.2: past its from (v1.28.9), not past the target (v1.29.8): an upgrade under way, not a mismatch.
    expect(text).toContain('~ cluster core: the plan says from v1.28.9, the API servers report v1.29.2: an upgrade already under way')
    expect(text).not.toContain('plan says from v1.29.2+k3s10')
    expect(text).toContain('~ e-w1: k3s v1.29.2+k3s10 is installed but v1.29.2+k3s2 is running (service not restarted)')
    expect(text).not.toContain('~ e-cp: k3s')
    expect(renderLiveStateMarkdown(facts)).toContain('| NODE | STATUS |')
  })
})

describe('kupgrade inventory', () => {
  const run = (args: string[]) => runCli(['inventory', planFile, ...args], { env, cwd: fx.dir })

  it('prints the table and exits 1 when a node is unreachable', async () => {
    const r = await run([])
    expect(r.code).toBe(1)
    expect(r.out).toContain('cluster edge (k3s')
    expect(r.err).toMatch(/^could not read 1 node: the reasons are above$/m)
  })

  it('prints JSON for one cluster, exit 0 when all of it was read', async () => {
    const r = await run(['--cluster', 'edge', '--format', 'json'])
    expect(r.code).toBe(0)
    const j = JSON.parse(r.out) as FleetFacts & { problems: string[] }
    expect(j.clusters.map((c) => c.name)).toEqual(['edge'])
    expect(j.problems).toEqual([])
  })

  it('rejects an unknown cluster as a usage error', async () => {
    const r = await run(['--cluster', 'nope'])
    expect(r.code).toBe(2)
    expect(r.err).toContain('unknown cluster nope')
  })
})

describe('kupgrade plan --live', () => {
  const run = (args: string[]) => runCli(['plan', planFile, ...args], { env, cwd: fx.dir })

  it('prints the live state above the steps, warns of an upgrade under way, and is blocked by a node it cannot read', async () => {
    const r = await run(['--live'])
    expect(r.out).toMatch(/^Live state/)
    expect(r.out).toContain('cluster core (kubeadm')
    // Printed once, in the output document (not again on stderr).
    expect(r.out).toContain('~ cluster core: the plan says from v1.28.9, the API servers report v1.29.2: an upgrade already under way')
    // The verdict comes last, with why: the node it could not read. It is no warning at the top of the steps.
    expect(r.out).toMatch(/\nBLOCKED: apply would stop before it changes any node\. .*\n(  - .*\n)*  - could not read core\/c-w1: cannot connect[^\n]*\n(  - .*\n)*$/)
    expect(r.out).not.toMatch(/warning: blocked/)
    expect(r.err).not.toContain('an upgrade already under way')
    expect(r.code).toBe(3)
  })

  it('hands kubelet versions to the planner, which skips nodes already at the target', async () => {
    const r = await run(['--live', '--format', 'json'])
    const plan = JSON.parse(r.out) as { steps: { node?: string; skip?: string }[]; warnings: string[] }
    expect(plan.steps.filter((s) => s.node === 'c-w1').every((s) => s.skip?.includes('already at v1.30.0'))).toBe(true)
    expect(plan.steps.some((s) => s.node === 'c-cp' && s.skip === undefined)).toBe(true)
    expect(plan.warnings.join('\n')).toContain('the plan says from v1.28.9')
    const offline = JSON.parse((await run(['--format', 'json'])).out) as { steps: { skip?: string }[] }
    expect(offline.steps.every((s) => s.skip === undefined)).toBe(true)
  })

  it('adds the live section to the markdown', async () => {
    const r = await run(['--live', '--format', 'markdown'])
    expect(r.out).toContain('### Live state')
  })

  it('tries a node the facts could not reach once: its gates report that error without connecting again', async () => {
    const r = await run(['--live', '--format', 'json', '--verbose'])
    // One connection's retries (the pool's 6 attempts), from the facts; none from the gates after them.
    expect(r.err.split('\n').filter((l) => l.startsWith('c-w1: connect failed'))).toHaveLength(5)
    type Run = { gate: string; summary: string; evidence: { source: string; observed: string }[] }
    const core = (JSON.parse(r.out) as { gates: { clusters: { name: string; results: Run[] }[] } }).gates.clusters.find((c) => c.name === 'core')!
    for (const gate of ['api-vip', 'certificates', 'disk-space', 'iptables-backend', 'kube-proxy-sync']) {
      const g = core.results.find((x) => x.gate === gate)!
      expect(g.summary, gate).toContain('c-w1 unreachable over SSH')
      expect(g.evidence.find((e) => e.source === 'node c-w1')?.observed, gate).toMatch(/^cannot connect to core\/c-w1 .* after 6 attempts/)
    }
  })
})
