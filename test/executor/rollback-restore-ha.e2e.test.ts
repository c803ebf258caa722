import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { plainLine } from '../../src/report/run-plain.js'
import { KUBECTL, openSsh } from '../lab/helpers.js'
import { events, rollbackOnFailure, startExecLab, topology, type ExecLab } from './helpers.js'

const run = promisify(execFile)

/**
 * onFailure: rollback of a moved server in a k3s cluster with three servers (issue 11: "automatic restore with
 * several control planes"). The second server, upgraded and restarted, never comes back Ready; the first already runs
 * the new release. No server can go back by binary alone (the lab's k3s refuses an old release on a datastore a newer
 * one wrote, as k3s does), so the control plane comes back as k3s documents it for several servers: k3s stopped on
 * every server, the first reset from the snapshot the hop took there (`--cluster-reset-restore-path`) with its kept
 * binary, the others back with their kept binary (where it moved) and server/db moved aside, so they rejoin. Then every
 * server Ready at the old version, the failed one uncordoned, the post-gates again, the agent never
 * touched, and the run fails with exit 1.
 */
const NET = '127.0.141'
const SERVERS = ['rha-cp-1', 'rha-cp-2', 'rha-cp-3']
const ADDRESS: Record<string, string> = { 'rha-cp-1': `${NET}.11`, 'rha-cp-2': `${NET}.12`, 'rha-cp-3': `${NET}.13` }

describe('apply: a moved server of a three-server k3s cluster rolled back by restoring the control plane', () => {
  let l: ExecLab
  const { ok } = openSsh(() => l)
  beforeAll(async () => {
    l = await startExecLab(topology(NET, [{ name: 'rha', distribution: 'k3s', controlPlanes: 3, workers: 1 }]))
    await l.editPlan(rollbackOnFailure())
  }, 60_000)
  afterAll(async () => l?.stop())

  it('plan lists the restore: stop the other servers, reset the first from the snapshot, the others rejoin', async () => {
    const r = await l.cli(['plan', l.plan])
    expect(r.code, r.err).toBe(0)
    const lines = r.out.split('\n')
    const at = lines.findIndex((x) => x.includes('control-plane restore (hop 1)'))
    expect(lines[at]).toMatch(/automatic$/)
    expect(lines[at + 1]!.trim()).toBe('stop-service rha-cp-3, rha-cp-2 → restore-datastore rha-cp-1 → rejoin-datastore rha-cp-2, rha-cp-3 → wait-ready rha-cp-1, rha-cp-2, rha-cp-3  (8 steps; plan --format markdown lists each)')
  })

  it('restores every server from the snapshot, all back at the old version with the API and etcd, the agent untouched', async () => {
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'rha', node: 'rha-cp-2' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    const failed = ev.find((e) => e.type === 'step-failed' && e.step.node === 'rha-cp-2')
    expect(failed.step.action).toBe('wait-ready')
    // cp-1 had finished its upgrade, cp-3 had not started.
    expect(ev.some((e) => e.type === 'node-done' && e.node === 'rha-cp-1')).toBe(true)
    expect(ev.some((e) => e.type === 'node-started' && e.node === 'rha-cp-3')).toBe(false)
    expect(ev.find((e) => e.type === 'rollback-started')).toMatchObject({ node: 'rha-cp-2', path: 'snapshot-restore', detail: expect.stringMatching(/^automatic, every server at once/) })

    // The restore's steps ran in the planned order, each on its server, and changed something.
    const restore = ev.filter((e) => e.type === 'step-done' && /\/hop1\/restore\//.test(e.step.id))
    expect(restore.map((e) => `${e.step.node} ${e.step.action}`)).toEqual([
      'rha-cp-3 stop-service', 'rha-cp-2 stop-service', 'rha-cp-1 restore-datastore', 'rha-cp-2 rejoin-datastore', 'rha-cp-3 rejoin-datastore',
      'rha-cp-1 wait-ready', 'rha-cp-2 wait-ready', 'rha-cp-3 wait-ready',
    ])
    expect(restore.filter((e) => e.step.action !== 'wait-ready').every((e) => e.changed === true)).toBe(true)
    const rbGates = ev.filter((e) => e.type === 'gate-result' && e.during === 'rollback')
    expect(rbGates.map((e) => e.gate)).toEqual(expect.arrayContaining(['kube-proxy-sync', 'api-vip', 'nodes-ready', 'version-skew']))
    expect(rbGates.every((e) => e.status === 'pass' || e.status === 'warn'), JSON.stringify(rbGates.map((e) => [e.gate, e.status, e.summary]))).toBe(true)
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })
    expect(ev.at(-1).message).toMatch(/rolled back: rha-cp-2 back at the old version/)

    // The lab's view: every node at v1.29, Ready, schedulable; the agent never had a mutating step; the API is v1.29.
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ['rha-cp-1', 'v1.29.6+k3s1', 'True', false], ['rha-cp-2', 'v1.29.6+k3s1', 'True', false],
      ['rha-cp-3', 'v1.29.6+k3s1', 'True', false], ['rha-w-1', 'v1.29.6+k3s1', 'True', false],
    ])
    expect(ev.some((e) => e.type === 'step-started' && e.step.node === 'rha-w-1' && e.step.mutates)).toBe(false)
    const version = JSON.parse((await run(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'rha', 'version', '-o', 'json'])).stdout)
    expect(version.serverVersion.gitVersion).toBe('v1.29.6+k3s1')

    // On the machines: the first server was reset from the snapshot (k3s's reset-flag); the others hold their old
    // datastore moved aside and a fresh one the old release wrote; every server runs the old binary.
    expect(await ok(ADDRESS['rha-cp-1']!, 'test -e /var/lib/rancher/k3s/server/db/reset-flag && echo reset')).toBe('reset')
    for (const s of ['rha-cp-2', 'rha-cp-3']) {
      expect(await ok(ADDRESS[s]!, 'ls -d /var/lib/rancher/k3s/server/db.kupgrade-* | wc -l')).toBe('1')
      expect(await ok(ADDRESS[s]!, 'test -e /var/lib/rancher/k3s/server/db/reset-flag || echo fresh')).toBe('fresh')
    }
    for (const s of SERVERS) expect(await ok(ADDRESS[s]!, 'k3s --version | head -n 1')).toMatch(/^k3s version v1\.29\.6\+k3s1 /)

    // The journal: cp-1's upgrade is taken back by the restore, so a later resume upgrades it again.
    const runId = ev[0].runId as string
    const journal = (await import('node:fs')).readFileSync(join(l.dir, '.kupgrade', 'runs', runId, 'journal.jsonl'), 'utf8').trim().split('\n').map((x) => JSON.parse(x))
    const last = (id: string) => journal.filter((e) => e.step === id).at(-1)?.state
    expect(last('rha/rha/hop1/rha-cp-1/replace-binary')).toBe('undone')
    expect(last('rha/rha/hop1/rha-cp-1/uncordon')).toBe('undone')
  }, 420_000)

  it('kupgrade rollback of a finished upgrade: the newest server restores every server; the two before it are said to be taken back with it, without more post-gates', async () => {
    const up = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(up.code, up.err + up.out.slice(-3000)).toBe(0)
    const runId = events(up.out)[0].runId as string
    const r = await l.cli(['rollback', runId, '--yes', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)
    const ev = events(r.out)
    expect(ev.filter((e) => e.type === 'rollback-started').map((e) => [e.node, e.path, e.restoredWith])).toEqual([
      ['rha-w-1', 'previous-version', undefined], ['rha-cp-3', 'snapshot-restore', undefined], ['rha-cp-2', 'snapshot-restore', 'rha-cp-3'], ['rha-cp-1', 'snapshot-restore', 'rha-cp-3'],
    ])
    expect(ev.filter((e) => e.type === 'rollback-done').map((e) => [e.node, e.restoredWith])).toEqual([['rha-w-1', undefined], ['rha-cp-3', undefined], ['rha-cp-2', 'rha-cp-3'], ['rha-cp-1', 'rha-cp-3']])
    // One round of post-gates after each rollback that changed something (the agent's, the restore's), not four.
    expect(ev.filter((e) => e.type === 'gate-result' && e.during === 'rollback' && e.gate === 'nodes-ready')).toHaveLength(2)
    // The restore put back the Lease as the snapshot had it: the lock is taken again, and said to be.
    expect(ev.filter((e) => e.type === 'lock-acquired').map((e) => e.afterRestore ?? false)).toEqual([false, true])
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'done', exitCode: 0, message: expect.stringMatching(/^rolled back: rha\/rha-w-1, rha\/rha-cp-3, rha\/rha-cp-2, rha\/rha-cp-1 /) })
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ['rha-cp-1', 'v1.29.6+k3s1', 'True', false], ['rha-cp-2', 'v1.29.6+k3s1', 'True', false],
      ['rha-cp-3', 'v1.29.6+k3s1', 'True', false], ['rha-w-1', 'v1.29.6+k3s1', 'True', false],
    ])
    // Without --output json, one line each.
    const taken = ev.filter((e) => e.restoredWith)
    expect(taken.map((e) => plainLine(e)?.replace(/^\S+ \S+ /, ''))).toEqual([
      'rha › rha-cp-2: taken back by the restore of the whole control plane in the rollback of rha-cp-3', undefined,
      'rha › rha-cp-1: taken back by the restore of the whole control plane in the rollback of rha-cp-3', undefined,
    ])
  }, 600_000)
})
