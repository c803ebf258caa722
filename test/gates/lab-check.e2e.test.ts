import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CUSTOM_GATES, GATE_IDS } from '../../src/gates/catalog.js'
import type { FaultName } from '../../src/lab/faults.js'
import { Lab } from '../../src/lab/lab.js'
import { probeIsolation } from '../../src/lab/node/index.js'
import type { ApiEvent } from '../../src/lab/recorder/types.js'
import { normalizeTopology, type TopologyInput } from '../../src/lab/topology.js'
import { available } from '../helpers/required.js'
import { isProbeWrite } from '../helpers/probe-writes.js'
import { runCli } from '../helpers/run-cli.js'
import { openSsh } from '../lab/helpers.js'
import { waitFor } from '../lab/node/helpers.js'

/**
 * `kupgrade check` and `plan --live` against a lab fleet (real kubectl, real SSH, real bash on the nodes): healthy,
 * then with each incident's fault injected (exit 3 naming the gate, the node and the evidence), then cleared again.
 * The lab's recorder proves the gates wrote nothing but their probe pods.
 */
const KUBECTL = process.env.KUPGRADE_KUBECTL ?? '/usr/lib/google-cloud-sdk/bin/kubectl.1.32'
const runnable = available(existsSync(KUBECTL), `kubectl at ${KUBECTL}`, 'set KUPGRADE_KUBECTL to a kubectl binary') &&
  available(await probeIsolation().then(() => true, () => false), 'lab node isolation (mount namespaces)', 'run as root, or enable unprivileged user namespaces')

const NET = '127.0.70'
const DISTS = ['k3s', 'k0s', 'kubeadm'] as const
const topology: TopologyInput = {
  apiVersion: 'kupgrade.dev/v1alpha1',
  kind: 'LabTopology',
  metadata: { name: 'gates-e2e' },
  spec: {
    mirror: ['v1.29.6', 'v1.30.4'],
    timing: { serviceRestart: '100ms', readyDelay: '200ms', reboot: '300ms', drainEvictionDelay: '100ms' },
    clusters: DISTS.map((distribution, ci) => ({
      name: `g-${distribution}`,
      distribution,
      version: 'v1.29.6',
      apiAddress: `${NET}.${ci + 1}`,
      nodes: [
        // The k0s controller runs a worker too (--enable-worker): every gate here judges three Nodes per cluster.
        { name: `${distribution}-cp-1`, role: 'control-plane' as const, address: `${NET}.${100 + ci * 10}`, sshPort: 2222, ...(distribution === 'k0s' ? { enableWorker: true } : {}) },
        { name: `${distribution}-w-1`, role: 'worker' as const, address: `${NET}.${101 + ci * 10}`, sshPort: 2222 },
        { name: `${distribution}-w-2`, role: 'worker' as const, address: `${NET}.${102 + ci * 10}`, sshPort: 2222 },
      ],
    })),
  },
}

/** Every gate but the custom ones and version-skew (its evaluator comes from another module, tested there). */
const HEALTH_GATES = GATE_IDS.filter((g) => !(CUSTOM_GATES as readonly string[]).includes(g) && g !== 'version-skew')


interface JsonReport { status: string; clusters: { name: string; results: { gate: string; status: string; summary: string; evidence: { source: string; observed: string }[] }[] }[] }

describe.skipIf(!runnable)('kupgrade check and plan --live on a lab fleet', () => {
  let dir: string
  let lab: Lab
  const env = () => ({ PATH: process.env.PATH, HOME: dir, KUPGRADE_KUBECTL: KUBECTL, NO_COLOR: '1' })
  const run = (args: string[]) => runCli(args, { env: env(), cwd: dir })
  const plan = () => join(dir, 'plan.yaml')
  const check = async (cluster: string, gates: string[]) => {
    const r = await run(['check', plan(), '--cluster', cluster, '--gate', gates.join(','), '--format', 'json'])
    return { code: r.code, report: JSON.parse(r.out) as JsonReport, err: r.err }
  }
  const fault = (fault: FaultName, cluster: string, node: string | undefined, on: boolean, params?: Record<string, string | number>) =>
    lab.setFault({ fault, cluster, ...(node ? { node } : {}), ...(params ? { params } : {}) }, on)

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kupgrade-gates-e2e-'))
    lab = new Lab({ topology: normalizeTopology(topology), dir })
    await lab.start()
  }, 180_000)
  afterAll(async () => {
    await lab?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('a healthy fleet passes every gate (warnings aside), and the gates wrote nothing but their probe pods', async () => {
    const mark = lab.recorder.mark()
    // One cluster at a time: the lab's servers share this test's one CPU-starved event loop with the CLI.
    for (const d of DISTS) {
      const r = await run(['check', plan(), '--cluster', `g-${d}`, '--gate', HEALTH_GATES.join(','), '--format', 'json'])
      const report = JSON.parse(r.out) as JsonReport
      const bad = report.clusters.flatMap((c) => c.results.filter((x) => x.status === 'fail' || x.status === 'unknown').map((x) => `${c.name} ${x.gate}: ${x.summary} ${JSON.stringify(x.evidence)}`))
      expect(bad).toEqual([])
      expect(r.code).toBe(0)
      // single control plane: the HA gate warns (policy warn), it does not block
      expect(report.clusters[0]!.results.find((x) => x.gate === 'control-plane-ha')!.status).toBe('warn')
      // ... and says so itself: the plan's validation warning of the same thing is not printed beside it.
      expect(r.err).not.toMatch(`cluster g-${d} has 1 control-plane node`)
    }
    // Where control-plane-ha does not run, the validation warning is the only one to say it.
    const without = await run(['check', plan(), '--cluster', 'g-k3s', '--gate', 'nodes-ready', '--format', 'json'])
    expect(without.code, without.err).toBe(0)
    expect(without.err).toMatch(/: warning: spec\.clusters\[\d\]\.nodes: cluster g-k3s has 1 control-plane node: a single point of failure during the upgrade \(control-plane-ha gate\)\n/)
    const writes = lab.recorder.mutations({ afterSeq: mark })
    const other = writes.filter((e) => !isProbeWrite(e))
    expect(other).toEqual([])
    // every probe pod created was deleted again
    const probes = writes as ApiEvent[]
    const created = probes.filter((e) => e.method === 'POST').length
    const deleted = new Set(probes.filter((e) => e.method === 'DELETE').map((e) => e.name)).size
    expect(created).toBe(2 * DISTS.length) // one api-vip and one dns probe per cluster
    expect(deleted).toBe(created)
  }, 600_000)

  const cases: { fault: FaultName; dist: (typeof DISTS)[number]; node?: 'w-1' | 'cp-1'; gate: string; expect: RegExp; params?: Record<string, number> }[] = [
    { fault: 'kube-proxy-sync-failure', dist: 'kubeadm', node: 'w-1', gate: 'kube-proxy-sync', expect: /kubeadm-w-1: kube-proxy (log says "Sync failed"|last synced|healthz HTTP 503)/ },
    { fault: 'kube-proxy-sync-failure', dist: 'k3s', node: 'w-1', gate: 'kube-proxy-sync', expect: /k3s-w-1: kube-proxy (log says "Sync failed"|last synced|healthz HTTP 503)/ },
    { fault: 'api-vip-unreachable', dist: 'k0s', gate: 'api-vip', expect: /k0s-(cp|w)-\d cannot reach/ },
    { fault: 'coredns-crashloop', dist: 'k0s', gate: 'system-pods', expect: /coredns.*CrashLoopBackOff|CoreDNS \d\/\d Ready/ },
    { fault: 'coredns-crashloop', dist: 'kubeadm', gate: 'dns', expect: /kubernetes\.default\.svc does not resolve from a pod/ },
    { fault: 'cert-expiring', dist: 'k3s', gate: 'certificates', expect: /expires in \d+d/ },
    { fault: 'cert-expired', dist: 'kubeadm', gate: 'certificates', expect: /expired/ },
    { fault: 'disk-full', dist: 'k3s', node: 'w-1', gate: 'disk-space', expect: /k3s-w-1 \/: only .* free/ },
    // A member that answers nothing makes etcdctl wait out its --command-timeout (5 s) for each of the gate's three
    // reads; the fault's hangMs stands for that wait.
    { fault: 'etcd-unhealthy', dist: 'kubeadm', gate: 'etcd', expect: /kubeadm-cp-1: etcd member unhealthy/, params: { hangMs: 300 } },
    { fault: 'etcd-db-near-quota', dist: 'k0s', gate: 'etcd', expect: /k0s-cp-1: etcd DB at 95% of its quota/ },
    { fault: 'pdb-blocks-drain', dist: 'kubeadm', gate: 'drain-feasibility', expect: /PDB .* blocks draining/ },
    { fault: 'insufficient-capacity', dist: 'k3s', gate: 'capacity', expect: /does not fit elsewhere/ },
    // The node's downloads from GitHub fail (the lab's curl resets them): the release its upgrade needs is out of reach.
    { fault: 'upgrade-command-fails', dist: 'k3s', node: 'w-1', gate: 'release-source', expect: /^k3s-w-1: cannot get k3s \(k3s v1\.\d+\.\d+\+k3s1 for x86_64\) from https:\/\/github\.com\/k3s-io\/k3s\/releases\/download\/v1\.\d+\.\d+\+k3s1\/$/ },
    // k0s ships kube-proxy with the kubelet and requires the same minor (kubeadm would allow three behind).
    { fault: 'kube-proxy-skew', dist: 'k0s', gate: 'version-skew', expect: /kube-proxy v1\.28\.\d+.* is not the minor of kubelet v1\.29\.6/ },
  ]
  for (const c of cases) {
    it(`${c.fault} on ${c.dist}${c.node ? `/${c.node}` : ''}: check exits 3 naming ${c.gate}; cleared, it passes again`, async () => {
      const cluster = `g-${c.dist}`
      const node = c.node ? `${c.dist}-${c.node}` : undefined
      fault(c.fault, cluster, node, true, c.params)
      try {
        await new Promise((r) => setTimeout(r, 1_500)) // past kube-proxy's 2 × syncPeriod in the lab's timing
        const bad = await check(cluster, [c.gate])
        expect(bad.code, JSON.stringify(bad.report)).toBe(3)
        const res = bad.report.clusters[0]!.results[0]!
        expect(res.gate).toBe(c.gate)
        expect(res.status).toBe('fail')
        expect(res.summary).toMatch(c.expect)
        expect(res.evidence.length).toBeGreaterThan(0)
      } finally {
        fault(c.fault, cluster, node, false)
      }
      const good = await check(cluster, [c.gate])
      expect(good.report.clusters[0]!.results[0]!.status, JSON.stringify(good.report)).not.toMatch(/fail|unknown/)
    }, 300_000)
  }

  it("kubeadm: a worker still on the legacy apt.kubernetes.io repository fails release-source before anything changes; on pkgs.k8s.io again, it passes", async () => {
    const { ok } = openSsh(() => ({ dir }))
    const w1 = `${NET}.121`
    const list = '/etc/apt/sources.list.d/kubernetes.list'
    const kept = await ok(w1, `cat ${list}`)
    expect(kept).toBe('deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.29/deb/ /')
    await ok(w1, `echo 'deb https://apt.kubernetes.io/ kubernetes-xenial main' > ${list}`)
    try {
      const bad = await check('g-kubeadm', ['release-source'])
      expect(bad.code, JSON.stringify(bad.report)).toBe(3)
      const res = bad.report.clusters[0]!.results[0]!
      expect(res.summary).toBe(`kubeadm-w-1: ${list} points at the legacy Google-hosted Kubernetes repository (apt.kubernetes.io, yum.kubernetes.io, packages.cloud.google.com), frozen in 2023 and removed in 2024: move the node to pkgs.k8s.io (https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/change-package-repository/), then run again`)
      expect(res.evidence).toContainEqual({ source: 'node kubeadm-cp-1: the Kubernetes package repository, to be switched to v1.30', observed: `${list}: pkgs.k8s.io/core:/stable:/v1.29/`, status: 'pass' })
    } finally {
      await ok(w1, `echo ${JSON.stringify(kept)} > ${list}`)
    }
    const good = await check('g-kubeadm', ['release-source'])
    expect(good.report.clusters[0]!.results[0], JSON.stringify(good.report)).toMatchObject({ status: 'pass', summary: "every node's Kubernetes package repository is a pkgs.k8s.io one kupgrade can switch to v1.30" })
  }, 120_000)

  it('api-vip whose probe pod create timed out after the API made it: the gate judges that pod and deletes it', async () => {
    const cluster = 'g-k3s'
    const probes = () => [...lab.clusters.get(cluster)!.model.pods.keys()].filter((k) => k.startsWith('default/kupgrade-probe-'))
    // The first create of a pod in default is carried out and answered 504 Timeout (kube-apiserver's deadline).
    const slow = { fault: 'apiserver-slow' as const, cluster, params: { method: 'POST', path: '/api/v1/namespaces/default/pods', requests: 1, answer: 'timeout', delay: '100ms' } }
    const mark = lab.recorder.mark()
    lab.setFault(slow, true)
    try {
      const r = await check(cluster, ['api-vip'])
      const res = r.report.clusters[0]!.results[0]!
      expect(res.status, JSON.stringify(res)).toBe('pass')
      expect(res.evidence.map((e) => e.source).join('\n')).toMatch(/^pod default\/kupgrade-probe-api-vip-[0-9a-f]{6} on k3s-\S+: Succeeded, exit 0$/m)
    } finally {
      lab.setFault(slow, false)
    }
    // The create that landed and was answered 504, then kubectl's own second send of it (409 AlreadyExists).
    const posts = lab.recorder.events({ afterSeq: mark, cluster }).filter((e): e is ApiEvent => e.source === 'api' && e.method === 'POST')
    expect(posts.map((e) => e.code)).toEqual([504, 409])
    expect(lab.recorder.mutations({ afterSeq: mark, cluster }).map((e) => (e as ApiEvent).method)).toEqual(['POST', 'DELETE'])
    // The delete is sent with --wait=false: the pod goes once its grace period ends, as on a real cluster.
    await waitFor(`probe pods gone (${probes().join(', ')})`, () => probes().length === 0, 30_000)
  }, 300_000)

  it('text output names the gate, the node and the evidence once; plan --live is blocked the same way in every format', async () => {
    fault('kube-proxy-sync-failure', 'g-k0s', 'k0s-w-2', true)
    try {
      await new Promise((r) => setTimeout(r, 1_500))
      const text = await run(['check', plan(), '--cluster', 'g-k0s', '--gate', 'kube-proxy-sync'])
      expect(text.code).toBe(3)
      expect(text.out).toMatch(/FAIL kube-proxy-sync/)
      expect(text.out).toMatch(/k0s-w-2/)
      expect(text.out).toMatch(/stops incident: kubelet-kube-proxy-skew/)
      for (const format of ['text', 'markdown', 'json']) {
        const mark = lab.recorder.mark()
        const live = await run(['plan', plan(), '--live', '--format', format])
        expect(live.code, `${format}: ${live.err}`).toBe(3)
        expect(live.out, format).toMatch(/kube-proxy-sync/)
        expect(live.out, format).toMatch(/k0s-w-2: kube-proxy/)
        if (format === 'text') expect(live.out).toMatch(/\nBLOCKED: apply would stop before it changes any node\. .*\n  - pre-gates: \d+ failed[^\n]*\n$/)
        // Each message once: the single control plane is said by the control-plane-ha gate's verdict, with its
        // evidence; the validation warning of the same thing (the offline plan's) is left out where the gate ran.
        expect((live.out + live.err).match(/1 control-plane node: a single point of failure/g) ?? [], format).toHaveLength(3)
        expect(live.out + live.err, format).not.toMatch(/cluster g-k0s has 1 control-plane node/)
        const others = lab.recorder.mutations({ afterSeq: mark }).filter((e) => !isProbeWrite(e))
        expect(others, format).toEqual([])
      }
    } finally {
      fault('kube-proxy-sync-failure', 'g-k0s', 'k0s-w-2', false)
    }
  }, 900_000)
})
