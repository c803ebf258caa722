import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiEvent } from '../../src/lab/recorder/types.js'
import { events, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * A plan whose worker batch is every worker of a kubeadm cluster (maxUnavailable 2 of 2): the control-plane node is
 * tainted, so the pods the batch's drains evict have nowhere to go. With PodDisruptionBudgets over them, each drain
 * evicts one replica and waits on the other until its timeout, and the run rolls back what it began (on the demo lab:
 * two minutes of drains, then both workers rolled back). The capacity pre-gate judges the sets of nodes the plan drains
 * together, and each pod against the taints it tolerates (CoreDNS may go to the control plane, the workloads may not):
 * `check` and `apply` stop before any change, naming the batch; one worker at a time passes.
 */
describe('capacity: a batch of every worker beside a tainted control plane is stopped before it starts', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.183', [{ name: 'cb', distribution: 'kubeadm', controlPlanes: 1, workers: 2 }]))
    await l.editPlan((d) => {
      d.spec.strategy.workers = { maxUnavailable: 2, canary: 0 }
    })
  }, 60_000)
  afterAll(async () => l?.stop())

  it('check and apply fail the capacity pre-gate, naming the batch and the pods with no room; nothing is changed', async () => {
    // Where the lab's scheduler put them (the least loaded node): the web pods and CoreDNS on the workers.
    const placed = [...l.lab.clusters.get('cb')!.model.pods.values()].filter((p) => p.app === 'web' || p.kind === 'coredns').map((p) => p.nodeName)
    expect(placed).toHaveLength(3)
    expect(placed.filter((n) => n?.startsWith('cb-w-'))).toHaveLength(3)
    const check = await l.cli(['check', l.plan, '--format', 'json'])
    expect(check.code, check.err).toBe(3)
    const capacity = JSON.parse(check.out).clusters[0].results.find((x: any) => x.gate === 'capacity')
    expect(capacity.status).toBe('fail')
    expect(capacity.summary).toMatch(/^draining cb-w-1 \+ cb-w-2: what 2 of its 3 pods request does not fit elsewhere$/)
    const failed = capacity.evidence.find((e: any) => /no node with room/.test(e.observed))
    // The two web pods have no room; CoreDNS (on a worker, 3 pods in all) tolerates the control plane's taint.
    expect(failed.observed).toMatch(/^3 pods requesting .*; free on 1 other schedulable node\(s\) they tolerate: .*; no node with room for 2 of them: default\/web-\S+ \(100m \/ 128\.0 MiB\), default\/web-\S+ \(100m \/ 128\.0 MiB\)$/)
    // The control-plane node is drained alone: its pods (CoreDNS, if there) have the workers.
    expect(capacity.evidence.some((e: any) => e.source.endsWith('draining cb-cp-1') && e.status === 'pass')).toBe(true)

    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(3)
    const ev = events(r.out)
    expect(ev.find((e) => e.type === 'gate-result' && e.gate === 'capacity')).toMatchObject({ status: 'fail', summary: expect.stringMatching(/^draining cb-w-1 \+ cb-w-2: /) })
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'blocked', exitCode: 3 })
    // Nothing cordoned, drained or upgraded: the lab saw no write but the lock's and the probe pods'.
    expect((l.lab.recorder.mutations({ afterSeq: mark, source: 'api' }) as ApiEvent[]).filter((m) => m.resource === 'nodes' || m.subresource === 'eviction').map((m) => m.path)).toEqual([])
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.cordoned])).toEqual([['cb-cp-1', 'v1.29.6', false], ['cb-w-1', 'v1.29.6', false], ['cb-w-2', 'v1.29.6', false]])
  }, 300_000)

  it('one worker at a time: the other has room, and capacity passes for each set the plan drains', async () => {
    await l.editPlan((d) => {
      d.spec.strategy.workers = { maxUnavailable: 1, canary: 0 }
    })
    const check = await l.cli(['check', l.plan, '--format', 'json', '--gate', 'capacity'])
    const capacity = JSON.parse(check.out).clusters[0].results.find((x: any) => x.gate === 'capacity')
    expect(capacity, check.err + check.out).toMatchObject({ status: 'pass', summary: 'every drain the plan makes (3 sets of nodes, up to 1 at once) fits on the other nodes' })
  }, 120_000)
})
