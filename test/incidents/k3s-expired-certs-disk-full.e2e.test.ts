import { dirname } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { events } from '../executor/helpers.js'
import { detectedWithinOneInterval, expectHealthyEnd, fired, journalOf, labNodes, NEW, OLD, startReplay, type Replay } from './helpers.js'

/**
 * Replay of ../shared/incidents/k3s-expired-certs-disk-full.txt: a k3s cluster whose certificates had expired and
 * whose disks filled with the errors that followed; restarting services did nothing until the disk was freed. Two
 * moments: the certificates expired before the run (the certificates pre-gate blocks it, exit 3, nothing changed), and
 * a worker's disk fills in the middle of the run, after the first worker was upgraded: the second worker's
 * before-node disk-space gate stops it before anything on it changed. The policy here is pause — a node that never
 * changed has nothing to roll back, and a rollback's post-gates could not pass on a full disk anyway — so the run stops
 * (exit 4) naming the node, the evidence and the way on; the operator frees the disk, as the post-mortem had to
 * first, and `kupgrade resume` finishes the upgrade.
 */
describe('incident replay: k3s expired certificates, then a full disk mid-run', () => {
  let r: Replay
  beforeAll(async () => {
    r = await startReplay('127.0.107', { name: 'cd', distribution: 'k3s', controlPlanes: 1, workers: 2 }, [
      { fault: 'disk-full', node: 'cd-w-2', when: { after: 'node-upgraded', node: 'cd-w-1' } },
    ])
    await r.editPlan((d) => {
      d.spec.strategy.onFailure = 'pause'
    })
  }, 60_000)
  afterAll(async () => r?.stop())

  it('expired certificates: the run stops before any change (exit 3), naming the expired certificate', async () => {
    // As in the post-mortem, nothing can talk to an API server whose certificate expired: kupgrade cannot even read
    // the facts, and says why instead of acting blind.
    r.lab.setFault({ fault: 'cert-expired', cluster: 'cd' }, true)
    const mark = r.lab.recorder.mark()
    try {
      const { code, out, err, ev } = await r.apply()
      expect(code, err + out.slice(-4000)).toBe(3)
      expect(err).toMatch(/blocked before any change/)
      expect(err).toMatch(/x509: certificate has expired/)
      expect(ev.some((e) => e.type === 'step-started')).toBe(false)
      expect(r.lab.recorder.mutations({ afterSeq: mark })).toEqual([])
    } finally {
      r.lab.clearFault({ fault: 'cert-expired', cluster: 'cd' })
    }
  }, 300_000)

  it('certificates about to expire: the certificates pre-gate blocks the run from its first check (exit 3, nothing changed)', async () => {
    r.lab.setFault({ fault: 'cert-expiring', cluster: 'cd' }, true)
    const firedAt = fired(r, 'cert-expiring')
    const mark = r.lab.recorder.mark()
    try {
      const { code, out, err, ev } = await r.apply()
      expect(code, err + out.slice(-4000)).toBe(3)
      const d = detectedWithinOneInterval(ev, 'certificates', undefined, firedAt)
      expect(d.firstFailing.attempt).toBe(1)
      // Each file's line says its certificate and date; its source, the node and the file (not said twice).
      expect(d.result.evidence).toContainEqual(expect.stringMatching(/^node cd-cp-1: \/var\/lib\/rancher\/k3s\/server\/tls\/serving-kube-apiserver\.crt: \(CN=kube-apiserver\): notAfter \S+Z \(9d23h\d+m\d+s left\)$/))
      const fin = ev.at(-1)
      expect(fin).toMatchObject({ type: 'run-finished', outcome: 'blocked', exitCode: 3 })
      expect(fin.message).toMatch(/certificates.*nothing was changed/s)
      // Nothing changed: no node step started, no write reached a node or the API (the run lock aside).
      expect(ev.some((e) => e.type === 'step-started' && e.step.node !== undefined)).toBe(false)
      // (the gates' probe pods are created and always deleted: reads, not changes)
      const writes = r.lab.recorder.mutations({ afterSeq: mark }).filter((e: any) => !(e.source === 'api' && (e.resource === 'leases' || (e.resource === 'pods' && (e.verb === 'create' || String(e.name).startsWith('kupgrade-probe-'))))))
      expect(writes).toEqual([])
      expect(Object.values(labNodes(r)).map((n) => [n.version, n.cordoned])).toEqual([[OLD, false], [OLD, false], [OLD, false]])
    } finally {
      r.lab.clearFault({ fault: 'cert-expiring', cluster: 'cd' })
    }
  }, 300_000)

  it('a disk fills mid-run: disk-space stops the next worker before it changes (pause, exit 4); freed, resume finishes', async () => {
    const { code, out, err, ev } = await r.apply()
    expect(code, err + out.slice(-4000)).toBe(4)
    const firedAt = fired(r, 'disk-full', 'cd-w-2')
    const d = detectedWithinOneInterval(ev, 'disk-space', 'cd-w-2', firedAt)
    expect(d.firstFailing.attempt).toBe(1)
    expect(d.result.evidence.join('\n')).toMatch(/node cd-w-2: df/)
    expect(d.result.summary).toMatch(/cd-w-2/)

    // The first worker finished; the second was stopped before its cordon: no step of it that changes anything ran.
    expect(ev.some((e) => e.type === 'node-done' && e.node === 'cd-w-1')).toBe(true)
    expect(ev.filter((e) => e.type === 'step-started' && e.step.node === 'cd-w-2' && e.step.mutates)).toEqual([])
    expect(ev.find((e) => e.type === 'node-failed')).toMatchObject({ node: 'cd-w-2', cordoned: false })
    const fin = ev.at(-1)
    expect(fin).toMatchObject({ type: 'run-finished', outcome: 'paused', exitCode: 4 })
    expect(fin.message).toMatch(/gate disk-space failed/)
    expect(fin.message).toMatch(/kupgrade resume \S+/)
    expect(fin.message).toMatch(/kupgrade rollback \S+ --cluster cd/)
    expect(journalOf(fin).filter((e) => e.step.startsWith('cd/cd/hop1/cd-w-2/') && e.state === 'done')).toEqual([])
    expect(Object.fromEntries(Object.entries(labNodes(r)).map(([n, s]) => [n, [s.version, s.cordoned]])))
      .toEqual({ 'cd-cp-1': [NEW, false], 'cd-w-1': [NEW, false], 'cd-w-2': [OLD, false] })

    // The operator frees the disk (the post-mortem's lesson: that first); resume finishes the upgrade.
    r.lab.clearFault({ fault: 'disk-full', cluster: 'cd', node: 'cd-w-2' })
    const res = await r.cli(['resume', dirname(fin.journal), '--output', 'json'])
    expect(res.code, res.err + res.out.slice(-3000)).toBe(0)
    expect(events(res.out).some((e) => e.type === 'node-done' && e.node === 'cd-w-2')).toBe(true)
    await expectHealthyEnd(r, { 'cd-cp-1': NEW, 'cd-w-1': NEW, 'cd-w-2': NEW })
  }, 400_000)
})
