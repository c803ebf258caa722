import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiEvent } from '../../src/lab/recorder/types.js'
import { KUBECTL } from '../lab/helpers.js'
import { events, recoverOnFailure, startExecLab, topology, type ExecLab } from './helpers.js'

const run = promisify(execFile)

/**
 * onFailure: rebuild on the lab (brief §5, issue 11 item 3): a k3s agent whose new version never comes up Ready is
 * reset with its own uninstall script, its Node deleted, the old version reinstalled with the agent's kept K3S_URL and
 * K3S_TOKEN, and it rejoins as a new Node: Ready at the old version, schedulable, the post-gates passing again. The
 * run fails (exit 1: a node failed) and the next worker is never touched (maxFailedNodes: 1).
 */
describe('apply: onFailure rebuild of a k3s agent', () => {
  let l: ExecLab
  const kubectl = (...args: string[]) => run(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'rb', ...args]).then((r) => r.stdout)
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.131', [{ name: 'rb', distribution: 'k3s', controlPlanes: 1, workers: 2 }]))
    await l.editPlan(recoverOnFailure('rebuild', 1))
  }, 60_000)
  afterAll(async () => l?.stop())

  it('plan shows the rebuild of each agent and that a server is not rebuilt automatically', async () => {
    const r = await l.cli(['plan', l.plan])
    expect(r.code, r.err).toBe(0)
    expect(r.out).toMatch(/rebuild on failure \(hop 1\) of rb-w-1, rb-w-2: k3s-agent-uninstall\.sh, kubectl delete node/)
    expect(r.out).toMatch(/2\. kubectl delete node rb-w-1 --ignore-not-found --wait=true/)
    expect(r.out).toMatch(/rebuild on failure \(hop 1\) of rb-cp-1: not automatic for a k3s server/)
  })

  it('a worker that stays NotReady after its upgrade is reset, rejoined at its old version as a new Node, and the post-gates re-run', async () => {
    const uidBefore = (await kubectl('get', 'node', 'rb-w-1', '-o', 'jsonpath={.metadata.uid}')).trim()
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'rb', node: 'rb-w-1' }
    l.lab.setFault(fault, true)
    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)

    const failed = ev.findIndex((e) => e.type === 'step-failed' && e.step.node === 'rb-w-1')
    expect(ev[failed].step.action).toBe('wait-ready')
    const started = ev.findIndex((e) => e.type === 'rebuild-started')
    expect(started).toBeGreaterThan(failed)
    expect(ev[started]).toMatchObject({ cluster: 'rb', node: 'rb-w-1', hop: 1, detail: expect.stringMatching(/^k3s-agent-uninstall\.sh/) })
    // The rebuild's own steps, in the planned order, each done and journaled like any step.
    const done = ev.slice(started).filter((e) => e.type === 'step-done' && /\/rebuild\//.test(e.step.id)).map((e) => e.step.action)
    expect(done, JSON.stringify(ev.slice(started).filter((e) => /failed/.test(e.type)))).toEqual(['reset-node', 'delete-node', 'restore-files', 'replace-binary', 'restart', 'wait-ready', 'uncordon'])
    expect(ev.some((e) => e.type === 'rollback-started')).toBe(false)
    const gates = ev.filter((e) => e.type === 'gate-result' && e.during === 'rollback')
    expect(gates.map((e) => e.gate)).toEqual(expect.arrayContaining(['kube-proxy-sync', 'api-vip', 'nodes-ready']))
    expect(gates.every((e) => e.status === 'pass' || e.status === 'warn'), JSON.stringify(gates.map((e) => [e.gate, e.status, e.summary]))).toBe(true)
    expect(ev.findIndex((e) => e.type === 'rebuild-done')).toBeGreaterThan(ev.indexOf(gates.at(-1)))
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })
    expect(ev.at(-1).message).toMatch(/rebuilt .*: rb-w-1 Ready again, uncordoned/)

    // The cluster's view: a new Node object for rb-w-1 (deleted, then registered again), Ready at the old version,
    // schedulable; the next worker never cordoned.
    const api = l.lab.recorder.mutations({ afterSeq: mark, source: 'api' }) as ApiEvent[]
    expect(api.some((e) => e.resource === 'nodes' && e.name === 'rb-w-1' && e.verb === 'delete')).toBe(true)
    expect(api.some((e) => e.resource === 'nodes' && e.name === 'rb-w-2' && e.unschedulable !== undefined)).toBe(false)
    const uidAfter = (await kubectl('get', 'node', 'rb-w-1', '-o', 'jsonpath={.metadata.uid}')).trim()
    expect(uidAfter).not.toBe('')
    expect(uidAfter).not.toBe(uidBefore)
    const nodes = Object.fromEntries(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, [n.version, n.ready, n.cordoned]]))
    expect(nodes).toEqual({ 'rb-cp-1': ['v1.30.4+k3s1', 'True', false], 'rb-w-1': ['v1.29.6+k3s1', 'True', false], 'rb-w-2': ['v1.29.6+k3s1', 'True', false] })
    const w1 = l.lab.clusters.get('rb')!.nodes.get('rb-w-1')!.getState()
    expect([w1.installedVersion, w1.runningVersion, w1.serviceActive]).toEqual(['v1.29.6+k3s1', 'v1.29.6+k3s1', true])
  }, 300_000)

  it('with strategy.rebuild.version: target the same worker is rolled forward on a clean machine: Ready at the target', async () => {
    await l.editPlan((d) => { d.spec.strategy.rebuild = { version: 'target' } })
    const plan = await l.cli(['plan', l.plan])
    expect(plan.out).toMatch(/rebuild on failure \(hop 1\) of rb-w-1, rb-w-2: k3s-agent-uninstall\.sh, kubectl delete node, the kept unit and K3S_URL\/K3S_TOKEN back, k3s v1\.30\.4\+k3s1 installed \(the hop's target: strategy\.rebuild\.version\)/)
    // The server moved in the first run; this run starts at the worker, whose in-place upgrade breaks it again.
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'rb', node: 'rb-w-1' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    const started = ev.findIndex((e) => e.type === 'rebuild-started')
    expect(ev[started]).toMatchObject({ cluster: 'rb', node: 'rb-w-1', hop: 1 })
    const done = ev.slice(started).filter((e) => e.type === 'step-done' && /\/rebuild\//.test(e.step.id))
    expect(done.map((e) => e.step.action), JSON.stringify(ev.slice(started).filter((e) => /failed/.test(e.type)))).toEqual(['reset-node', 'delete-node', 'restore-files', 'replace-binary', 'restart', 'wait-ready', 'uncordon'])
    expect(done.find((e) => e.step.action === 'replace-binary').step.title).toMatch(/^install k3s v1\.30\.4\+k3s1: /)
    const gates = ev.filter((e) => e.type === 'gate-result' && e.during === 'rollback')
    expect(gates.length).toBeGreaterThan(0)
    expect(gates.every((e) => e.status === 'pass' || e.status === 'warn'), JSON.stringify(gates.map((e) => [e.gate, e.status, e.summary]))).toBe(true)
    expect(ev.some((e) => e.type === 'rebuild-done')).toBe(true)
    const nodes = Object.fromEntries(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, [n.version, n.ready, n.cordoned]]))
    expect(nodes).toEqual({ 'rb-cp-1': ['v1.30.4+k3s1', 'True', false], 'rb-w-1': ['v1.30.4+k3s1', 'True', false], 'rb-w-2': ['v1.29.6+k3s1', 'True', false] })
    const w1 = l.lab.clusters.get('rb')!.nodes.get('rb-w-1')!.getState()
    expect([w1.installedVersion, w1.runningVersion, w1.serviceActive]).toEqual(['v1.30.4+k3s1', 'v1.30.4+k3s1', true])
  }, 300_000)
})
