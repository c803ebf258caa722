import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KUBECTL } from '../lab/helpers.js'
import { events, recoverOnFailure, startExecLab, topology, type ExecLab } from './helpers.js'

const run = promisify(execFile)

/**
 * onFailure: rebuild of a k0s worker and of a kubeadm worker on the lab, whose reset nodes rejoin only with a token the
 * cluster honours (the lab refuses a start without one, as k0s and the kubelet do): the token is made on the first
 * control-plane node and handed to the node, which comes back as a new Node, Ready, schedulable: kubeadm at its old
 * version, k0s at the controllers' version.
 */
for (const c of [
  // k0s rejoins at the controllers' version (its kube-proxy comes from them); the lab's reset clears the broken state.
  // The first worker, mid-hop: kr-w-2, not upgraded yet, runs the controllers' newer kube-proxy, which k0s's skew rule
  // allows only as the hop's own passing state, so the post-gates after the rebuild warn about it rather than fail.
  { dist: 'k0s' as const, net: '127.0.132', name: 'kr', failing: 'kr-w-1', other: ['kr-w-2', 'v1.29.6+k0s'], back: ['v1.30.4+k0s', 'v1.30.4+k0s.0'], steps: ['reset-node', 'delete-node', 'restore-files', 'replace-binary', 'join-node', 'wait-ready', 'uncordon'] },
  { dist: 'kubeadm' as const, net: '127.0.133', name: 'ka', failing: 'ka-w-1', other: ['ka-w-2', 'v1.29.6'], back: ['v1.29.6', 'v1.29.6'], steps: ['reset-node', 'delete-node', 'unhold-packages', 'downgrade-packages', 'hold-packages', 'join-node', 'wait-ready', 'uncordon'] },
]) {
  describe(`apply: onFailure rebuild of a ${c.dist} worker`, () => {
    let l: ExecLab
    const failing = c.failing
    const kubectl = (...args: string[]) => run(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', c.name, ...args]).then((r) => r.stdout)
    beforeAll(async () => {
      l = await startExecLab(topology(c.net, [{ name: c.name, distribution: c.dist, controlPlanes: 1, workers: 2 }]))
      await l.editPlan(recoverOnFailure('rebuild', 1))
    }, 60_000)
    afterAll(async () => l?.stop())

    it('is reset, rejoined with a fresh token as a new Node, and the post-gates pass again', async () => {
      const uidBefore = (await kubectl('get', 'node', failing, '-o', 'jsonpath={.metadata.uid}')).trim()
      const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: c.name, node: failing }
      l.lab.setFault(fault, true)
      const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
      expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
      const ev = events(r.out)
      const started = ev.findIndex((e) => e.type === 'rebuild-started')
      expect(ev[started]).toMatchObject({ cluster: c.name, node: failing })
      const done = ev.slice(started).filter((e) => e.type === 'step-done' && /\/rebuild\//.test(e.step.id)).map((e) => e.step.action)
      expect(done, JSON.stringify(ev.slice(started).filter((e) => /failed/.test(e.type)))).toEqual(c.steps)
      const join = ev.find((e) => e.type === 'step-done' && e.step.action === 'join-node')
      expect(join.evidence.join('\n')).toMatch(/\(on the first control plane node\)/)
      // The token never shows: not in any event.
      expect(r.out).not.toMatch(/--token [a-z0-9]{6}\.[a-z0-9]{16}/)
      const gates = ev.filter((e) => e.type === 'gate-result' && e.during === 'rollback')
      expect(gates.every((e) => e.status === 'pass' || e.status === 'warn'), JSON.stringify(gates.map((e) => [e.gate, e.status, e.summary]))).toBe(true)
      if (c.dist === 'k0s') {
        expect(gates.find((e) => e.gate === 'version-skew')).toMatchObject({ status: 'warn', summary: expect.stringMatching(new RegExp(`on ${c.other[0]} is not the minor of kubelet v1\\.29\\.6\\+k0s.* until the hop to v1\\.30\\.4\\+k0s reaches it`)) })
      }
      expect(ev.some((e) => e.type === 'rebuild-done')).toBe(true)
      expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })

      const uidAfter = (await kubectl('get', 'node', failing, '-o', 'jsonpath={.metadata.uid}')).trim()
      expect(uidAfter).not.toBe('')
      expect(uidAfter).not.toBe(uidBefore)
      const nodes = Object.fromEntries(l.lab.status().clusters[0]!.nodes.filter((n) => n.node).map((n) => [n.name, [n.version, n.ready, n.cordoned]]))
      expect(nodes[failing]).toEqual([c.back[0], 'True', false])
      expect(nodes[c.other[0]!]).toEqual([c.other[1], 'True', false])
      const st = l.lab.clusters.get(c.name)!.nodes.get(failing)!.getState()
      expect([st.installedVersion, st.serviceActive]).toEqual([c.back[1], true])
    }, 300_000)
  })
}
