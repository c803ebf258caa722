import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cliKillable, downloadFailsMidRun, events, rollbackOnFailure, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * A resume takes up a cluster where an earlier process left it, minutes or days later. Before it upgrades the next node
 * (cordoned or drained already, or not) it checks the cluster again with the last gates the run passed there (here:
 * the after-node gates of the worker upgraded last); what broke meanwhile (CoreDNS crash-looping) stops it with the
 * next node not upgraded, and once that is mended the next resume goes on.
 */
describe('resume checks the cluster again before the next node', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.175', [{ name: 'rk', distribution: 'k3s', controlPlanes: 1, workers: 2 }]))
    await l.editPlan((d) => {
      d.spec.gates = { ...d.spec.gates, wait: { interval: '1s', stableFor: 2, timeout: '12s' } }
    })
  }, 60_000)
  afterAll(async () => l?.stop())

  const node = (name: string) => l.lab.status().clusters[0]!.nodes.find((n) => n.name === name)!

  it('a fault that came while the run was stopped stops the resume before rk-w-2 (cordoned) is upgraded; mended, resume completes', async () => {
    // Killed as rk-w-2's drain begins: rk-w-1 is done, rk-w-2 cordoned and still running what it ran.
    const first = await cliKillable(l, ['apply', l.plan, '--output', 'json'], (e) => (e.type === 'step-started' && e.step.node === 'rk-w-2' && e.step.action === 'drain' ? 0 : undefined))
    expect(first.killed, first.err + first.out.slice(-2000)).toBe(true)
    expect(events(first.out).some((e) => e.type === 'node-done' && e.node === 'rk-w-1')).toBe(true)
    expect(node('rk-w-2')).toMatchObject({ version: 'v1.29.6+k3s1', cordoned: true })
    const runDir = events(first.out).find((e) => e.type === 'run-started')!.journal.replace(/\/journal\.jsonl$/, '')

    const fault = { fault: 'coredns-crashloop' as const, cluster: 'rk' }
    l.lab.setFault(fault, true)
    const stopped = await l.cli(['resume', runDir, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    const ev = events(stopped.out)
    expect(stopped.code, stopped.err + stopped.out.slice(-3000)).toBe(4)
    const check = ev.find((e) => e.type === 'resume-check')
    expect(check).toMatchObject({ cluster: 'rk', point: 'the after-node gates of rk-w-1', before: 'rk-w-2' })
    // rk-w-1's after-node gates, only those.
    expect(check.gates).toEqual(expect.arrayContaining([expect.stringMatching(/\/rk-w-1\/after\/gate\/system-pods$/)]))
    for (const g of check.gates) expect(g).toMatch(/\/rk-w-1\/after\/gate\//)
    expect(ev.find((e) => e.type === 'gate-result' && e.during === 'resume' && e.gate === 'system-pods')).toMatchObject({ status: 'fail', step: { node: 'rk-w-1' } })
    // Nothing more of rk-w-2 ran (left cordoned, as the run had left it); rk-w-1 was not rolled back for what it did not
    // cause.
    expect(ev.filter((e) => e.type === 'step-started' && e.step.node === 'rk-w-2')).toEqual([])
    expect(ev.some((e) => e.type === 'rollback-started')).toBe(false)
    expect(node('rk-w-2')).toMatchObject({ version: 'v1.29.6+k3s1', cordoned: true })
    expect(node('rk-w-1')).toMatchObject({ version: 'v1.30.4+k3s1', cordoned: false })
    const fin = ev.find((e) => e.type === 'run-finished')
    expect(fin).toMatchObject({ outcome: 'paused', exitCode: 4 })
    expect(fin.message).toMatch(/checked again on resume, before rk-w-2: gate system-pods failed/)
    expect(fin.message).toContain('nothing more was changed')

    // Mended: the next resume checks again, passes and upgrades rk-w-2.
    const done = await l.cli(['resume', runDir, '--output', 'json'])
    const ev2 = events(done.out)
    expect(done.code, done.err + done.out.slice(-3000)).toBe(0)
    expect(ev2.find((e) => e.type === 'resume-check')).toMatchObject({ point: 'the after-node gates of rk-w-1', before: 'rk-w-2' })
    const rechecks = ev2.filter((e) => e.type === 'gate-result' && e.during === 'resume')
    expect(rechecks.length).toBeGreaterThan(0)
    expect(rechecks.filter((e) => e.status !== 'pass' && e.status !== 'warn')).toEqual([])
    expect(ev2.some((e) => e.type === 'node-done' && e.node === 'rk-w-2')).toBe(true)
    expect(node('rk-w-2')).toMatchObject({ version: 'v1.30.4+k3s1', cordoned: false })
  }, 300_000)
})

/** Killed after its pre-gates passed and before anything changed: the resume checks the pre-gates again. */
describe('resume checks the pre-gates again when nothing had changed yet', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.176', [{ name: 'rp', distribution: 'k3s', controlPlanes: 1, workers: 1 }]))
  }, 60_000)
  afterAll(async () => l?.stop())

  it('a fault that came meanwhile stops the resume before the backup', async () => {
    const first = await cliKillable(l, ['apply', l.plan, '--output', 'json'], (e) => (e.type === 'step-started' && e.step.action === 'backup' ? 0 : undefined))
    expect(first.killed, first.err + first.out.slice(-2000)).toBe(true)
    const runDir = events(first.out).find((e) => e.type === 'run-started')!.journal.replace(/\/journal\.jsonl$/, '')
    const fault = { fault: 'coredns-crashloop' as const, cluster: 'rp' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['resume', runDir, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    const ev = events(r.out)
    // Blocked, as a pre-gate of a new run would be: the run has changed nothing yet.
    expect(r.code, r.err + r.out.slice(-3000)).toBe(3)
    expect(ev.find((e) => e.type === 'run-finished').message).toMatch(/^cluster rp: checked again on resume, before rp-cp-1: gate .*; nothing was changed$/)
    expect(ev.find((e) => e.type === 'resume-check')).toMatchObject({ cluster: 'rp', point: 'the pre-gates', before: 'rp-cp-1' })
    expect(ev.filter((e) => e.type === 'gate-result' && e.during === 'resume' && e.status === 'fail').map((e) => e.gate)).toEqual(expect.arrayContaining(['system-pods', 'dns']))
    // The lock is taken again, as every resume does; nothing else starts.
    expect(ev.filter((e) => e.type === 'step-started').map((e) => e.step.action)).toEqual(['lock'])
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.cordoned])).toEqual([['rp-cp-1', 'v1.29.6+k3s1', false], ['rp-w-1', 'v1.29.6+k3s1', false]])
  }, 300_000)

  it('killed halfway through the pre-gates, the resume checks again those it had passed before the rest', async () => {
    const first = await cliKillable(l, ['apply', l.plan, '--output', 'json'], (e) => (e.type === 'step-done' && e.step.action === 'gate' ? 0 : undefined))
    expect(first.killed, first.err + first.out.slice(-2000)).toBe(true)
    const journal = events(first.out).find((e) => e.type === 'run-started')!.journal
    const passed = readFileSync(journal, 'utf8').trim().split('\n').slice(1).map((x) => JSON.parse(x)).filter((e) => e.state === 'done' && /\/pre\/gate\//.test(e.step)).map((e) => e.step)
    expect(passed.length).toBeGreaterThan(0)
    const fault = { fault: 'coredns-crashloop' as const, cluster: 'rp' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['resume', journal.replace(/\/journal\.jsonl$/, ''), '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    const ev = events(r.out)
    expect(r.code, r.err + r.out.slice(-3000)).toBe(3)
    const check = ev.find((e) => e.type === 'resume-check')
    expect(check).toMatchObject({ cluster: 'rp', point: 'the pre-gates', before: 'the rest of the pre-gates' })
    expect([...check.gates].sort()).toEqual([...passed].sort())
    expect(ev.filter((e) => e.type === 'gate-result' && e.during === 'resume').map((e) => e.step.id).sort()).toEqual([...passed].sort())
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.cordoned])).toEqual([['rp-cp-1', 'v1.29.6+k3s1', false], ['rp-w-1', 'v1.29.6+k3s1', false]])
  }, 300_000)

  it('killed as the first node drains, the resume does not re-check the pre-gates (they judge a cluster with no node cordoned)', async () => {
    const first = await cliKillable(l, ['apply', l.plan, '--output', 'json'], (e) => (e.type === 'step-started' && e.step.node === 'rp-cp-1' && e.step.action === 'drain' ? 0 : undefined))
    expect(first.killed, first.err + first.out.slice(-2000)).toBe(true)
    expect(l.lab.status().clusters[0]!.nodes.find((n) => n.name === 'rp-cp-1')!.cordoned).toBe(true)
    const r = await l.cli(['resume', events(first.out).find((e) => e.type === 'run-started')!.journal.replace(/\/journal\.jsonl$/, ''), '--output', 'json'])
    const ev = events(r.out)
    expect(r.code, r.err + r.out.slice(-3000)).toBe(0)
    expect(ev.filter((e) => e.type === 'resume-check')).toEqual([])
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.cordoned])).toEqual([['rp-cp-1', 'v1.30.4+k3s1', false], ['rp-w-1', 'v1.30.4+k3s1', false]])
  }, 300_000)
})

/**
 * A node its onFailure rolled back is as it was: a resume that retries it cordons and drains it afresh, so the cluster
 * is checked again first, as before any node. (It was not: the rolled-back node's undone steps counted as an upgrade
 * begun, whose own after-node gates would judge it.)
 */
describe('resume checks the cluster again before a node the run rolled back', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.179', [{ name: 'rr', distribution: 'k3s', controlPlanes: 1, workers: 2 }]))
    await l.editPlan(rollbackOnFailure())
    await l.editPlan(downloadFailsMidRun)
    await l.editPlan((d) => {
      d.spec.gates = { ...d.spec.gates, wait: { interval: '1s', stableFor: 2, timeout: '12s' } }
    })
  }, 60_000)
  afterAll(async () => l?.stop())

  const node = (name: string) => l.lab.status().clusters[0]!.nodes.find((n) => n.name === name)!

  it('rr-w-2 rolled back after its download failed; CoreDNS broken meanwhile: the resume stops before rr-w-2 is cordoned again', async () => {
    const download = { fault: 'upgrade-command-fails' as const, cluster: 'rr', node: 'rr-w-2' }
    l.lab.setFault(download, true)
    const first = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(download, false))
    expect(first.code, first.err + first.out.slice(-3000)).toBe(1)
    const ev1 = events(first.out)
    expect(ev1.find((e) => e.type === 'rollback-done')).toMatchObject({ node: 'rr-w-2' })
    expect(node('rr-w-2')).toMatchObject({ version: 'v1.29.6+k3s1', cordoned: false })
    const runDir = ev1.find((e) => e.type === 'run-started')!.journal.replace(/\/journal\.jsonl$/, '')

    const fault = { fault: 'coredns-crashloop' as const, cluster: 'rr' }
    l.lab.setFault(fault, true)
    const stopped = await l.cli(['resume', runDir, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    const ev = events(stopped.out)
    expect(stopped.code, stopped.err + stopped.out.slice(-3000)).toBe(4)
    expect(ev.find((e) => e.type === 'resume-check')).toMatchObject({ cluster: 'rr', point: 'the after-node gates of rr-w-1', before: 'rr-w-2' })
    expect(ev.find((e) => e.type === 'gate-result' && e.during === 'resume' && e.gate === 'system-pods')).toMatchObject({ status: 'fail' })
    expect(ev.filter((e) => e.type === 'step-started' && e.step.node === 'rr-w-2')).toEqual([])
    expect(node('rr-w-2')).toMatchObject({ version: 'v1.29.6+k3s1', cordoned: false })

    const done = await l.cli(['resume', runDir, '--output', 'json'])
    expect(done.code, done.err + done.out.slice(-3000)).toBe(0)
    expect(events(done.out).find((e) => e.type === 'resume-check')).toMatchObject({ point: 'the after-node gates of rr-w-1', before: 'rr-w-2' })
    expect(node('rr-w-2')).toMatchObject({ version: 'v1.30.4+k3s1', cordoned: false })
  }, 300_000)
})
