import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { events, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * A batch of three kubeadm workers upgraded side by side (a fourth after them), two of them rebooting for their OS
 * updates: while a node reboots its kubelet is down and the pods on it (kube-proxy's) are not Ready. The after-node
 * gates of a node that is done judge the cluster (system-pods, as kOps validates after each instance), but not what
 * runs on the other nodes of its batch still under way: those nodes' own after-node gates judge them. Before, a node
 * whose system-pods check had passed once then saw its peer's kube-proxy pod go not Ready: a flap, failed at once, and
 * a healthy node rolled back.
 */
describe('apply: after-node gates beside the other nodes of a batch, rebooting', () => {
  let l: ExecLab
  beforeAll(async () => {
    // A fourth worker, in the batch after: the pods the batch of three evicts need a node to go to (the control
    // plane is tainted), or the capacity pre-gate stops the run before it starts.
    const t = topology('127.0.181', [{ name: 'pb', distribution: 'kubeadm', version: 'v1.29.6', controlPlanes: 1, workers: 4 }], ['v1.29.6', 'v1.29.8'])
    // openssl and curl only: upgraded without a reboot.
    for (const n of ['pb-w-1', 'pb-w-4']) t.spec.clusters[0]!.nodes.find((x) => x.name === n)!.osUpdates = ['openssl', 'curl']
    t.spec.timing = { ...t.spec.timing, reboot: '6s' }
    l = await startExecLab(t)
    await l.editPlan((d) => {
      d.spec.target = { os: { packages: 'all', reboot: 'if-required' } }
      d.spec.strategy.workers = { maxUnavailable: 3, canary: 0 }
      d.spec.gates.wait = { interval: '1s', stableFor: 3, timeout: '1m' }
      const reason = 'pod probes, not what this test is about (the batch peers); proven in rollback.e2e and test/incidents'
      d.spec.gates.skip = ['api-vip', 'dns'].map((gate) => ({ gate, reason }))
    })
    // A cluster that has run for a while: its pods are past the minute in which not Ready is only "still starting".
    for (const p of l.lab.clusters.get('pb')!.model.pods.values()) p.startedAt = p.createdAt = new Date(Date.now() - 600_000)
  }, 90_000)
  afterAll(async () => l?.stop())

  it('every node of the batch passes its after-node gates; the pods on its peers under way are left to their own', async () => {
    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    const ev = events(r.out)
    expect(r.code, `${ev.at(-1)?.message}\n${r.err}`).toBe(0)
    expect(ev.some((e) => e.type === 'rollback-started')).toBe(false)
    const rebooted = ev.filter((e) => e.type === 'step-done' && e.step.action === 'reboot' && e.changed).map((e) => e.step.node).sort()
    expect(rebooted).toEqual(['pb-cp-1', 'pb-w-2', 'pb-w-3'])
    // Each worker's after-node system-pods passed; the first done was judged beside the two others still under way:
    // the pods on them were left out, and it says so.
    const workers = ['pb-w-1', 'pb-w-2', 'pb-w-3']
    const after = ev.filter((e) => e.type === 'gate-result' && e.gate === 'system-pods' && workers.includes(e.step.node))
    expect(after.map((e) => [e.step.node, e.status]).sort()).toEqual(workers.map((w) => [w, 'pass']))
    const first = after[0]
    const others = workers.filter((w) => w !== first.step.node).join(', ')
    expect(first.evidence.at(-1)).toMatch(new RegExp(`^kubectl get pods \\(nodes ${others}\\): \\d+ pods on ${others} not judged here: under way in the same batch`))
    // The gates after the batch judge every node again.
    const post = ev.filter((e) => e.type === 'gate-result' && e.gate === 'system-pods' && !e.step.node).at(-1)
    expect(post).toMatchObject({ status: 'pass' })
    expect(post.evidence.join('\n')).not.toContain('not judged here')
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.ready, n.cordoned])).toEqual([
      ['pb-cp-1', 'True', false], ['pb-w-1', 'True', false], ['pb-w-2', 'True', false], ['pb-w-3', 'True', false], ['pb-w-4', 'True', false],
    ])
  }, 300_000)
})
