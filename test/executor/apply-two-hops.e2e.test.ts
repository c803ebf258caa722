import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { NodeEvent } from '../../src/lab/recorder/types.js'
import { events, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * A target two minors ahead on k3s (1 server + 2 agents, v1.28.15 → v1.30.4), with no `via` in the plan: the planner
 * takes the v1.29 stop from its release list (v1.29.15+k3s1) and apply runs two hops. Proven from the lab's own
 * state, watched at every change of its cluster model while the real CLI runs: every node ran v1.29 before v1.30,
 * all of them reached v1.29 before any went on, no kubelet was ever newer than the API server or more than three
 * minors older, and the run ends with every node at the target, Ready, uncordoned.
 */
const NET = '127.0.112'
const CLUSTER = 'tw'
const NODES = ['tw-cp-1', 'tw-w-1', 'tw-w-2']

interface Snapshot { nodes: { name: string; role: string; kubelet: string; apiServer: string }[] }
const minor = (v: string): number => Number(/^v1\.(\d+)\./.exec(v)![1])

describe('apply: two hops on k3s (v1.28 → v1.29 → v1.30)', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology(NET, [{ name: CLUSTER, distribution: 'k3s', version: 'v1.28.15', controlPlanes: 1, workers: 2 }], ['v1.28.15', 'v1.29.15', 'v1.30.4']))
    // The lab writes `via` from its mirror; without it the v1.29 stop must come from kupgrade's release list.
    await l.editPlan((d) => {
      delete d.spec.target.via
      // Six node upgrades: the gates that probe the data plane with pods (several seconds each, after every node)
      // judge nothing this test is about; version-skew, nodes-ready and the rest still run at every point.
      const reason = 'not what this test proves (hop order and skew); the data-plane gates are proven in rollback.e2e and test/incidents'
      d.spec.gates = { ...d.spec.gates, wait: { ...d.spec.gates?.wait, interval: '500ms' }, skip: ['api-vip', 'dns', 'kube-proxy-sync'].map((gate) => ({ gate, reason })) }
    })
  }, 60_000)
  afterAll(async () => l?.stop())

  it('the plan takes the v1.29 stop from the release list', async () => {
    const r = await l.cli(['plan', l.plan, '--format', 'json'])
    expect(r.code, r.err + r.out.slice(-2000)).toBe(0)
    const plan = JSON.parse(r.out)
    expect(plan.stages[0].clusters[0].hops.map((h: { from: string; to: { release: string } }) => [h.from, h.to.release])).toEqual([
      ['v1.28.15+k3s1', 'v1.29.15+k3s1'], ['v1.29.15+k3s1', 'v1.30.4+k3s1'],
    ])
  })

  it('runs both hops: every node at v1.29 before any at v1.30, within the skew policy at every observed moment', async () => {
    const model = l.lab.clusters.get(CLUSTER)!.model
    const snapshots: Snapshot[] = []
    const snap = (): void => {
      const nodes = [...model.nodes.values()].map((n) => ({ name: n.name, role: n.role, kubelet: n.kubeletVersion, apiServer: n.controlPlaneVersion }))
      const last = snapshots.at(-1)
      if (!last || JSON.stringify(last.nodes) !== JSON.stringify(nodes)) snapshots.push({ nodes })
    }
    // Every state change of a node's service comes with one of these events (serviceStarted / serviceStopped emit
    // 'apiservers'; starts and upgrades also a 'trigger'); a timer catches anything else.
    snap()
    model.on('apiservers', snap)
    model.on('trigger', snap)
    const timer = setInterval(snap, 20)
    const mark = l.lab.recorder.mark()
    let r: { code: number; out: string; err: string }
    try {
      r = await l.cli(['apply', l.plan, '--output', 'json'])
    } finally {
      clearInterval(timer)
      model.off('apiservers', snap)
      model.off('trigger', snap)
    }
    snap()
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)

    // End state.
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual(NODES.map((n) => [n, 'v1.30.4+k3s1', 'True', false]))

    // Each node went through v1.29.15 on its way: in the model's history and in what was installed on it.
    for (const n of NODES) {
      const seen = snapshots.map((s) => s.nodes.find((x) => x.name === n)!.kubelet).filter((v, i, a) => i === 0 || v !== a[i - 1])
      expect(seen, n).toEqual(['v1.28.15', 'v1.29.15', 'v1.30.4'])
    }
    const installs = (l.lab.recorder.mutations({ afterSeq: mark, source: 'node' }) as NodeEvent[]).filter((e) => e.action === 'install' && e.binary === 'k3s')
    for (const n of NODES) expect(installs.filter((e) => e.node === n).map((e) => e.version), n).toEqual(['v1.29.15+k3s1', 'v1.30.4+k3s1'])
    // Hop by hop: the whole cluster at v1.29 before any node at v1.30.
    const allAt29 = snapshots.findIndex((s) => s.nodes.every((x) => x.kubelet === 'v1.29.15'))
    const firstAt30 = snapshots.findIndex((s) => s.nodes.some((x) => x.kubelet === 'v1.30.4'))
    expect(allAt29).toBeGreaterThan(0)
    expect(firstAt30).toBeGreaterThan(allAt29)
    // The server first in each hop.
    expect(installs.map((e) => e.node)).toEqual(['tw-cp-1', 'tw-w-1', 'tw-w-2', 'tw-cp-1', 'tw-w-1', 'tw-w-2'])

    // The skew policy at every observed moment: no kubelet newer than the API server nor more than three minors
    // older (facts §1.1); the control plane one minor apart at most.
    expect(snapshots.length).toBeGreaterThan(6)
    for (const s of snapshots) {
      const apiMinors = s.nodes.filter((x) => x.role === 'control-plane').map((x) => minor(x.apiServer))
      const oldestApi = Math.min(...apiMinors)
      expect(Math.max(...apiMinors) - oldestApi, JSON.stringify(s)).toBeLessThanOrEqual(1)
      for (const x of s.nodes) {
        expect(minor(x.kubelet), `${x.name} newer than the API server: ${JSON.stringify(s)}`).toBeLessThanOrEqual(oldestApi)
        expect(minor(x.kubelet), JSON.stringify(s)).toBeGreaterThanOrEqual(Math.max(...apiMinors) - 3)
      }
    }

    // The journal: both hops' steps for every node, hop 1 done before hop 2 began.
    const fin = events(r.out).at(-1)
    expect(fin).toMatchObject({ type: 'run-finished', outcome: 'done', exitCode: 0 })
    const journal = readFileSync(fin.journal, 'utf8').trim().split('\n').slice(1).map((x) => JSON.parse(x))
    const done = (id: string) => journal.findIndex((e) => e.step === id && e.state === 'done')
    for (const n of NODES) {
      expect(done(`${CLUSTER}/${CLUSTER}/hop1/${n}/wait-ready`), n).toBeGreaterThan(0)
      expect(done(`${CLUSTER}/${CLUSTER}/hop2/${n}/wait-ready`), n).toBeGreaterThan(done(`${CLUSTER}/${CLUSTER}/hop1/tw-w-2/uncordon`))
    }
    runId = fin.runId
  }, 300_000)

  let runId = ''
  it('kupgrade rollback takes the run back through both hops, the last hop first, each node named with its hop', async () => {
    const r = await l.cli(['rollback', runId, '--yes', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(0)
    const ev = events(r.out)
    const order = ['tw-w-2', 'tw-w-1', 'tw-cp-1']
    expect(ev.filter((e) => e.type === 'rollback-done').map((e) => `${e.node} hop ${e.hop}`)).toEqual([...order.map((n) => `${n} hop 2`), ...order.map((n) => `${n} hop 1`)])
    expect(ev.at(-1).message).toMatch(/^rolled back: tw\/tw-w-2 \(hop 2\), tw\/tw-w-1 \(hop 2\), tw\/tw-cp-1 \(hop 2\), tw\/tw-w-2 \(hop 1\), tw\/tw-w-1 \(hop 1\), tw\/tw-cp-1 \(hop 1\) /)
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual(NODES.map((n) => [n, 'v1.28.15+k3s1', 'True', false]))
  }, 300_000)
})
