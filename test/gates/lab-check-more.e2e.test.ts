import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import type { FaultName } from '../../src/lab/faults.js'
import { Lab } from '../../src/lab/lab.js'
import { probeIsolation } from '../../src/lab/node/index.js'
import { normalizeTopology, type TopologyInput } from '../../src/lab/topology.js'
import { available } from '../helpers/required.js'
import { runCli } from '../helpers/run-cli.js'

/**
 * `kupgrade check` against a lab fleet for the gates lab-check.e2e.test.ts does not reach: iptables-backend (nodes
 * on different backends; chains in the other backend than the host's iptables), pending-pods and event-storm (pods
 * nothing can schedule, created with real kubectl), and the custom gates: command on the runner and on nodes, http
 * against a server of the test's, prometheus against a server answering the Prometheus HTTP API's /api/v1/query.
 * Each: exit 3 naming the gate, the node and the evidence with the fault; exit 0 and pass without it.
 */
const KUBECTL = process.env.KUPGRADE_KUBECTL ?? '/usr/lib/google-cloud-sdk/bin/kubectl.1.32'
const runnable = available(existsSync(KUBECTL), `kubectl at ${KUBECTL}`, 'set KUPGRADE_KUBECTL to a kubectl binary') &&
  available(await probeIsolation().then(() => true, () => false), 'lab node isolation (mount namespaces)', 'run as root, or enable unprivileged user namespaces')

const NET = '127.0.95'
const topology: TopologyInput = {
  apiVersion: 'kupgrade.dev/v1alpha1',
  kind: 'LabTopology',
  metadata: { name: 'gates-more' },
  spec: {
    mirror: ['v1.31.4', 'v1.32.0'],
    timing: { serviceRestart: '100ms', readyDelay: '200ms', reboot: '300ms', drainEvictionDelay: '100ms' },
    clusters: [
      {
        // Every node on iptables-legacy: one backend, so the gate passes (legacy itself is no fault).
        name: 'm-kubeadm', distribution: 'kubeadm', version: 'v1.31.4', apiAddress: `${NET}.1`,
        nodes: ['cp-1', 'w-1', 'w-2'].map((n, i) => ({ name: `kubeadm-${n}`, role: i === 0 ? 'control-plane' as const : 'worker' as const, address: `${NET}.${100 + i}`, sshPort: 2222, iptables: 'legacy' as const })),
      },
      {
        // Already at the target minor: flowcontrol.apiserver.k8s.io/v1beta3 is no longer served.
        name: 'm-new', distribution: 'kubeadm', version: 'v1.32.0', apiAddress: `${NET}.3`,
        nodes: [{ name: 'new-cp-1', role: 'control-plane' as const, address: `${NET}.120`, sshPort: 2222 }],
      },
      {
        // k3s-w-2 was installed from an older image still on iptables-legacy: the fleet is mixed.
        name: 'm-k3s', distribution: 'k3s', version: 'v1.31.4', apiAddress: `${NET}.2`,
        nodes: ['cp-1', 'w-1', 'w-2'].map((n, i) => ({ name: `k3s-${n}`, role: i === 0 ? 'control-plane' as const : 'worker' as const, address: `${NET}.${110 + i}`, sshPort: 2222, iptables: i === 2 ? 'legacy' as const : 'nf_tables' as const })),
      },
      {
        // Three k3s servers with embedded etcd: the control plane survives the upgrade of any one of them.
        name: 'm-ha', distribution: 'k3s', version: 'v1.31.4', apiAddress: `${NET}.4`,
        nodes: ['cp-1', 'cp-2', 'cp-3', 'w-1'].map((n, i) => ({ name: `ha-${n}`, role: i < 3 ? 'control-plane' as const : 'worker' as const, address: `${NET}.${130 + i}`, sshPort: 2222 })),
      },
    ],
  },
}

interface JsonResult { gate: string; label: string; node?: string; status: string; summary: string; evidence: { source: string; observed: string }[] }
interface JsonReport { status: string; clusters: { name: string; results: JsonResult[] }[] }

describe.skipIf(!runnable)('kupgrade check: iptables-backend, pending-pods, event-storm and the custom gates on a lab fleet', () => {
  let dir: string
  let lab: Lab
  const servers: Server[] = []
  const env = () => ({ PATH: process.env.PATH, HOME: dir, KUPGRADE_KUBECTL: KUBECTL, NO_COLOR: '1' })
  const kubectl = (cluster: string, args: string[], input?: string) =>
    execa(KUBECTL, ['--kubeconfig', join(dir, 'kubeconfig'), '--context', cluster, ...args], { env: env(), extendEnv: false, ...(input !== undefined ? { input } : {}) })

  /** The lab's plan with these gates added to its pre-gates, written beside it. */
  const planWith = (name: string, pre: unknown[]): string => {
    const doc = parse(readFileSync(join(dir, 'plan.yaml'), 'utf8')) as { spec: Record<string, unknown> }
    doc.spec.gates = { pre }
    const file = join(dir, `${name}.yaml`)
    writeFileSync(file, stringify(doc))
    return file
  }
  const check = async (plan: string, cluster: string, gate: string) => {
    const r = await runCli(['check', plan, '--cluster', cluster, '--gate', gate, '--format', 'json'], { env: env(), cwd: dir })
    let report: JsonReport
    try {
      report = JSON.parse(r.out) as JsonReport
    } catch {
      throw new Error(`kupgrade check printed no JSON (exit ${r.code}): ${r.out}\n${r.err}`)
    }
    const results = report.clusters.flatMap((c) => c.results)
    expect(results.length, r.out).toBe(1)
    return { code: r.code, result: results[0]!, raw: r.out }
  }
  const fault = (f: FaultName, cluster: string, node: string | undefined, on: boolean) => lab.setFault({ fault: f, cluster, ...(node ? { node } : {}) }, on)
  const failed = (r: { code: number; result: JsonResult; raw: string }, gate: string) => {
    expect(r.code, r.raw).toBe(3)
    expect(r.result.gate).toBe(gate)
    expect(r.result.status).toBe('fail')
  }
  const passed = (r: { code: number; result: JsonResult; raw: string }, gate: string) => {
    expect(r.code, r.raw).toBe(0)
    expect(r.result.gate).toBe(gate)
    expect(r.result.status, r.raw).toBe('pass')
  }
  const serve = async (host: string, port: number, handler: Parameters<typeof createServer>[1]): Promise<void> => {
    const s = createServer(handler)
    servers.push(s)
    await new Promise<void>((resolve, reject) => s.once('error', reject).listen(port, host, () => resolve()))
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kupgrade-gates-more-'))
    lab = new Lab({ topology: normalizeTopology(topology), dir })
    await lab.start()
  }, 180_000)
  afterAll(async () => {
    for (const s of servers) s.close()
    await lab?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('iptables-backend: one backend everywhere passes; a node left on iptables-legacy among nf_tables nodes fails naming it', async () => {
    const plan = join(dir, 'plan.yaml')
    const same = await check(plan, 'm-kubeadm', 'iptables-backend')
    passed(same, 'iptables-backend')
    expect(same.result.summary).toBe('one iptables backend (legacy) on every node')
    expect(same.result.evidence.map((e) => e.observed)).toContain('iptables -V: iptables v1.8.7 (legacy); hint chains legacy=2 nf_tables=0; kube-proxy mode iptables')

    const mixed = await check(plan, 'm-k3s', 'iptables-backend')
    failed(mixed, 'iptables-backend')
    expect(mixed.result.summary).toBe('nodes disagree on the iptables backend (legacy vs nf_tables)')
    expect(mixed.result.evidence[0]).toEqual({ source: 'iptables -V on every node', observed: 'legacy: k3s-w-2; nf_tables: k3s-cp-1, k3s-w-1', status: 'fail' })
  }, 120_000)

  it('iptables-backend: the kubelet’s and kube-proxy’s chains in nf_tables while the host’s iptables is legacy fails on that node; cleared, it passes', async () => {
    const plan = join(dir, 'plan.yaml')
    fault('iptables-backend-mismatch', 'm-kubeadm', 'kubeadm-w-1', true)
    try {
      const bad = await check(plan, 'm-kubeadm', 'iptables-backend')
      failed(bad, 'iptables-backend')
      expect(bad.result.summary).toBe('kubeadm-w-1: the kubelet / kube-proxy (mode iptables) use nf_tables, host iptables is legacy')
      expect(bad.result.evidence[0]).toMatchObject({ source: expect.stringMatching(/^node kubeadm-w-1: iptables -V/), observed: 'iptables -V: iptables v1.8.7 (legacy); hint chains legacy=0 nf_tables=2; kube-proxy mode iptables' })
    } finally {
      fault('iptables-backend-mismatch', 'm-kubeadm', 'kubeadm-w-1', false)
    }
    passed(await check(plan, 'm-kubeadm', 'iptables-backend'), 'iptables-backend')
  }, 120_000)

  /** Pods no node can hold (64 CPUs each against 4-CPU nodes), created with real kubectl as a user would. */
  const hungryPods = (n: number) => Array.from({ length: n }, (_, i) => stringify({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: `hungry-${i}`, namespace: 'default' },
    spec: { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.9', resources: { requests: { cpu: '64' } } }] },
  })).join('---\n')

  it('pending-pods: an unschedulable pod fails the gate with the scheduler’s reason; deleted, the gate passes', async () => {
    const plan = join(dir, 'plan.yaml')
    passed(await check(plan, 'm-k3s', 'pending-pods'), 'pending-pods')
    await kubectl('m-k3s', ['create', '-f', '-'], hungryPods(1))
    try {
      const bad = await check(plan, 'm-k3s', 'pending-pods')
      failed(bad, 'pending-pods')
      expect(bad.result.summary).toBe('1 pods Pending (max 0)')
      expect(bad.result.evidence[0]!.observed).toMatch(/^1 Pending: default\/hungry-0 Unschedulable: 0\/3 nodes are available: .*3 Insufficient cpu/)
    } finally {
      await kubectl('m-k3s', ['delete', 'pod', 'hungry-0', '--wait=true'])
    }
    passed(await check(plan, 'm-k3s', 'pending-pods'), 'pending-pods')
  }, 120_000)

  it('event-storm: FailedScheduling events over the rate fail the gate; once they are older than the window it passes', async () => {
    const plan = join(dir, 'plan.yaml')
    passed(await check(plan, 'm-kubeadm', 'event-storm'), 'event-storm')
    await kubectl('m-kubeadm', ['create', '-f', '-'], hungryPods(25))
    try {
      const bad = await check(plan, 'm-kubeadm', 'event-storm')
      failed(bad, 'event-storm')
      expect(bad.result.summary).toMatch(/^(2[5-9]|[3-9]\d|\d{3,}) FailedScheduling events in 10m \(max 20\)$/)
      expect(bad.result.evidence[0]!.observed).toMatch(/FailedScheduling Pod\/default\/hungry-\d+ ×\d+/)
    } finally {
      await kubectl('m-kubeadm', ['delete', 'pods', ...Array.from({ length: 25 }, (_, i) => `hungry-${i}`), '--wait=true'])
    }
    // The events stay (as the apiserver keeps them for an hour): only a window that no longer covers them passes.
    const short = planWith('event-storm-2s', [{ 'event-storm': { window: '2s' } }])
    await new Promise((r) => setTimeout(r, 3_000))
    passed(await check(short, 'm-kubeadm', 'event-storm'), 'event-storm')
  }, 180_000)

  it('removed-apis: discovery serves flowcontrol v1beta3 on 1.31 and not on 1.32, as the real apiserver does', async () => {
    const versions = async (c: string) => (await kubectl(c, ['api-versions'])).stdout.split('\n').filter((l) => l.startsWith('flowcontrol'))
    expect(await versions('m-kubeadm')).toEqual(['flowcontrol.apiserver.k8s.io/v1', 'flowcontrol.apiserver.k8s.io/v1beta3'])
    expect(await versions('m-new')).toEqual(['flowcontrol.apiserver.k8s.io/v1'])
    const gone = await kubectl('m-new', ['get', 'flowschemas.v1beta3.flowcontrol.apiserver.k8s.io'], undefined).catch((e: { stderr: string }) => e)
    expect((gone as { stderr: string }).stderr).toMatch(/the server doesn't have a resource type "flowschemas"/)
    // The apiserver's own FlowSchemas are there, readable through v1 (the preferred version).
    const names = (await kubectl('m-new', ['get', 'flowschemas', '-o', 'name'])).stdout.split('\n').filter(Boolean)
    expect(names).toContain('flowschema.flowcontrol.apiserver.k8s.io/catch-all')
  }, 60_000)

  it('removed-apis: a FlowSchema applied as flowcontrol v1beta3 before 1.31 → 1.32 fails the gate by the apiserver’s metric and the object’s manifest', async () => {
    const plan = join(dir, 'plan.yaml')
    // The cluster's own FlowSchemas (written by the apiserver through v1) are no finding.
    const before = await check(plan, 'm-kubeadm', 'removed-apis')
    passed(before, 'removed-apis')
    expect(before.result.summary).toBe('no client or manifest uses an API removed between v1.31 → v1.32')
    const manifest = stringify({
      apiVersion: 'flowcontrol.apiserver.k8s.io/v1beta3', kind: 'FlowSchema', metadata: { name: 'ci-runners' },
      spec: { matchingPrecedence: 1000, priorityLevelConfiguration: { name: 'workload-low' }, distinguisherMethod: { type: 'ByUser' }, rules: [{ subjects: [{ kind: 'Group', group: { name: 'ci' } }], resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'] }] }] },
    })
    const applied = await kubectl('m-kubeadm', ['apply', '-f', '-'], manifest)
    // kubectl shows the apiserver's deprecation warning, word for word.
    expect(applied.stderr).toContain('Warning: flowcontrol.apiserver.k8s.io/v1beta3 FlowSchema is deprecated in v1.29+, unavailable in v1.32+; use flowcontrol.apiserver.k8s.io/v1 FlowSchema')
    const metrics = (await kubectl('m-kubeadm', ['get', '--raw', '/metrics'])).stdout
    expect(metrics).toContain('apiserver_requested_deprecated_apis{group="flowcontrol.apiserver.k8s.io",removed_release="1.32",resource="flowschemas",subresource="",version="v1beta3"} 1')
    const bad = await check(plan, 'm-kubeadm', 'removed-apis')
    failed(bad, 'removed-apis')
    expect(bad.result.summary).toBe('a client uses flowschemas.flowcontrol.apiserver.k8s.io/v1beta3, removed in 1.32: migrate it to flowcontrol.apiserver.k8s.io/v1; flowschemas ci-runners is applied as flowcontrol.apiserver.k8s.io/v1beta3, removed in 1.32: re-apply its manifest as flowcontrol.apiserver.k8s.io/v1')
    expect(bad.result.evidence.map((e) => e.observed)).toContain('flowschemas ci-runners: last-applied-configuration apiVersion flowcontrol.apiserver.k8s.io/v1beta3')
    // The other 1.31 cluster, whose clients never asked for v1beta3, passes; the gate's own reads never set the metric.
    passed(await check(plan, 'm-k3s', 'removed-apis'), 'removed-apis')
    expect((await kubectl('m-k3s', ['get', '--raw', '/metrics'])).stdout).not.toContain('apiserver_requested_deprecated_apis')
  }, 120_000)

  it('nodes-ready: a node under DiskPressure fails naming it; relieved, the gate passes', async () => {
    const plan = join(dir, 'plan.yaml')
    passed(await check(plan, 'm-k3s', 'nodes-ready'), 'nodes-ready')
    fault('disk-full', 'm-k3s', 'k3s-w-2', true)
    try {
      const bad = await check(plan, 'm-k3s', 'nodes-ready')
      failed(bad, 'nodes-ready')
      expect(bad.result.summary).toBe('k3s-w-2 has DiskPressure')
    } finally {
      fault('disk-full', 'm-k3s', 'k3s-w-2', false)
    }
    passed(await check(plan, 'm-k3s', 'nodes-ready'), 'nodes-ready')
  }, 120_000)

  it('nodes-ready: a plan that names a node otherwise than the API (its FQDN, another name at its address) fails saying which Node it is', async () => {
    const renamed = (name: string, to: string): string => {
      const text = readFileSync(join(dir, 'plan.yaml'), 'utf8')
      expect(text).toContain(`name: ${name}\n`)
      const file = join(dir, `renamed-${to}.yaml`)
      writeFileSync(file, text.replace(`name: ${name}\n`, `name: ${to}\n`))
      return file
    }
    const fqdn = await check(renamed('k3s-w-1', 'k3s-w-1.lab.example'), 'm-k3s', 'nodes-ready')
    failed(fqdn, 'nodes-ready')
    expect(fqdn.result.summary).toBe('k3s-w-1.lab.example is not registered in the API; the API has k3s-w-1, whose InternalIP is 127.0.95.111, this node\'s host in the plan: the plan must name each node as the API does (kubectl get nodes)')
    const other = await check(renamed('k3s-w-2', 'worker-two'), 'm-k3s', 'nodes-ready')
    failed(other, 'nodes-ready')
    expect(other.result.summary).toBe('worker-two is not registered in the API; the API has k3s-w-2, whose InternalIP is 127.0.95.112, this node\'s host in the plan: the plan must name each node as the API does (kubectl get nodes)')
  }, 120_000)

  it('version-skew on kubeadm: kube-proxy a minor behind its kubelet is within the policy (up to three older), so it passes, showing the skew', async () => {
    const plan = join(dir, 'plan.yaml')
    fault('kube-proxy-skew', 'm-kubeadm', undefined, true)
    try {
      const r = await check(plan, 'm-kubeadm', 'version-skew')
      passed(r, 'version-skew')
      expect(r.result.evidence).toContainEqual({ source: 'nodes kubeadm-cp-1, kubeadm-w-1, kubeadm-w-2', observed: 'kubelet v1.31.4, kube-proxy v1.30.0 (daemonset-pod)' })
    } finally {
      fault('kube-proxy-skew', 'm-kubeadm', undefined, false)
    }
  }, 120_000)

  it('upgrade-path: one minor up to a released version passes; a target below the running apiserver fails as a downgrade', async () => {
    const good = await check(join(dir, 'plan.yaml'), 'm-kubeadm', 'upgrade-path')
    passed(good, 'upgrade-path')
    expect(good.result.summary).toBe('v1.31.4 → v1.32.0: one minor at a time, 1 hop, a released kubeadm version')
    // A plan written when m-new still ran 1.30 (its `from` is stale): only the live read sees the downgrade.
    const doc = parse(readFileSync(join(dir, 'plan.yaml'), 'utf8')) as { spec: { target: { kubernetes: string }; clusters: { name: string; from: string }[] } }
    doc.spec.target.kubernetes = 'v1.31.4'
    doc.spec.clusters.find((c) => c.name === 'm-new')!.from = 'v1.30.14'
    writeFileSync(join(dir, 'downgrade.yaml'), stringify(doc))
    const bad = await check(join(dir, 'downgrade.yaml'), 'm-new', 'upgrade-path')
    failed(bad, 'upgrade-path')
    expect(bad.result.summary).toBe('downgrade: kube-apiserver runs v1.32.0, newer than the target v1.31.4; downgrades are not supported')
  }, 120_000)

  it('control-plane-ha with policy block: a single control-plane node fails the gate', async () => {
    const plan = planWith('ha-block', [{ 'control-plane-ha': { policy: 'block' } }])
    const bad = await check(plan, 'm-new', 'control-plane-ha')
    failed(bad, 'control-plane-ha')
    expect(bad.result.summary).toBe('1 control-plane node: a single point of failure')
    expect(bad.result.evidence[0]!.observed).toBe('plan: 1 (new-cp-1); API control-plane nodes: 1 (new-cp-1); etcd members: 1')
  }, 60_000)

  it('control-plane-ha with policy block: three control-plane nodes, each an etcd member, pass the gate', async () => {
    const plan = planWith('ha-block', [{ 'control-plane-ha': { policy: 'block' } }])
    const good = await check(plan, 'm-ha', 'control-plane-ha')
    passed(good, 'control-plane-ha')
    expect(good.result.summary).toBe('3 control-plane nodes (odd, ≥ 3)')
    expect(good.result.evidence[0]!.observed).toBe('plan: 3 (ha-cp-1, ha-cp-2, ha-cp-3); API control-plane nodes: 3 (ha-cp-1, ha-cp-2, ha-cp-3); etcd members: 3')
  }, 60_000)

  it('command on the runner: exit 0 passes; a failing command fails with its name and output', async () => {
    const marker = join(dir, 'maintenance-window-open')
    const plan = planWith('command-runner', [{ command: { name: 'maintenance window open', run: ['test', '-e', marker], on: 'runner' } }])
    writeFileSync(marker, '')
    passed(await check(plan, 'm-k3s', 'command'), 'command')
    rmSync(marker)
    const bad = await check(plan, 'm-k3s', 'command')
    failed(bad, 'command')
    expect(bad.result.summary).toBe('runner: `maintenance window open` exited 1')
    expect(bad.result.evidence).toEqual([{ source: `runner: test -e ${marker}`, observed: 'exit 1 (no output)', status: 'fail' }])
  }, 60_000)

  it('command on nodes: runs on each worker over SSH; the node whose disk is full fails it, by name', async () => {
    const plan = planWith('command-nodes', [{ command: { name: 'root disk under 90%', run: "df -P / | awk 'NR==2 { sub(/%/, \"\", $5); print $5 \"% used\"; exit ($5 + 0 >= 90) }'", on: 'workers' } }])
    const good = await check(plan, 'm-k3s', 'command')
    passed(good, 'command')
    expect(good.result.evidence.map((e) => e.source.split(':')[0]).sort()).toEqual(['node k3s-w-1', 'node k3s-w-2'])
    fault('disk-full', 'm-k3s', 'k3s-w-1', true)
    try {
      const bad = await check(plan, 'm-k3s', 'command')
      failed(bad, 'command')
      expect(bad.result.summary).toBe('k3s-w-1: `root disk under 90%` exited 1')
      expect(bad.result.evidence[0]!.source).toMatch(/^node k3s-w-1: df -P \//)
      expect(bad.result.evidence[0]!.observed).toBe('exit 1: 100% used')
      expect(bad.result.evidence[1]!.observed).toMatch(/^exit 0: \d+% used$/) // k3s-w-2 is fine
    } finally {
      fault('disk-full', 'm-k3s', 'k3s-w-1', false)
    }
    passed(await check(plan, 'm-k3s', 'command'), 'command')
  }, 120_000)

  it('http: the expected status and body pass; another status, or a body without the string, fails with what was answered', async () => {
    const state = { code: 200, body: '{"status":"ok"}' }
    await serve(`${NET}.250`, 18080, (req, res) => {
      if (req.url !== '/healthz') return void res.writeHead(404).end('404 page not found\n')
      res.writeHead(state.code, { 'Content-Type': 'application/json' }).end(state.body)
    })
    const url = `http://${NET}.250:18080/healthz`
    const plan = planWith('http', [{ http: { url, status: 200, bodyContains: '"ok"' } }])
    passed(await check(plan, 'm-kubeadm', 'http'), 'http')
    state.code = 503
    state.body = '{"status":"unavailable"}'
    const down = await check(plan, 'm-kubeadm', 'http')
    failed(down, 'http')
    expect(down.result.summary).toBe(`${url} answered 503, expected 200`)
    expect(down.result.evidence).toEqual([{ source: `runner: GET ${url}`, observed: 'HTTP 503: {"status":"unavailable"}', status: 'fail' }])
    state.code = 200
    state.body = '{"status":"degraded"}'
    const degraded = await check(plan, 'm-kubeadm', 'http')
    failed(degraded, 'http')
    expect(degraded.result.summary).toBe(`${url}: body lacks "\\"ok\\""`)
    state.body = '{"status":"ok"}'
    passed(await check(plan, 'm-kubeadm', 'http'), 'http')
  }, 60_000)

  it('prometheus: no firing critical alert passes; a firing one blocks, named with its labels; a warning-level alert does not', async () => {
    const alerts: Record<string, string>[] = []
    const queries: string[] = []
    // The Prometheus HTTP API as clients see it (prometheus/web/api/v1): /api/v1/query answers
    // {"status":"success","data":{"resultType":"vector","result":[{"metric":{…},"value":[<unix time>,"<value>"]}]}};
    // the ALERTS series carry alertname, alertstate and the rule's labels. A query this server cannot evaluate gets
    // Prometheus's own error shape, never an empty success.
    await serve(`${NET}.251`, 19090, (req, res) => {
      const u = new URL(req.url ?? '/', 'http://x')
      const reply = (code: number, doc: object) => res.writeHead(code, { 'Content-Type': 'application/json' }).end(JSON.stringify(doc))
      if (u.pathname !== '/api/v1/query') return reply(404, { status: 'error', errorType: 'not_found', error: 'not found' })
      const q = u.searchParams.get('query') ?? ''
      queries.push(q)
      const m = /^ALERTS\{((?:\w+="[^"]*",?)*)\}$/.exec(q)
      if (!m) return reply(400, { status: 'error', errorType: 'bad_data', error: `invalid parameter "query": this test server evaluates only ALERTS{label="value",…}: ${q}` })
      const want = [...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!] as const)
      const now = Date.now() / 1000
      reply(200, { status: 'success', data: { resultType: 'vector', result: alerts.filter((a) => want.every(([k, v]) => a[k] === v)).map((a) => ({ metric: { __name__: 'ALERTS', ...a }, value: [now, '1'] })) } })
    })
    const plan = planWith('prometheus', [{ prometheus: { url: `http://${NET}.251:19090` } }])
    passed(await check(plan, 'm-k3s', 'prometheus'), 'prometheus')
    expect(queries.at(-1)).toBe('ALERTS{alertstate="firing",severity="critical"}')
    alerts.push({ alertname: 'KubeletTooManyPods', alertstate: 'firing', namespace: 'monitoring', node: 'k3s-w-2', severity: 'warning' })
    passed(await check(plan, 'm-k3s', 'prometheus'), 'prometheus')
    alerts.push({ alertname: 'KubeNodeNotReady', alertstate: 'firing', namespace: 'monitoring', node: 'k3s-w-1', severity: 'critical' })
    alerts.push({ alertname: 'KubeAPIErrorBudgetBurn', alertstate: 'pending', severity: 'critical' })
    const bad = await check(plan, 'm-k3s', 'prometheus')
    failed(bad, 'prometheus')
    expect(bad.result.summary).toBe('1 series returned (max 0): KubeNodeNotReady{alertstate="firing",namespace="monitoring",node="k3s-w-1",severity="critical"} 1')
    expect(bad.result.evidence[0]!.source).toBe(`runner: Prometheus http://${NET}.251:19090 query ALERTS{alertstate="firing",severity="critical"}`)
    alerts.splice(1, 1)
    passed(await check(plan, 'm-k3s', 'prometheus'), 'prometheus')
  }, 60_000)
})
