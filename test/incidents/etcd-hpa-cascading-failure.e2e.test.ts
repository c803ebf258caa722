import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { detectedWithinOneInterval, expectHealthyEnd, fired, labNodes, OLD, startReplay, type Replay } from './helpers.js'

/**
 * Replay of ../shared/incidents/etcd-hpa-cascading-failure.txt: etcd's commit latency climbed, the API server went
 * silent, pods piled up Pending ("0/100 nodes are available: Insufficient cpu") and the cluster spiralled. An upgrade
 * started into that state drains nodes onto a cluster that cannot absorb them and restarts control planes on a
 * failing etcd. Each symptom must stop the run before any change, at the gate made for it, from its first check:
 * etcd unhealthy (etcd), then no room for a drained node's pods (capacity).
 */
describe('incident replay: etcd / HPA cascading failure', () => {
  let r: Replay
  beforeAll(async () => {
    r = await startReplay('127.0.109', { name: 'hpa', distribution: 'k3s', controlPlanes: 1, workers: 2 }, [])
  }, 60_000)
  afterAll(async () => r?.stop())

  const nothingChanged = (mark: number) => {
    const writes = r.lab.recorder.mutations({ afterSeq: mark }).filter((e: any) => !(e.source === 'api' && (e.resource === 'leases' || (e.resource === 'pods' && (e.verb === 'create' || String(e.name).startsWith('kupgrade-probe-'))))))
    expect(writes).toEqual([])
    expect(Object.values(labNodes(r)).map((n) => [n.version, n.cordoned])).toEqual([[OLD, false], [OLD, false], [OLD, false]])
  }

  it('etcd unhealthy: the etcd pre-gate blocks the run (exit 3) with the member health as evidence', async () => {
    r.lab.setFault({ fault: 'etcd-unhealthy', cluster: 'hpa' }, true)
    const firedAt = fired(r, 'etcd-unhealthy')
    const mark = r.lab.recorder.mark()
    try {
      const { code, out, err, ev } = await r.apply()
      expect(code, err + out.slice(-4000)).toBe(3)
      const d = detectedWithinOneInterval(ev, 'etcd', undefined, firedAt)
      expect(d.firstFailing.attempt).toBe(1)
      expect(d.result.evidence.join('\n')).toMatch(/etcd/)
      expect(d.result.evidence.join('\n')).toMatch(/unhealthy|failed|\[-\]etcd/i)
      expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'blocked', exitCode: 3 })
      expect(ev.some((e) => e.type === 'step-started' && e.step.node !== undefined)).toBe(false)
      nothingChanged(mark)
    } finally {
      r.lab.clearFault({ fault: 'etcd-unhealthy', cluster: 'hpa' })
    }
  }, 300_000)

  it('no capacity left: the capacity pre-gate blocks the run (exit 3): a drained node\'s pods would stay Pending', async () => {
    r.lab.setFault({ fault: 'insufficient-capacity', cluster: 'hpa' }, true)
    const firedAt = fired(r, 'insufficient-capacity')
    const mark = r.lab.recorder.mark()
    try {
      const { code, out, err, ev } = await r.apply()
      expect(code, err + out.slice(-4000)).toBe(3)
      const d = detectedWithinOneInterval(ev, 'capacity', undefined, firedAt)
      expect(d.firstFailing.attempt).toBe(1)
      expect(d.result.summary).toMatch(/hpa-w-|fit|capacity|request/i)
      expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'blocked', exitCode: 3 })
      expect(ev.find((e) => e.type === 'cluster-failed').error).toMatch(/gate capacity failed/)
      // The probe pods of api-vip and dns cannot be scheduled either: each says so after its first check, and once
      // capacity has blocked, the run does not wait out their re-checks.
      for (const gate of ['api-vip', 'dns']) {
        const res = ev.find((e) => e.type === 'gate-result' && e.gate === gate)
        expect(res, gate).toMatchObject({ status: 'unknown' })
        expect(res.summary, gate).toMatch(/probe pod could not be scheduled for 15s: 0\/3 nodes are available: .*Insufficient cpu.*\(not re-checked: gate capacity blocked this point first\)$/)
      }
      // Nothing changed yet, so every pre-gate answered, those after capacity too (while api-vip and dns still waited
      // on their probe pods, a blocked point started no more gates: what the report held depended on which failed first).
      const planned = JSON.parse((await r.cli(['plan', r.plan, '--format', 'json'])).out).steps.filter((s: any) => s.phase === 'preflight' && s.action === 'gate').map((s: any) => s.params.gate)
      expect(planned).toContain('removed-apis')
      expect(ev.filter((e) => e.type === 'gate-result').map((e) => e.gate).sort()).toEqual([...planned].sort())
      nothingChanged(mark)
    } finally {
      r.lab.clearFault({ fault: 'insufficient-capacity', cluster: 'hpa' })
    }
    await expectHealthyEnd(r, { 'hpa-cp-1': OLD, 'hpa-w-1': OLD, 'hpa-w-2': OLD })
  }, 600_000)
})
