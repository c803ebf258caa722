import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiEvent } from '../../src/lab/recorder/types.js'
import { cliKillable, events, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * The API goes away for a while in the middle of a run, as it does when an apiserver restarts behind its load
 * balancer during a control-plane upgrade, a VIP moves to another control-plane node or etcd changes leader: requests
 * answered 503 ServiceUnavailable for some seconds, then the API is back. Nothing on the cluster is wrong, so nothing
 * may be rolled back: a step whose requests went unanswered is verified and tried again until the API answers (within
 * the outage budget, a minute), and a gate that had held and then could not look is not a flap.
 * The outage here is of the core API (`/api/…`: nodes, pods, evictions) and ends on the run's own events, not after a
 * guessed time, so each case fails on the code before however fast this machine is: it lasts until the drain has lost
 * its transport a third time (the old limit), and until a gate has reported that it could not look. The lock's Lease
 * (`/apis/coordination.k8s.io/…`) keeps answering: an outage of the whole API longer than the lease can go unrenewed
 * (10–20 s) costs the lock first, which halts the run to be resumed (lock-lost.e2e) — by design, and not this test.
 * Lab `ao` (k3s, one server, two agents): the outage begins as `ao-w-1` is cordoned. Lab `ag`: at the first check of
 * `ag-w-1`'s after-node nodes-ready that holds.
 */
describe('apply: the API unavailable for seconds mid-run is ridden out, not rolled back', () => {
  let l: ExecLab
  // 503 for the core API; `for` only bounds it should the event that ends it never come.
  const outage = (cluster: string) => ({ fault: 'apiserver-unavailable' as const, cluster, params: { path: '/api/', for: '45s' } })
  beforeAll(async () => {
    const t = topology('127.0.182', [
      { name: 'ao', distribution: 'k3s', controlPlanes: 1, workers: 2 },
      { name: 'ag', distribution: 'k3s', controlPlanes: 1, workers: 1 },
    ])
    const { fault, params } = outage('ao')
    ;(t.spec.clusters[0] as any).faults = [{ fault, params, when: { after: 'node-cordoned', node: 'ao-w-1' } }]
    l = await startExecLab(t)
    await l.editPlan((d) => {
      d.spec.strategy.onFailure = 'rollback'
    })
  }, 60_000)
  afterAll(async () => l?.stop())

  const nodesOf = (cluster: string) =>
    Object.fromEntries(l.lab.status().clusters.find((c) => c.name === cluster)!.nodes.map((n) => [n.name, [n.version, n.ready, n.cordoned]]))

  it('a drain that loses its transport more than three times is tried again until the API answers, and the run finishes', async () => {
    const mark = l.lab.recorder.mark()
    let ended = false
    const r = await cliKillable(l, ['apply', l.plan, '--stage', 'ao', '--output', 'json'], (e) => {
      // The third lost attempt: the code before gave up here and rolled ao-w-1 back.
      if (!ended && e.type === 'step-retrying' && e.step.node === 'ao-w-1' && e.attempt === 4) {
        ended = true
        l.lab.clearFault(outage('ao'))
      }
      return undefined
    })
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)
    expect(ended).toBe(true)
    const ev = events(r.out)
    expect(ev.filter((e) => ['step-failed', 'rollback-started', 'lock-lost'].includes(e.type)).map((e) => e.type)).toEqual([])
    const retries = ev.filter((e) => e.type === 'step-retrying' && e.step.node === 'ao-w-1')
    expect(retries.length, JSON.stringify(retries)).toBeGreaterThanOrEqual(3)
    expect(retries.every((e) => e.step.action === 'drain' && /the server is currently unable to handle the request/.test(e.error))).toBe(true)
    const drained = ev.filter((e) => e.type === 'step-done' && e.step.node === 'ao-w-1' && e.step.action === 'drain')
    expect(drained).toHaveLength(1)
    expect(drained[0].evidence.join('\n')).toMatch(/attempt 3: the transport failed/)
    // The pods on ao-w-1 were evicted once the API answered again (the lab records writes, not the refused reads).
    const evictions = (l.lab.recorder.events({ afterSeq: mark, source: 'api' }) as ApiEvent[]).filter((e) => e.subresource === 'eviction' && e.code === 201)
    expect(evictions.length).toBeGreaterThanOrEqual(1)
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'done', exitCode: 0 })
    expect(nodesOf('ao')).toEqual({ 'ao-cp-1': ['v1.30.4+k3s1', 'True', false], 'ao-w-1': ['v1.30.4+k3s1', 'True', false], 'ao-w-2': ['v1.30.4+k3s1', 'True', false] })
  }, 300_000)

  it('after-node gates that held and then could not look are checked on, not failed as a flap', async () => {
    let phase: 'before' | 'down' | 'back' = 'before'
    // nodes-ready: its first check that holds starts the outage, and its check that cannot look (kubectl get nodes
    // unanswered) ends it.
    const gate = 'nodes-ready'
    const r = await cliKillable(l, ['apply', l.plan, '--stage', 'ag', '--ignore-stage-order', '--output', 'json'], (e) => {
      const afterNode = e.type === 'gate-check' && e.step.node === 'ag-w-1' && /\/after\//.test(e.step.id) && !e.during
      if (phase === 'before' && afterNode && e.gate === gate && e.status === 'pass') {
        phase = 'down'
        l.lab.setFault(outage('ag'), true)
      } else if (phase === 'down' && afterNode && e.gate === gate && e.status === 'unknown') {
        // It held, then could not look: the code before failed it as a flap here, and rolled ag-w-1 back.
        phase = 'back'
        l.lab.clearFault(outage('ag'))
      }
      return undefined
    })
    expect(phase).toBe('back')
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)
    const ev = events(r.out)
    expect(ev.filter((e) => ['step-failed', 'rollback-started', 'lock-lost'].includes(e.type)).map((e) => e.type)).toEqual([])
    // That gate held again afterwards, and says it lost its view.
    const result = ev.find((e) => e.type === 'gate-result' && e.step.node === 'ag-w-1' && e.gate === gate && !e.during)
    expect(result.summary).toMatch(/ \(could not look after it had held: check \d+: /)
    expect(['pass', 'warn']).toContain(result.status)
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'done', exitCode: 0 })
    expect(nodesOf('ag')).toEqual({ 'ag-cp-1': ['v1.30.4+k3s1', 'True', false], 'ag-w-1': ['v1.30.4+k3s1', 'True', false] })
  }, 300_000)
})
