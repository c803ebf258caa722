import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiEvent } from '../../src/lab/recorder/types.js'
import { events, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * Chaos of the transport in the middle of steps (issue 11): an SSH connection cut while a worker's new k3s is being
 * installed, and the API answering 503 to the PATCHes that cordon the next worker. Neither command
 * answered, so neither step failed: each was verified and tried again, and the run ends as an uninterrupted one —
 * every node at the target, Ready, schedulable — with no rollback, and the journal saying what happened.
 */
describe('apply: an SSH drop and an API 503 in the middle of steps', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.135', [{ name: 'tc', distribution: 'k3s', controlPlanes: 1, workers: 2 }]))
    await l.editPlan((d) => {
      d.spec.strategy.onFailure = 'rollback'
    })
  }, 60_000)
  afterAll(async () => l?.stop())

  it('retries the cut steps after verifying them, and finishes as an uninterrupted run', async () => {
    // The install of the new k3s on tc-w-1 (install.sh; no other command pipes into it), cut 20 ms into it.
    l.lab.setFault({ fault: 'ssh-drop', cluster: 'tc', node: 'tc-w-1', params: { command: 'INSTALL_K3S_SKIP_START=true sh -s', afterMs: 20 } }, true)
    // The first two writes to tc-w-2's Node meet a load balancer with no apiserver behind it: its cordon through the
    // kubectl proxy, then kubectl's own, which takes over from a proxy that got no success.
    l.lab.setFault({ fault: 'apiserver-unavailable', cluster: 'tc', params: { method: 'PATCH', path: '/api/v1/nodes/tc-w-2', requests: 2 } }, true)
    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)
    const ev = events(r.out)

    const retries = ev.filter((e) => e.type === 'step-retrying')
    expect(retries.map((e) => [e.step.node, e.step.action, e.attempt])).toEqual([['tc-w-1', 'replace-binary', 2], ['tc-w-2', 'cordon', 2]])
    expect(retries[0].error).toMatch(/^install k3s v1.30.4\+k3s1 with the install script.*: the SSH connection to tc-w-1 \(127\.0\.135\.12:2222\) was lost/)
    expect(retries[1].error).toMatch(/unable to cordon node "tc-w-2": the server is currently unable to handle the request/)
    for (const retry of retries) {
      const done = ev.filter((e) => e.type === 'step-done' && e.step.id === retry.step.id)
      expect(done).toHaveLength(1)
      expect(done[0].changed).toBe(true)
      expect(done[0].evidence.join('\n')).toMatch(/attempt 1: the transport failed/)
    }
    expect(ev.some((e) => e.type === 'step-failed' || e.type === 'rollback-started')).toBe(false)
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'done', exitCode: 0 })

    // The same end as an uninterrupted run.
    const nodes = Object.fromEntries(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, [n.version, n.ready, n.cordoned]]))
    expect(nodes).toEqual({ 'tc-cp-1': ['v1.30.4+k3s1', 'True', false], 'tc-w-1': ['v1.30.4+k3s1', 'True', false], 'tc-w-2': ['v1.30.4+k3s1', 'True', false] })
    // The API refused the first attempt's cordon of tc-w-2 (the proxy's and kubectl's) and took the second attempt's.
    // (events, not mutations: a refused write changed nothing, but it was made)
    const patches = (l.lab.recorder.events({ afterSeq: mark, source: 'api' }) as ApiEvent[]).filter((e) => e.resource === 'nodes' && e.name === 'tc-w-2' && e.verb === 'patch')
    expect(patches.slice(0, 2).map((e) => e.code), JSON.stringify(patches)).toEqual([503, 503])
    expect(patches.slice(2).some((e) => e.code === 200 && e.unschedulable === true)).toBe(true)

    // The journal: each retried step started once, done once, its evidence naming the lost attempt.
    const journal = readFileSync(ev[0].journal, 'utf8').trim().split('\n').map((x) => JSON.parse(x))
    for (const retry of retries) {
      expect(journal.filter((j) => j.step === retry.step.id).map((j) => j.state)).toEqual(['started', 'done'])
    }
  }, 300_000)
})
