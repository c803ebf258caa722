import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { events, rollbackOnFailure, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * Most fleets are reached as an unprivileged user with sudo (the k3s homelab example: `ssh: { user: pi, sudo: true }`),
 * not as root. Every command that needs root must go through `sudo -n`, and every read that needs it too (the lab's
 * stand-ins refuse what an unprivileged user cannot do, as the real tools do). One apply and its rollback of a k3s cluster on SQLite (the homelab's: its database copied with k3s stopped and
 * put back) and a kubeadm cluster (packages, etcd snapshot and restore), as `ops`.
 */
const NET = '127.0.170'

describe('apply and rollback as an unprivileged user with sudo', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology(NET, [
      // The homelab's own: one k3s server on SQLite (its backup stops and starts k3s, through sudo).
      { name: 'su', distribution: 'k3s', datastore: 'sqlite', controlPlanes: 1, workers: 2 },
      { name: 'sk', distribution: 'kubeadm', controlPlanes: 1, workers: 2 },
    ]), { nodeUsers: [{ name: 'ops', sudo: true }] })
    await l.editPlan((d) => {
      for (const c of d.spec.clusters) Object.assign(c.ssh, { user: 'ops', sudo: true })
      rollbackOnFailure()(d)
      // The pod probes (seconds per node) go through the API, not SSH: not what this test is about.
      const reason = 'pod probes, not what this test proves (commands as a user with sudo); proven in rollback.e2e and test/incidents'
      d.spec.gates.skip = ['api-vip', 'dns'].map((gate) => ({ gate, reason }))
    })
  }, 90_000)
  afterAll(async () => l?.stop())
  const nodes = () => l.lab.status().clusters.flatMap((c) => c.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned]))

  it('upgrades every node, every change made by ops (through sudo: the stand-ins refuse an unprivileged user)', async () => {
    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-6000)).toBe(0)
    expect(nodes()).toEqual([
      ...['su-cp-1', 'su-w-1', 'su-w-2'].map((n) => [n, 'v1.30.4+k3s1', 'True', false]),
      ...['sk-cp-1', 'sk-w-1', 'sk-w-2'].map((n) => [n, 'v1.30.4', 'True', false]),
    ])
    const changes = l.lab.recorder.mutations({ afterSeq: mark, source: 'node' })
    expect(changes.length).toBeGreaterThan(10)
    expect([...new Set(changes.map((e) => e.client.split(' ')[0]))]).toEqual(['ssh:ops'])
    runId = events(r.out).at(-1).runId
  }, 300_000)

  let runId = ''
  it('rolls the run back', async () => {
    const r = await l.cli(['rollback', runId, '--yes', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-6000)).toBe(0)
    expect(nodes()).toEqual([
      ...['su-cp-1', 'su-w-1', 'su-w-2'].map((n) => [n, 'v1.29.6+k3s1', 'True', false]),
      ...['sk-cp-1', 'sk-w-1', 'sk-w-2'].map((n) => [n, 'v1.29.6', 'True', false]),
    ])
  }, 300_000)
})
