import { execFile } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KUBECTL } from '../lab/helpers.js'
import { cliKillable, events, startExecLab, topology, type ExecLab } from './helpers.js'

const run = promisify(execFile)

/**
 * `kupgrade restore`, the explicit cluster rebuild from a hop's backup (issue 11 §3): after a finished upgrade to
 * v1.30, the whole k3s cluster goes back to v1.29 from the snapshot the hop took. The lab's k3s refuses to start an
 * old binary on a datastore a newer release wrote, as k3s does, so the server comes back only by the documented
 * restore (k3s server --cluster-reset --cluster-reset-restore-path), not by its kept binary alone.
 */
describe('kupgrade restore: a k3s cluster back before its hop, from the hop\'s snapshot', () => {
  let l: ExecLab
  const kubectl = async (...args: string[]) => (await run(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'rs', ...args])).stdout
  const nodes = () => l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])
  const resetFlag = () => join(l.dir, 'nodes/rs/rs-cp-1/var/lib/rancher/k3s/server/db/reset-flag')

  beforeAll(async () => {
    l = await startExecLab(topology('127.0.144', [{ name: 'rs', distribution: 'k3s', controlPlanes: 1, workers: 2 }]))
    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(0)
  }, 240_000)
  afterAll(async () => l?.stop())

  it('without --yes prints the steps from the newest indexed backup and changes nothing (exit 4)', async () => {
    const r = await l.cli(['restore', l.plan, '--cluster', 'rs'])
    expect(r.code, r.err).toBe(4)
    const runId = readFileSync(join(l.dir, '.kupgrade/backups/index.jsonl'), 'utf8').trim().split('\n').map((x) => JSON.parse(x)).find((e) => e.step.endsWith('/backup')).run
    expect(r.out).toMatch(new RegExp(`^Restore cluster rs to v1\\.29\\.6\\+k3s1, before hop 1, from the backup run ${runId} took on rs-cp-1 at `))
    expect(r.out).toMatch(/\* undo\/hop1\/replace-binary restore k3s v1\.29\.6\+k3s1 from the pre-hop backup in \/var\/lib\/kupgrade\/backup\/v1\.29\.6\+k3s1: /)
    expect(r.out).toMatch(/workers, batch after batch, the nodes of a batch at once: \[rs-w-1\] → \[rs-w-2\]$/m)
    expect(r.err).toContain(`nothing was changed; to run these steps: kupgrade restore ${l.plan} --cluster rs --hop 1 --yes`)
    expect(nodes()).toEqual([['rs-cp-1', 'v1.30.4+k3s1', 'True', false], ['rs-w-1', 'v1.30.4+k3s1', 'True', false], ['rs-w-2', 'v1.30.4+k3s1', 'True', false]])
    const json = await l.cli(['restore', l.plan, '--cluster', 'rs', '--output', 'json'])
    const plan = JSON.parse(json.out)
    expect(plan.stages.map((s: any) => s.name)).toEqual(['restore'])
    expect(plan.steps.filter((s: any) => s.force).map((s: any) => `${s.node} ${s.action}`)).toEqual(['rs-cp-1 restore-datastore'])
  }, 60_000)

  it('with --yes restores the server from the snapshot and takes every agent back (killed halfway and resumed): all Ready at v1.29, uncordoned, the API at v1.29', async () => {
    // SIGKILL as the first agent's turn starts: the journal must make `resume` a restore again, not the upgrade.
    const killed = await cliKillable(l, ['restore', l.plan, '--cluster', 'rs', '--yes', '--output', 'json'], (e) => (e.type === 'step-started' && e.step.node === 'rs-w-1' ? 0 : undefined))
    expect(killed.killed, killed.err + killed.out.slice(-3000)).toBe(true)
    expect(events(killed.out).filter((e) => e.type === 'step-done' && e.step.action === 'restore-datastore')).toHaveLength(1)
    const r = await l.cli(['resume', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)
    const ev = events(r.out)
    expect(ev.find((e) => e.type === 'run-started')).toMatchObject({ resumed: true, stages: ['restore'] })
    // Done before the kill, so not again: the restore ran once.
    expect(ev.some((e) => e.type === 'step-started' && e.step.action === 'restore-datastore')).toBe(false)
    const restored = events(killed.out).find((e) => e.type === 'step-done' && e.step.action === 'restore-datastore')
    expect(restored, JSON.stringify(ev.filter((e) => e.type === 'step-failed'))).toMatchObject({ changed: true, step: { node: 'rs-cp-1' } })
    expect(ev.filter((e) => e.type === 'step-done' && e.step.action === 'restore-binary' && e.changed).map((e) => e.step.node)).toEqual(['rs-w-1', 'rs-w-2'])
    const gates = ev.filter((e) => e.type === 'gate-result')
    expect(gates.map((e) => e.gate)).toEqual(expect.arrayContaining(['nodes-ready', 'version-skew', 'kube-proxy-sync', 'api-vip']))
    expect(gates.every((e) => e.status === 'pass' || e.status === 'warn'), JSON.stringify(gates.map((e) => [e.gate, e.status, e.summary]))).toBe(true)
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'done', exitCode: 0 })
    expect(nodes()).toEqual([['rs-cp-1', 'v1.29.6+k3s1', 'True', false], ['rs-w-1', 'v1.29.6+k3s1', 'True', false], ['rs-w-2', 'v1.29.6+k3s1', 'True', false]])
    expect(existsSync(resetFlag())).toBe(true)
    expect(JSON.parse(await kubectl('version', '-o', 'json')).serverVersion.gitVersion).toBe('v1.29.6+k3s1')
    // The journal says it is a restore, so `resume` plans the restore again rather than the upgrade.
    const journal = readFileSync(ev.at(-1).journal, 'utf8').split('\n')[0]!
    expect(JSON.parse(journal)).toMatchObject({ restore: { cluster: 'rs', hop: 1 }, selection: { clusters: ['rs'] } })
  }, 240_000)

  it('a second restore runs the datastore restore again although the old version already runs (forced); the agents run nothing', async () => {
    rmSync(resetFlag())
    const r = await l.cli(['restore', l.plan, '--cluster', 'rs', '--hop', '1', '--yes', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)
    const ev = events(r.out)
    const restored = ev.find((e) => e.type === 'step-done' && e.step.action === 'restore-datastore')
    // Its verify holds before it (v1.29 runs, k3s active): only the force made it run.
    expect(restored).toMatchObject({ changed: true, evidence: expect.arrayContaining(['ran: systemctl stop k3s', 'ran: systemctl start k3s']) })
    expect(existsSync(resetFlag())).toBe(true)
    expect(ev.filter((e) => e.type === 'step-done' && e.step.action === 'restore-binary').map((e) => e.changed)).toEqual([false, false])
    expect(nodes()).toEqual([['rs-cp-1', 'v1.29.6+k3s1', 'True', false], ['rs-w-1', 'v1.29.6+k3s1', 'True', false], ['rs-w-2', 'v1.29.6+k3s1', 'True', false]])
    // The restored datastore brought the Lease back as the snapshot held it: the upgrade run's lock, at an older
    // resourceVersion. Renewal stopped across the restore (a renewal would have been refused with 409 and the lock
    // lost); the snapshot's Lease was taken over before the agents' turn, then released at the end.
    const applyRun = readFileSync(join(l.dir, '.kupgrade/backups/index.jsonl'), 'utf8').trim().split('\n').map((x) => JSON.parse(x)).find((e) => e.step.endsWith('/backup')).run
    const marks = ev.filter((e) => e.type === 'lock-acquired' || e.type === 'lock-lost' || (e.type === 'step-done' && ['restore-datastore', 'restore-binary'].includes(e.step.action)))
      .map((e) => (e.type === 'step-done' ? `${e.step.node} ${e.step.action}` : `${e.type}${e.takenOverFrom ? ` from ${e.takenOverFrom.split(' ')[0]}` : ''}`))
    expect(marks).toEqual(['lock-acquired', 'rs-cp-1 restore-datastore', `lock-acquired from ${applyRun}`, 'rs-w-1 restore-binary', 'rs-w-2 restore-binary'])
    const lease = JSON.parse(await kubectl('get', 'lease', '-n', 'kube-system', 'kupgrade-lock', '-o', 'json'))
    expect(lease.spec.holderIdentity ?? '').toBe('')
  }, 240_000)

  it('with no API at all (k3s stopped on the only server) the restore goes on under the local lock and takes the Lease once the restored API answers', async () => {
    const down = await execa('ssh', [
      '-i', join(l.dir, 'id_ed25519'), '-o', `UserKnownHostsFile=${join(l.dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes',
      '-o', 'BatchMode=yes', '-p', '2222', 'root@127.0.144.11', 'systemctl stop k3s',
    ], { reject: false })
    expect(down.exitCode, down.stderr).toBe(0)
    await expect(kubectl('get', 'nodes', '--request-timeout=2s')).rejects.toThrow()
    const r = await l.cli(['restore', l.plan, '--cluster', 'rs', '--hop', '1', '--yes', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)
    const ev = events(r.out)
    const lock = ev.find((e) => e.type === 'step-done' && e.step.action === 'lock')
    expect(lock.evidence[0]).toMatch(/^the API does not answer \(.*\): going on under the local lock; the Lease is taken as soon as the API answers$/)
    const order = ev.filter((e) => e.type === 'lock-acquired' || (e.type === 'step-done' && ['restore-datastore', 'restore-binary'].includes(e.step.action))).map((e) => e.type === 'lock-acquired' ? 'lock' : `${e.step.node} ${e.step.action}`)
    expect(order).toEqual(['rs-cp-1 restore-datastore', 'lock', 'rs-w-1 restore-binary', 'rs-w-2 restore-binary'])
    // The Lease it took is the one the restored datastore holds: the upgrade run's, taken over without --force-unlock.
    const applyRun = readFileSync(join(l.dir, '.kupgrade/backups/index.jsonl'), 'utf8').trim().split('\n').map((x) => JSON.parse(x)).find((e) => e.step.endsWith('/backup')).run
    expect(ev.find((e) => e.type === 'lock-acquired').takenOverFrom).toMatch(new RegExp(`^${applyRun} `))
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'done', exitCode: 0 })
    expect(nodes()).toEqual([['rs-cp-1', 'v1.29.6+k3s1', 'True', false], ['rs-w-1', 'v1.29.6+k3s1', 'True', false], ['rs-w-2', 'v1.29.6+k3s1', 'True', false]])
    // Taken, renewed and released as any run's: no holder left.
    const lease = JSON.parse(await kubectl('get', 'lease', '-n', 'kube-system', 'kupgrade-lock', '-o', 'json'))
    expect(lease.spec.holderIdentity ?? '').toBe('')
  }, 240_000)

  it('refuses bad input before touching anything: an unknown hop, a hop that is no number', async () => {
    const hop = await l.cli(['restore', l.plan, '--cluster', 'rs', '--hop', '2', '--yes'])
    expect(hop.code).toBe(2)
    expect(hop.err).toContain('cluster rs has no hop 2: its hops are 1 (v1.29.6+k3s1 → v1.30.4+k3s1)')
    const nan = await l.cli(['restore', l.plan, '--cluster', 'rs', '--hop', 'x'])
    expect(nan.code).toBe(2)
    expect(nan.err).toContain('--hop x: a hop number, 1 or more')
  }, 60_000)
})

