import { existsSync, readFileSync } from 'node:fs'
import { request } from 'node:https'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { servingApiServers } from '../../src/lab/fleet/apiservers.js'
import type { ApiEvent, NodeEvent } from '../../src/lab/recorder/types.js'
import { events, expectBackupsCopied, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * A kubeadm HA cluster (3 control planes + 2 workers, Debian) upgraded v1.29.6 → v1.30.4 with an OS upgrade and
 * `reboot: if-required` in the same run, proven from the lab's recorder and state rather than kupgrade's output:
 * control-plane nodes one at a time, all before any worker, `kubeadm upgrade apply v1.30.4` on the first only and
 * `kubeadm upgrade node` on every other node; on each node the pkgs.k8s.io repository switched and the packages
 * unheld before the installs and held after, and held through the OS upgrade (the v1.29 repository offers v1.29.8,
 * which an unheld `apt-get upgrade` would install); every node whose updates need a reboot rebooted exactly once
 * while the worker whose updates need none kept its boot; the API address kept answering while each control-plane
 * node rebooted (two others served) and the run's lock was never lost; never more than maxUnavailable (1) worker
 * cordoned; every node ends Ready, uncordoned, at the target, packages held.
 */
const NET = '127.0.139'
const CLUSTER = 'kho'
const CPS = ['kho-cp-1', 'kho-cp-2', 'kho-cp-3']
const WORKERS = ['kho-w-1', 'kho-w-2']
const NODES = [...CPS, ...WORKERS]
const NO_REBOOT = 'kho-w-2'
const REBOOTING = NODES.filter((n) => n !== NO_REBOOT)
const HOLDS = '/var/lib/dpkg/status (apt-mark holds)'
const OS = '/var/lib/dpkg/status (OS upgrade)'
const REPO = '/etc/apt/sources.list.d/kubernetes.list'

/**
 * One GET on a fresh connection to the cluster's API address (as a new client through the VIP would make). An API
 * that is down refuses at once; the timeout is only for a lab host too loaded to answer in time (the full suite runs
 * beside this test), which says nothing about the upgrade, so it is generous.
 */
function probeApi(l: ExecLab, host: string): Promise<string | undefined> {
  return new Promise((done) => {
    const req = request({
      host, port: 6443, path: '/api/v1/namespaces/default', method: 'GET', agent: false, timeout: 15_000,
      ca: readFileSync(join(l.dir, 'ca.crt')), headers: { authorization: `Bearer ${readFileSync(join(l.dir, 'token'), 'utf8').trim()}` },
    }, (res) => {
      res.resume()
      res.on('end', () => done(res.statusCode === 200 ? undefined : `HTTP ${res.statusCode}`))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', (err) => done(err.message))
    req.end()
  })
}

describe('apply: kubeadm HA (3 + 2) with an OS upgrade and reboot if required', () => {
  let l: ExecLab
  beforeAll(async () => {
    const t = topology(NET, [{ name: CLUSTER, distribution: 'kubeadm', version: 'v1.29.6', controlPlanes: 3, workers: 2 }], ['v1.29.6', 'v1.29.8', 'v1.30.4'])
    // openssl and curl only: upgraded, but nothing a reboot is needed for.
    t.spec.clusters[0]!.nodes.find((n) => n.name === NO_REBOOT)!.osUpdates = ['openssl', 'curl']
    l = await startExecLab(t)
    await l.editPlan((d) => {
      d.spec.target.os = { packages: 'all', reboot: 'if-required' }
      d.spec.strategy.workers = { maxUnavailable: 1, canary: 0 }
      d.spec.gates.wait.interval = '500ms'
      // The pod probes (seconds per node, after every node) judge the data plane, not the HA reboot this test is
      // about; kube-proxy-sync, nodes-ready and version-skew still run after every node, so a node back from its
      // reboot without its kube-proxy or Ready, or a skew the HA order would cause, still fails the run.
      const reason = 'pod probes, not what this test proves (HA order and reboots); proven in rollback.e2e and test/incidents'
      d.spec.gates.skip = ['api-vip', 'dns'].map((gate) => ({ gate, reason }))
    })
  }, 90_000)
  afterAll(async () => l?.stop())

  const model = () => l.lab.clusters.get(CLUSTER)!.model
  const node = (n: string) => model().nodes.get(n)!
  const nodeState = (n: string, file: string) => join(l.dir, 'nodes', CLUSTER, n, 'lab', 'state', file)
  const nodeFile = (n: string, path: string) => join(l.dir, 'nodes', CLUSTER, n, path)
  const machineBootId = (n: string) => readFileSync(nodeState(n, 'boot_id'), 'utf8').trim()
  const holds = (n: string) => readFileSync(nodeState(n, 'apt-holds'), 'utf8').trim().split('\n').sort()

  it('upgrades control planes one at a time then workers, reboots those that ask, keeps the API served and the lock held', async () => {
    const bootBefore = Object.fromEntries(NODES.map((n) => [n, node(n).bootId]))
    for (const n of NODES) {
      expect(bootBefore[n]).toBe(machineBootId(n))
      expect(holds(n), `${n}: held before the run`).toEqual(['kubeadm', 'kubectl', 'kubelet'])
      expect(readFileSync(nodeFile(n, REPO), 'utf8')).toContain('pkgs.k8s.io/core:/stable:/v1.29/')
    }
    const mark = l.lab.recorder.mark()

    // Every change of the serving set: never fewer than two of three while one control-plane node is down.
    const serving: number[] = []
    const onServing = () => serving.push(servingApiServers(model()).length)
    model().on('apiservers', onServing)
    // The API address, probed on a fresh connection every 50ms through the whole run; each probe notes which
    // control-plane nodes did not serve the API at that moment (stopped kubelet, upgrade, reboot). A connection the
    // balancer gave to a node whose apiserver stops before it answers is reset, as a real backend going away resets
    // it; a client then reconnects. So a probe cut while the serving set changed is retried at once, and the retry
    // must be answered (by the others still serving); any other failure counts.
    const probes: { down: string[]; error?: string; retried?: string }[] = []
    let probing = true
    const prober = (async () => {
      while (probing) {
        const down = CPS.filter((n) => !servingApiServers(model()).some((s) => s.name === n))
        const changesBefore = serving.length
        const error = await probeApi(l, `${NET}.1`)
        if (error && serving.length > changesBefore) probes.push({ down, retried: error, ...await probeApi(l, `${NET}.1`).then((e) => (e ? { error: e } : {})) })
        else probes.push({ down, ...(error ? { error } : {}) })
        await new Promise((r) => setTimeout(r, 50))
      }
    })()
    let r
    try {
      r = await l.cli(['apply', l.plan, '--output', 'json'])
    } finally {
      probing = false
      await prober
      model().off('apiservers', onServing)
    }
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)
    // What each step said it runs is what ran on these Debian nodes: the apt commands, not apt's and dnf's.
    const started = events(r.out).filter((e) => e.type === 'step-started' && ['upgrade-package', 'os-upgrade'].includes(e.step.action))
    expect([...new Set(started.map((e) => e.step.title))].sort()).toEqual([
      "kubeadm v1.30.4: apt-get install -y 'kubeadm=1.30.4-*'",
      "kubelet and kubectl v1.30.4: apt-get install -y 'kubelet=1.30.4-*' 'kubectl=1.30.4-*'",
      expect.stringMatching(/^upgrade OS all packages: apt-get update && env DEBIAN_FRONTEND=noninteractive apt-get -o Dpkg::Options::=--force-confold upgrade -y; Kubernetes packages stay held/),
    ])
    expect(started).toHaveLength(NODES.length * 3)

    // End state: every node Ready, uncordoned, at the target, packages held, the repository at v1.30.
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual(NODES.map((n) => [n, 'v1.30.4', 'True', false]))
    for (const n of NODES) {
      expect(holds(n), n).toEqual(['kubeadm', 'kubectl', 'kubelet'])
      const repo = readFileSync(nodeFile(n, REPO), 'utf8')
      expect(repo, n).toContain('pkgs.k8s.io/core:/stable:/v1.30/')
      expect(repo, n).not.toContain('/v1.29/')
    }

    const rec = l.lab.recorder
    const nodeEvents = rec.mutations({ afterSeq: mark, source: 'node' }) as NodeEvent[]
    const of = (n: string) => nodeEvents.filter((e) => e.node === n)

    // 1. Control planes one at a time, in order, all before any worker; apply on the first, node on the others.
    const order = rec.nodeUpgradeOrder(CLUSTER)
    expect(order.slice(0, 3)).toEqual(CPS)
    expect(order.slice(3).sort()).toEqual(WORKERS)
    expect(rec.maxConcurrentDisruptions(CLUSTER, 'control-plane')).toBe(1)
    expect(rec.maxConcurrentlyCordoned(CLUSTER, 'control-plane')).toBe(1)
    const lastCp = Math.max(...nodeEvents.filter((e) => e.role === 'control-plane').map((e) => e.seq))
    const firstWorker = Math.min(...nodeEvents.filter((e) => e.role === 'worker').map((e) => e.seq))
    expect(lastCp, 'every control-plane change precedes every worker change').toBeLessThan(firstWorker)
    const workerCordons = (rec.mutations({ afterSeq: mark, source: 'api' }) as ApiEvent[]).filter((e) => e.resource === 'nodes' && e.nodeRole === 'worker' && e.unschedulable === true)
    expect(Math.min(...workerCordons.map((e) => e.seq)), 'no worker cordoned before the control planes were done').toBeGreaterThan(lastCp)
    expect(nodeEvents.filter((e) => e.action === 'upgrade-applied').map((e) => [e.node, e.command, e.version]).sort()).toEqual([
      ['kho-cp-1', 'apply', 'v1.30.4'], ['kho-cp-2', 'node', 'v1.30.4'], ['kho-cp-3', 'node', 'v1.30.4'],
      ['kho-w-1', 'node', 'v1.30.4'], ['kho-w-2', 'node', 'v1.30.4'],
    ])

    for (const n of NODES) {
      const ev = of(n)
      const seqOf = (pred: (e: NodeEvent) => boolean) => ev.filter(pred).map((e) => e.seq)
      const os = seqOf((e) => e.action === 'package' && e.path === OS)
      const holdChanges = seqOf((e) => e.action === 'package' && e.path === HOLDS)
      const repo = seqOf((e) => e.action === 'file-write' && e.path === REPO)
      const installs = seqOf((e) => e.action === 'install')
      const reboots = seqOf((e) => e.action === 'reboot')
      // 1. The repository switched once and the packages unheld before any install, held again after the last.
      expect(repo.length, `${n}: repo switches`).toBe(1)
      expect(holdChanges.length, `${n}: unhold + hold`).toBe(2)
      expect(installs.length, `${n}: installs`).toBeGreaterThan(0)
      expect(repo[0]!, n).toBeLessThan(installs[0]!)
      expect(holdChanges[0]!, n).toBeLessThan(installs[0]!)
      expect(holdChanges[1]!, n).toBeGreaterThan(installs.at(-1)!)
      // 2. The OS upgrade ran while the packages were still held (before the unhold), and the reboot after it,
      // before the Kubernetes upgrade touched the node.
      expect(os.length, `${n}: OS upgrade`).toBeGreaterThan(0)
      expect(os[0]!, n).toBeLessThan(holdChanges[0]!)
      if (REBOOTING.includes(n)) {
        expect(reboots.length, `${n}: reboots`).toBe(1)
        expect(reboots[0]!, n).toBeGreaterThan(os[0]!)
        expect(reboots[0]!, n).toBeLessThan(holdChanges[0]!)
        expect(node(n).bootId, n).not.toBe(bootBefore[n])
        expect(node(n).bootId, n).toBe(machineBootId(n))
        expect(existsSync(nodeState(n, 'os-updated')), `${n}: the update applied at boot`).toBe(true)
      } else {
        expect(reboots, n).toEqual([])
        expect(node(n).bootId, n).toBe(bootBefore[n])
        expect(existsSync(nodeState(n, 'os-staged')), `${n}: the update staged, no boot needed`).toBe(true)
      }
    }
    // Held through the OS upgrade: the only version ever installed is the target's (unheld, `apt-get upgrade` would
    // have installed v1.29.8 from the v1.29 repository).
    expect(new Set(nodeEvents.filter((e) => e.action === 'install').map((e) => e.version))).toEqual(new Set(['v1.30.4']))

    // 3. The API stayed served while each control-plane node rebooted: two of three served then, the API address
    // answered every probe, and probes did land while each control-plane node was down.
    expect(Math.min(...serving), `serving apiservers over the run: ${serving}`).toBe(2)
    const failed = probes.filter((p) => p.error)
    expect(failed, JSON.stringify(failed.slice(0, 5))).toEqual([])
    const cut = probes.filter((p) => p.retried)
    expect(cut.filter((p) => !/socket hang up|ECONNRESET/.test(p.retried!)), 'only a reset is retried').toEqual([])
    expect(cut.length, 'at most one cut probe per change of the serving set').toBeLessThanOrEqual(serving.length)
    for (const cp of CPS) expect(probes.filter((p) => p.down.includes(cp)).length, `probes while ${cp} was down`).toBeGreaterThan(0)
    // Every write the run made was answered: nothing refused but the evictions a PDB holds back (429, retried),
    // the Lease renewals included.
    const refused = (rec.events({ afterSeq: mark, source: 'api' }) as ApiEvent[]).filter((e) => e.code >= 400 && !(e.subresource === 'eviction' && e.code === 429))
    expect(refused.map((e) => `${e.verb} ${e.path} → ${e.code}`)).toEqual([])
    const leaseWrites = (rec.mutations({ afterSeq: mark, source: 'api' }) as ApiEvent[]).filter((e) => e.resource === 'leases' && e.name?.startsWith('kupgrade'))
    expect(leaseWrites.length).toBeGreaterThan(1)

    // The journal and the events: the lock was acquired, kept and released, never lost.
    const ev = events(r.out)
    expect(ev.filter((e) => e.type === 'lock-lost')).toEqual([])
    expect(ev.filter((e) => e.type === 'lock-acquired').map((e) => e.cluster)).toEqual([CLUSTER])
    expect(ev.filter((e) => e.type === 'lock-released').map((e) => e.cluster)).toEqual([CLUSTER])
    const fin = ev.at(-1)
    expect(fin).toMatchObject({ type: 'run-finished', outcome: 'done', exitCode: 0 })
    const journal = readFileSync(fin.journal, 'utf8').trim().split('\n').slice(1).map((x) => JSON.parse(x))
    expect(journal.filter((e) => e.state === 'failed' || e.type === 'lock-lost')).toEqual([])
    for (const n of NODES) {
      const done = (action: string) => journal.findIndex((e) => e.step === `${CLUSTER}/${CLUSTER}/hop1/${n}/${action}` && e.state === 'done')
      expect(done('os-upgrade'), n).toBeGreaterThan(done('drain'))
      expect(done('reboot'), n).toBeGreaterThan(done('os-upgrade'))
      expect(done('unhold-packages'), n).toBeGreaterThan(done('reboot'))
      expect(done('uncordon'), n).toBeGreaterThan(done('hold-packages'))
    }

    // 4. Never more than maxUnavailable (1) worker cordoned at once.
    expect(rec.maxConcurrentlyCordoned(CLUSTER, 'worker')).toBe(1)

    // 5. The etcd snapshot was copied off the first control-plane node, with its checksum list, and indexed.
    //    With each control-plane node's kept files (/etc/kubernetes among them): its restore puts them back too.
    const copied = expectBackupsCopied(l, CLUSTER)
    const snapshot = copied.filter((b) => b.step.endsWith('/backup'))
    expect(snapshot.map((b) => [b.run, b.node, b.hop, b.version])).toEqual([[fin.runId, NODES[0], 1, 'v1.29.6']])
    expect(snapshot[0].files.map((f: any) => f.remote)).toEqual(['/var/lib/kupgrade/backup/v1.29.6/etcd-snapshot.db'])
    expect(copied.filter((b) => b.step.endsWith('/backup-files')).map((b) => b.node).sort()).toEqual([...CPS].sort())
  }, 600_000)
})
