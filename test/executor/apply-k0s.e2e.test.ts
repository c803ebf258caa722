import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiEvent, NodeEvent } from '../../src/lab/recorder/types.js'
import { events, expectBackupsCopied, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * k0s end to end: three controllers (the first two plain controllers as k0s installs them by default, so no Node
 * objects; the third with --enable-worker, a Node) and two workers, upgraded by one apply. Proven with the lab's
 * recorder: `k0s backup` on the first controller before anything changes, controllers one at a time and all before any
 * worker, no Node write for a controller that has no Node, every machine running the target at the end.
 */
describe('apply: k0s controllers (with and without a worker) and workers', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.90', [{ name: 'k0', stage: 'all', distribution: 'k0s', controlPlanes: 3, workers: 2, enableWorker: [3] }]))
    await l.editPlan((d) => {
      d.spec.strategy.onFailure = 'abort'
    })
  }, 90_000)
  afterAll(async () => {
    await l?.stop()
  })

  it('lists only the machines that run a kubelet as Nodes', () => {
    expect(l.lab.clusters.get('k0')!.model.kubeNodes().map((n) => n.name)).toEqual(['k0-cp-3', 'k0-w-1', 'k0-w-2'])
  })

  it('kupgrade check judges only those as Nodes: the plain controllers need no Node, kube-proxy or pods to pass', async () => {
    const r = await l.cli(['check', l.plan, '--gate', 'nodes-ready,kube-proxy-sync', '--format', 'json'])
    const report = JSON.parse(r.out) as { clusters: { results: { gate: string; status: string; summary: string }[] }[] }
    expect(r.code, r.err + r.out.slice(-3000)).toBe(0)
    expect(report.clusters[0]!.results.map((x) => [x.gate, x.status, x.summary])).toEqual([
      ['nodes-ready', 'pass', expect.stringMatching(/^3 nodes Ready/)],
      ['kube-proxy-sync', 'pass', expect.stringMatching(/on 3 node\(s\)/)],
    ])
  })

  it('upgrades every machine: backup first, controllers one at a time before the workers', async () => {
    const rec = l.lab.recorder
    const start = rec.mark()
    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)

    // Every machine runs the target k0s, plain controllers included (their binary and their running service).
    for (const [name, node] of l.lab.clusters.get('k0')!.nodes) {
      expect([name, node.getState().installedVersion, node.getState().runningVersion, node.getState().serviceActive]).toEqual([name, 'v1.30.4+k0s.0', 'v1.30.4+k0s.0', true])
    }
    const st = l.lab.status().clusters[0]!.nodes
    expect(st.filter((n) => n.node).map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ['k0-cp-3', 'v1.30.4+k0s', 'True', false], ['k0-w-1', 'v1.30.4+k0s', 'True', false], ['k0-w-2', 'v1.30.4+k0s', 'True', false],
    ])

    const nodeEvents = rec.events({ cluster: 'k0', source: 'node', afterSeq: start }) as NodeEvent[]
    // k0s backup on the first controller, before any service stopped or binary changed.
    const firstChange = nodeEvents.findIndex((e) => e.action === 'service-stop' || e.action === 'install')
    const backups = nodeEvents.filter((e) => e.action === 'backup')
    expect(backups.map((e) => [e.node, e.path?.replace(/k0s_backup_.*$/, 'k0s_backup_…')])).toEqual([['k0-cp-1', '/var/lib/kupgrade/backup/v1.29.6+k0s.0/k0s-backup/k0s_backup_…']])
    expect(nodeEvents.indexOf(backups[0]!)).toBeLessThan(firstChange)
    // …and copied off that node next to the plan: the archive and its checksum list, indexed.
    // (With each controller's kept files: the binary and unit its restore would put back.)
    const copied = expectBackupsCopied(l, 'k0')
    expect(copied.filter((b) => b.step.endsWith('/backup')).map((b) => [b.cluster, b.node, b.hop, b.version])).toEqual([['k0', 'k0-cp-1', 1, 'v1.29.6+k0s.0']])
    expect(copied.find((b) => b.step.endsWith('/backup')).files.map((f: any) => f.remote)).toEqual([backups[0]!.path])
    expect(copied.filter((b) => b.step.endsWith('/backup-files')).map((b) => b.node).sort()).toEqual(['k0-cp-1', 'k0-cp-2', 'k0-cp-3'])

    expect(rec.nodeUpgradeOrder('k0')).toEqual(['k0-cp-1', 'k0-cp-2', 'k0-cp-3', 'k0-w-1', 'k0-w-2'])
    expect(rec.maxConcurrentDisruptions('k0', 'control-plane')).toBe(1)
    // Every controller is back up before the first worker is touched.
    const lastCpStart = nodeEvents.findLastIndex((e) => e.role === 'control-plane' && e.action === 'service-start')
    const firstWorker = nodeEvents.findIndex((e) => e.role === 'worker')
    expect(lastCpStart).toBeLessThan(firstWorker)

    // No Node writes for the plain controllers (they have none); the one with a worker was cordoned and uncordoned.
    const nodeWrites = (rec.events({ cluster: 'k0', source: 'api', afterSeq: start }) as ApiEvent[]).filter((e) => e.resource === 'nodes' && e.name)
    expect(nodeWrites.filter((e) => e.name === 'k0-cp-1' || e.name === 'k0-cp-2')).toEqual([])
    expect(nodeWrites.filter((e) => e.name === 'k0-cp-3').map((e) => e.unschedulable)).toEqual([true, false])
    expect(rec.maxConcurrentlyCordoned('k0', 'control-plane')).toBe(1)

    // The plan the run followed: no cordon, drain, Ready wait or uncordon steps for the plain controllers.
    const steps = events(r.out).filter((e) => e.type === 'step-done' || e.type === 'step-started').map((e) => String(e.step?.id ?? ''))
    expect(steps.filter((id) => /k0-cp-[12]\/(cordon|drain|wait-ready|uncordon)$/.test(id))).toEqual([])
    expect(steps.some((id) => id.endsWith('k0-cp-3/wait-ready'))).toBe(true)

    // A second apply finds everything done: nothing stops or changes.
    const again = rec.mark()
    const r2 = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(r2.code, r2.err + r2.out.slice(-3000)).toBe(0)
    expect(rec.mutations({ cluster: 'k0', source: 'node', afterSeq: again })).toEqual([])
  }, 400_000)
})
