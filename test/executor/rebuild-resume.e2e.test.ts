import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cliKillable, events, recoverOnFailure, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * A run killed in the middle of an onFailure rebuild (issue 11: crash-safe resume): the node is reset and its Node
 * deleted when the process dies. `kupgrade resume` finishes that rebuild — the steps already done are not run again —
 * and ends the run as the uninterrupted one would have. A later `resume`, after the cause is fixed, upgrades the
 * rebuilt node again (its forward steps were journaled undone by the rebuild) and the run completes.
 * The CLI runs from dist (npm run build first): SIGKILL must hit a real process.
 */
const OLD = 'v1.29.6+k3s1'
const NEW = 'v1.30.4+k3s1'

describe('resume after a kill during a rebuild', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.134', [{ name: 'rz', distribution: 'k3s', controlPlanes: 1, workers: 2 }]))
    await l.editPlan(recoverOnFailure('rebuild', 1))
  }, 60_000)
  afterAll(async () => l?.stop())

  it('finishes the rebuild it was killed in, fails as the run would have, and a later resume upgrades the node again', async () => {
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'rz', node: 'rz-w-1' }
    l.lab.setFault(fault, true)
    const runs = join(l.dir, '.kupgrade', 'runs')
    let dir: string | undefined
    try {
      // Killed right after the Node was deleted: the machine is reset and has not rejoined.
      const first = await cliKillable(l, ['apply', l.plan, '--output', 'json'], (e) => (e.type === 'step-done' && e.step.action === 'delete-node' ? 0 : undefined))
      expect(first.killed, `${first.err}\n${first.out.slice(-3000)}`).toBe(true)
      ;[dir] = readdirSync(runs).filter((d) => existsSync(join(runs, d, 'journal.jsonl')))
      expect(l.lab.status().clusters[0]!.nodes.some((n) => n.name === 'rz-w-1' && n.node), 'killed mid-rebuild: no Node rz-w-1').toBe(false)

      const resumed = await cliKillable(l, ['resume', join(runs, dir!), '--output', 'json'])
      expect(resumed.code, `${resumed.err}\n${resumed.out.slice(-4000)}`).toBe(1)
      const ev = events(resumed.out)
      expect(ev.find((e) => e.type === 'rebuild-started')).toMatchObject({ cluster: 'rz', node: 'rz-w-1' })
      // The reset and the delete are not run again; the rest of the rebuild runs.
      const ran = ev.filter((e) => e.type === 'step-started' && e.step.node === 'rz-w-1').map((e) => e.step.action)
      expect(ran.filter((a) => a !== 'gate')).toEqual(['restore-files', 'replace-binary', 'restart', 'wait-ready', 'uncordon'])
      expect(ev.some((e) => e.type === 'step-started' && e.step.node === 'rz-w-2')).toBe(false)
      expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })
      expect(ev.at(-1).message).toMatch(/rebuilt .*: rz-w-1 Ready again, uncordoned/)
      const nodes = () => Object.fromEntries(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, [n.version, n.ready, n.cordoned]]))
      expect(nodes()).toEqual({ 'rz-cp-1': [NEW, 'True', false], 'rz-w-1': [OLD, 'True', false], 'rz-w-2': [OLD, 'True', false] })

      const journal = readFileSync(join(runs, dir!, 'journal.jsonl'), 'utf8').trim().split('\n').slice(1).map((x) => JSON.parse(x))
      expect(journal.filter((e) => e.step === 'rz/rz-w-1/hop1/rebuild').map((e) => `${e.state}#${e.attempt}`)).toEqual(['started#1', 'started#2', 'done#2'])
      expect(journal.filter((e) => e.step === 'rz/rz/hop1/rz-w-1/rebuild/1-reset-node').map((e) => e.state)).toEqual(['started', 'done'])
      expect(journal.filter((e) => e.step === 'rz/rz/hop1/rz-w-1/replace-binary').map((e) => e.state)).toEqual(['started', 'done', 'undone'])
    } finally {
      l.lab.setFault(fault, false)
    }

    // Fixed: go on. The rebuilt node is upgraded again, then the other worker; the run completes.
    const again = await cliKillable(l, ['resume', join(runs, dir!), '--output', 'json'])
    expect(again.code, `${again.err}\n${again.out.slice(-4000)}`).toBe(0)
    const ev = events(again.out)
    expect(ev.some((e) => e.type === 'step-done' && e.step.id === 'rz/rz/hop1/rz-w-1/replace-binary' && e.changed)).toBe(true)
    // Nothing failed this time, so nothing is rebuilt (or rolled back): onFailure acts on a failure only.
    expect(ev.filter((e) => /^(rebuild|rollback)-/.test(e.type) || e.type === 'step-failed' || /\/rebuild\//.test(e.step?.id ?? ''))).toEqual([])
    expect(Object.fromEntries(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, [n.version, n.ready, n.cordoned]]))).toEqual({
      'rz-cp-1': [NEW, 'True', false], 'rz-w-1': [NEW, 'True', false], 'rz-w-2': [NEW, 'True', false],
    })
  }, 420_000)
})
