import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { detectedWithinOneInterval, expectHealthyEnd, labNodes, OLD, startReplay, type Replay } from './helpers.js'

/**
 * Replay of ../shared/incidents/single-master-spof.txt: a cluster with one master went dark when that master did.
 * Upgrading such a cluster takes its only API server down; with `control-plane-ha: { policy: block }` the plan says
 * that is not acceptable, so the pre-gate must stop the run before anything changes (exit 3) and say why, and the
 * cluster must be exactly as it was.
 */
describe('incident replay: single master (control-plane-ha with policy block)', () => {
  let r: Replay
  beforeAll(async () => {
    r = await startReplay('127.0.108', { name: 'spof', distribution: 'k3s', controlPlanes: 1, workers: 2 }, [])
    await r.editPlan((d) => {
      d.spec.gates = { ...d.spec.gates, pre: [{ 'control-plane-ha': { policy: 'block' } }] }
    })
  }, 60_000)
  afterAll(async () => r?.stop())

  it('control-plane-ha blocks the run before any change (exit 3), naming the single control-plane node', async () => {
    const mark = r.lab.recorder.mark()
    const t0 = Date.now()
    const { code, out, err, ev } = await r.apply()
    expect(code, err + out.slice(-4000)).toBe(3)
    // The condition was there before the run: the gate's first check sees it (a pre-gate confirms a failure before it blocks).
    const d = detectedWithinOneInterval(ev, 'control-plane-ha', undefined, t0)
    expect(d.firstFailing.attempt).toBe(1)
    expect(d.result.summary).toMatch(/1 control-plane node/)
    expect(d.result.evidence.join('\n')).toMatch(/spof-cp-1/)
    const fin = ev.at(-1)
    expect(fin).toMatchObject({ type: 'run-finished', outcome: 'blocked', exitCode: 3 })
    expect(fin.message).toMatch(/control-plane-ha.*nothing was changed/s)
    expect(ev.some((e) => e.type === 'step-started' && e.step.node !== undefined)).toBe(false)
    // Nothing changed: no node command, no API write but the run lock and the gates' probe pods (always deleted).
    const writes = r.lab.recorder.mutations({ afterSeq: mark }).filter((e: any) => !(e.source === 'api' && (e.resource === 'leases' || (e.resource === 'pods' && (e.verb === 'create' || String(e.name).startsWith('kupgrade-probe-'))))))
    expect(writes).toEqual([])
    expect(Object.values(labNodes(r)).map((n) => n.version)).toEqual([OLD, OLD, OLD])
    expect(r.lab.status().clusters[0]!.faults).toEqual([])
    await expectHealthyEnd(r, { 'spof-cp-1': OLD, 'spof-w-1': OLD, 'spof-w-2': OLD })
  }, 300_000)

  it('with policy warn (the default) the same gate only warns', async () => {
    await r.editPlan((d) => {
      d.spec.gates = { ...d.spec.gates, pre: [] }
    })
    const chk = await r.cli(['check', r.plan, '--format', 'json', '--gate', 'control-plane-ha'])
    const res = JSON.parse(chk.out).clusters[0].results
    expect(chk.code).toBe(0)
    expect(res.map((x: any) => [x.gate, x.status])).toEqual([['control-plane-ha', 'warn']])
  }, 120_000)
})
