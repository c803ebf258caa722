import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { detectedWithinOneInterval, expectHealthyEnd, fired, journalOf, NEW, OLD, startReplay, type Replay } from './helpers.js'

/**
 * Replay of ../shared/incidents/kubelet-kube-proxy-skew.txt: mid-upgrade, kube-proxy on an upgraded node starts
 * failing iptables-restore ("Sync failed") while every pod looks healthy; the team saw it only hours later. Here the
 * fault fires the moment the first worker comes up at the new version; the after-node kube-proxy-sync gate must see
 * it at its first check, the node is rolled back (onFailure: rollback), and — because the incident's own rollback is
 * what left kube-proxy failing — the post-gates, kube-proxy-sync first, run again after the rollback. The failure
 * ends as the incident's did: a fresh kube-proxy (the rollback's restart) rebuilds its rules (`untilRestart`).
 */
describe('incident replay: kubelet / kube-proxy skew (kube-proxy stops syncing after a node upgrade)', () => {
  let r: Replay
  beforeAll(async () => {
    r = await startReplay('127.0.105', { name: 'kp', distribution: 'k3s', controlPlanes: 1, workers: 2 }, [
      { fault: 'kube-proxy-sync-failure', node: 'kp-w-1', params: { untilRestart: true, intervalMs: 500 }, when: { after: 'node-upgraded', node: 'kp-w-1' } },
    ])
    await r.editPlan((d) => {
      d.spec.strategy.onFailure = 'rollback'
      d.spec.strategy.maxFailedNodes = 1
    })
  }, 60_000)
  afterAll(async () => r?.stop())

  it('kube-proxy-sync catches the failing node at its first check; the node is rolled back and the data plane proven again', async () => {
    const { code, out, err, ev } = await r.apply()
    expect(code, err + out.slice(-4000)).toBe(1)
    const firedAt = fired(r, 'kube-proxy-sync-failure', 'kp-w-1')

    // The right gate, on the right node, with the incident's evidence, at the first check that could see it.
    const d = detectedWithinOneInterval(ev, 'kube-proxy-sync', 'kp-w-1', firedAt)
    expect(d.result.evidence.join('\n')).toMatch(/Sync failed|iptables-restore/)
    expect(d.result.summary).toMatch(/kp-w-1/)
    const failed = ev.find((e) => e.type === 'step-failed' && e.step.node === 'kp-w-1')
    expect(failed.step.id).toBe(d.result.step.id)

    // Policy rollback: the node's binary back, restarted, Ready at the old version, uncordoned, post-gates again.
    const rbStart = ev.findIndex((e) => e.type === 'rollback-started')
    expect(ev[rbStart]).toMatchObject({ cluster: 'kp', node: 'kp-w-1', path: 'previous-version' })
    expect(ev.filter((e) => e.type === 'undo-done').map((e) => e.step.action)).toEqual(['replace-binary', 'drain'])
    const after = ev.slice(rbStart).filter((e) => e.type === 'gate-result' && e.during === 'rollback')
    expect(after.map((e) => e.gate)).toEqual(expect.arrayContaining(['kube-proxy-sync', 'api-vip', 'nodes-ready']))
    expect(after.filter((e) => e.status !== 'pass' && e.status !== 'warn')).toEqual([])
    expect(ev.some((e) => e.type === 'rollback-done' && e.node === 'kp-w-1')).toBe(true)
    const fin = ev.at(-1)
    expect(fin).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })
    expect(fin.message).toMatch(/kube-proxy-sync/)
    expect(fin.message).toMatch(/rolled back: kp-w-1 back at the old version/)
    // The breaker: the second worker was never touched.
    expect(ev.some((e) => e.type === 'node-started' && e.node === 'kp-w-2')).toBe(false)
    expect(journalOf(fin).filter((e) => e.step === 'kp/kp/hop1/kp-w-1/replace-binary').map((e) => e.state)).toEqual(['started', 'done', 'undoing', 'undone'])

    // The end state: every node Ready and uncordoned, the control plane at the target, both workers at the old
    // version (within skew), kube-proxy syncing everywhere and the VIP reachable.
    await expectHealthyEnd(r, { 'kp-cp-1': NEW, 'kp-w-1': OLD, 'kp-w-2': OLD })
    expect(r.lab.status().clusters[0]!.faults).toEqual([])
  }, 400_000)
})
