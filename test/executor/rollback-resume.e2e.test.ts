import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cliKillable, events, rollbackOnFailure, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * A run killed in the middle of an onFailure rollback (issue 11: crash-safe resume): `kupgrade resume` finishes that
 * rollback — the undos already done run nothing, the rest run — and ends the run as the uninterrupted one would have
 * (failed, the node back at its old version, uncordoned, post-gates passing). It never goes forward on the node the
 * run had decided to take back. The CLI runs from dist (npm run build first): SIGKILL must hit a real process.
 */
const OLD = 'v1.29.6+k3s1'
const NEW = 'v1.30.4+k3s1'

describe('resume after a kill during a rollback', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.120', [{ name: 'rr', distribution: 'k3s', controlPlanes: 1, workers: 2 }]))
    await l.editPlan(rollbackOnFailure(1))
  }, 60_000)
  afterAll(async () => l?.stop())

  it('finishes the rollback it was killed in, goes no further on that node, and fails as the run would have', async () => {
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'rr', node: 'rr-w-1' }
    l.lab.setFault(fault, true)
    try {
      // Killed right after the first undo (the kept binary is back; the node is still cordoned and unchecked).
      const first = await cliKillable(l, ['apply', l.plan, '--output', 'json'], (e) => (e.type === 'undo-done' ? 0 : undefined))
      expect(first.killed, `${first.err}\n${first.out.slice(-3000)}`).toBe(true)
      const runs = join(l.dir, '.kupgrade', 'runs')
      const [dir] = readdirSync(runs).filter((d) => existsSync(join(runs, d, 'journal.jsonl')))
      const node = () => l.lab.status().clusters[0]!.nodes.find((n) => n.name === 'rr-w-1')!
      expect([node().version, node().cordoned], 'killed mid-rollback: old binary, still cordoned').toEqual([OLD, true])

      const resumed = await cliKillable(l, ['resume', join(runs, dir!), '--output', 'json'])
      expect(resumed.code, `${resumed.err}\n${resumed.out.slice(-4000)}`).toBe(1)
      const ev = events(resumed.out)
      // Not one forward step on rr-w-1, and rr-w-2 never touched (maxFailedNodes: 1).
      const forward = ev.filter((e) => e.type === 'step-started' && e.step.node === 'rr-w-1' && e.step.action !== 'gate')
      expect(forward.map((e) => e.step.id)).toEqual([])
      expect(ev.some((e) => e.type === 'step-started' && e.step.node === 'rr-w-2')).toBe(false)
      // The rollback was taken up again: the binary's undo found its effect there and ran nothing; the uncordon ran.
      expect(ev.find((e) => e.type === 'rollback-started')).toMatchObject({ cluster: 'rr', node: 'rr-w-1' })
      expect(ev.filter((e) => e.type === 'undo-done').map((e) => e.step.action)).toEqual(['drain'])
      const rbGates = ev.filter((e) => e.type === 'gate-result' && e.during === 'rollback')
      expect(rbGates.map((e) => e.gate)).toEqual(expect.arrayContaining(['kube-proxy-sync', 'api-vip', 'nodes-ready']))
      const fin = ev.at(-1)
      expect(fin).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })
      expect(fin.message).toMatch(/rolled back: rr-w-1 back at the old version/)

      const nodes = Object.fromEntries(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, [n.version, n.ready, n.cordoned]]))
      expect(nodes).toEqual({ 'rr-cp-1': [NEW, 'True', false], 'rr-w-1': [OLD, 'True', false], 'rr-w-2': [OLD, 'True', false] })

      // The journal: the node's rollback started twice (killed, resumed) and finished once; the failed step was never
      // started again, and the finished rollback marked it taken back (a resume after the fix runs it again).
      const journal = readFileSync(join(runs, dir!, 'journal.jsonl'), 'utf8').trim().split('\n').slice(1).map((x) => JSON.parse(x))
      expect(journal.filter((e) => e.step === 'rr/rr-w-1/hop1/rollback').map((e) => `${e.state}#${e.attempt}`)).toEqual(['started#1', 'started#2', 'done#2'])
      expect(journal.filter((e) => e.step === 'rr/rr/hop1/rr-w-1/wait-ready').map((e) => e.state)).toEqual(['started', 'failed', 'undone'])
      expect(journal.filter((e) => e.step === 'rr/rr/hop1/rr-w-1/replace-binary').map((e) => e.state)).toEqual(['started', 'done', 'undoing', 'undone'])
    } finally {
      l.lab.setFault(fault, false)
    }
  }, 300_000)
})
