import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { join, relative } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiEvent } from '../../src/lab/recorder/types.js'
import { KUBECTL } from '../lab/helpers.js'
import { events, rollbackOnFailure, startExecLab, topology, type ExecLab } from './helpers.js'

const execFileP = promisify(execFile)

/**
 * onFailure: rollback on the lab (execution.md "Rollback"): a worker whose new version does not come up Ready is
 * detected by the wait for Ready, its done steps are undone in reverse (the kept binary back, restarted, Ready at the
 * old version, then uncordoned), the cluster's post-gates run again (kube-proxy-sync and api-vip among them), and the
 * run fails with exit 1 without touching the next worker (maxFailedNodes: 1).
 */
describe('apply: onFailure rollback', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.84', [{ name: 'rb', distribution: 'k3s', controlPlanes: 1, workers: 2 }]))
    await l.editPlan(rollbackOnFailure(1))
  }, 60_000)
  afterAll(async () => l?.stop())

  it('a worker that stays NotReady after its upgrade is rolled back to its old version, uncordoned, and the post-gates re-run', async () => {
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'rb', node: 'rb-w-1' }
    l.lab.setFault(fault, true)
    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)

    const nodes = Object.fromEntries(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n]))
    expect(nodes['rb-cp-1']!.version).toBe('v1.30.4+k3s1')
    expect([nodes['rb-w-1']!.version, nodes['rb-w-1']!.cordoned]).toEqual(['v1.29.6+k3s1', false])
    // The breaker: the next worker was never touched.
    expect([nodes['rb-w-2']!.version, nodes['rb-w-2']!.cordoned]).toEqual(['v1.29.6+k3s1', false])
    const api = l.lab.recorder.mutations({ afterSeq: mark, source: 'api' }) as ApiEvent[]
    expect(api.some((e) => e.resource === 'nodes' && e.name === 'rb-w-2' && e.unschedulable !== undefined)).toBe(false)

    // Detected by the wait for Ready at the new version, then the rollback, in this order.
    const types = ev.map((e) => e.type)
    const failed = ev.findIndex((e) => e.type === 'step-failed' && e.step.node === 'rb-w-1')
    expect(ev[failed].step.action).toBe('wait-ready')
    // The wait said how it was doing before it gave up.
    const waiting = ev.filter((e) => e.type === 'step-waiting' && e.step.id === ev[failed].step.id)
    expect(waiting.length).toBeGreaterThanOrEqual(1)
    expect(waiting.at(-1)).toMatchObject({ waitingFor: 'rb-w-1 Ready with kubelet v1.30.4+k3s1', observed: expect.stringMatching(/^rb-w-1: Ready=False, kubelet v1\.30\.4\+k3s1$/), timeoutMs: 4_000 })
    const started = types.indexOf('rollback-started')
    expect(started).toBeGreaterThan(failed)
    expect(ev[started]).toMatchObject({ cluster: 'rb', node: 'rb-w-1', path: 'previous-version' })
    const undone = ev.filter((e) => e.type === 'undo-done').map((e) => `${e.step.action}:${e.changed}`)
    // restore the kept binary first, uncordon last (drain's and cordon's undo are one uncordon).
    expect(undone).toEqual(['replace-binary:true', 'drain:true'])
    // After the rollback the post-gates ran again, the data-plane ones included, and passed.
    const rbGates = ev.filter((e) => e.type === 'gate-result' && e.during === 'rollback')
    expect(rbGates.map((e) => e.gate)).toEqual(expect.arrayContaining(['kube-proxy-sync', 'api-vip', 'nodes-ready']))
    expect(rbGates.every((e) => e.status === 'pass' || e.status === 'warn'), JSON.stringify(rbGates.map((e) => [e.gate, e.status, e.summary]))).toBe(true)
    expect(types.indexOf('rollback-done')).toBeGreaterThan(ev.indexOf(rbGates.at(-1)))
    const fin = ev.at(-1)
    expect(fin).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })
    expect(fin.message).toMatch(/rolled back: rb-w-1 back at the old version/)
    // Rolled back means uncordoned: nothing in the run's last words says it was left cordoned.
    expect(ev.filter((e) => ['run-finished', 'cluster-failed', 'stage-failed', 'rollback-started'].includes(e.type) && /left cordoned/.test(JSON.stringify(e)))).toEqual([])

    // The journal says the same: undoing → undone on the step ids, the run failed.
    const journal = readFileSync(fin.journal, 'utf8').trim().split('\n').slice(1).map((x) => JSON.parse(x))
    const replace = journal.filter((e) => e.step === 'rb/rb/hop1/rb-w-1/replace-binary').map((e) => e.state)
    expect(replace).toEqual(['started', 'done', 'undoing', 'undone'])
    expect(journal.at(-1)).toMatchObject({ step: 'run', state: 'failed' })

    // The failure report beside the journal: the rollback, the timeline and every node's state after the run.
    const report = JSON.parse(readFileSync(fin.journal.replace(/journal\.jsonl$/, 'report.json'), 'utf8'))
    expect(report.rollbacks).toEqual([expect.objectContaining({ cluster: 'rb', node: 'rb-w-1', status: 'rolled back', undone: ['rb/rb/hop1/rb-w-1/replace-binary', 'rb/rb/hop1/rb-w-1/drain'] })])
    expect(report.final[0].nodes).toEqual([
      { node: 'rb-cp-1', kubelet: 'v1.30.4+k3s1', ready: true, cordoned: false },
      { node: 'rb-w-1', kubelet: 'v1.29.6+k3s1', ready: true, cordoned: false },
      { node: 'rb-w-2', kubelet: 'v1.29.6+k3s1', ready: true, cordoned: false },
    ])
    const timeline = report.timeline.map((t: { event: string }) => t.event)
    expect(timeline.indexOf('rb/rb-w-1: rolled back')).toBeGreaterThan(timeline.findIndex((t: string) => t.startsWith('rb/rb-w-1 failed')))
    const md = readFileSync(fin.journal.replace(/journal\.jsonl$/, 'report.md'), 'utf8')
    expect(md).toMatch(/\*\*Rollbacks:\*\*/)
    expect(md).toMatch(/\| rb \| rb-w-1 \| v1\.29\.6\+k3s1 \| yes \| yes \|/)
  }, 300_000)

  it('once the fault is fixed, a new apply finishes the upgrade (the rolled-back steps run again)', async () => {
    const r = await l.cli(['apply', l.plan])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(0)
    const nodes = l.lab.status().clusters[0]!.nodes
    expect(nodes.map((n) => [n.name, n.version, n.cordoned])).toEqual([
      ['rb-cp-1', 'v1.30.4+k3s1', false], ['rb-w-1', 'v1.30.4+k3s1', false], ['rb-w-2', 'v1.30.4+k3s1', false],
    ])
  }, 300_000)

  it('kupgrade rollback undoes a run newest first: the agents the last run upgraded go back; the only server, which the first run moved, comes back from its pre-hop snapshot', async () => {
    // The newest run is the second apply, which upgraded the two agents (the server was already at the target).
    let mark = l.lab.recorder.mark()
    const r = await l.cli(['rollback', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(0)
    let ev = events(r.out)
    expect(ev.filter((e) => e.type === 'rollback-done').map((e) => e.node)).toEqual(['rb-w-2', 'rb-w-1'])
    expect(ev.at(-1).message).toMatch(/rolled back: rb\/rb-w-2, rb\/rb-w-1/)
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.cordoned])).toEqual([
      ['rb-cp-1', 'v1.30.4+k3s1', false], ['rb-w-1', 'v1.29.6+k3s1', false], ['rb-w-2', 'v1.29.6+k3s1', false],
    ])
    let api = l.lab.recorder.mutations({ afterSeq: mark, source: 'api' }) as ApiEvent[]
    expect(api.some((e) => e.resource === 'nodes' && e.name === 'rb-cp-1')).toBe(false)
    expect(types(ev)).toEqual(expect.arrayContaining(['lock-acquired', 'lock-released']))
    // Nothing is left to resume in a run taken back: status says what comes next instead.
    const st = (await l.cli(['status'])).out
    expect(st).toMatch(/^run \S+: rolled-back/)
    expect(st).toContain(`\n  next: to upgrade again, a new run: kupgrade apply ${relative(l.dir, l.plan)} (it starts from the clusters as they are now)\n`)
    expect(st).not.toContain('to continue')

    // The first run moved the server (its agent was rolled back then). A moved server refuses its old binary alone;
    // the only server of the cluster is restored from the snapshot its hop took first: k3s stopped, the kept binary
    // back, k3s server --cluster-reset --cluster-reset-restore-path, started, Ready at v1.29 with the API at v1.29.
    const first = readdirSync(join(l.dir, '.kupgrade', 'runs')).filter((d) => /^\d{8}T/.test(d)).sort()[0]!
    mark = l.lab.recorder.mark()
    const again = await l.cli(['rollback', first, '--output', 'json'])
    expect(again.code, again.err + again.out.slice(-3000)).toBe(0)
    ev = events(again.out)
    expect(ev.find((e) => e.type === 'rollback-started')).toMatchObject({ node: 'rb-cp-1', path: 'snapshot-restore' })
    // (The server had finished its node run, uncordon included: its drain's undo finds it schedulable, nothing runs.)
    expect(ev.filter((e) => e.type === 'undo-done').map((e) => `${e.step.action}:${e.changed}`)).toEqual(['replace-binary:true', 'drain:false'])
    expect(ev.filter((e) => e.type === 'gate-result' && e.during === 'rollback').every((e) => e.status === 'pass' || e.status === 'warn')).toBe(true)
    expect(ev.at(-1).message).toMatch(/rolled back: rb\/rb-cp-1/)
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ['rb-cp-1', 'v1.29.6+k3s1', 'True', false], ['rb-w-1', 'v1.29.6+k3s1', 'True', false], ['rb-w-2', 'v1.29.6+k3s1', 'True', false],
    ])
    // (The lab's k3s refuses a moved datastore on the old binary: Ready at v1.29 means the datastore was restored.)
    const version = JSON.parse((await execFileP(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'rb', 'version', '-o', 'json'])).stdout)
    expect(version.serverVersion.gitVersion).toBe('v1.29.6+k3s1')
  }, 300_000)
})

const types = (ev: any[]): string[] => ev.map((e) => e.type)

