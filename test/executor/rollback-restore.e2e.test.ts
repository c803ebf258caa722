import { execFile } from 'node:child_process'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { basename, join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KUBECTL } from '../lab/helpers.js'
import { cliKillable, events, expectBackupsCopied, rollbackOnFailure, startExecLab, topology, type ExecLab } from './helpers.js'

const run = promisify(execFile)

/**
 * onFailure: rollback of a control plane that already moved (execution.md "Rollback", last row): the only k3s server,
 * upgraded and restarted, never comes back Ready. Its old binary alone would not start on the moved datastore (the
 * lab's k3s refuses it, as k3s does), so the rollback is the documented restore from the snapshot the hop took first:
 * k3s stopped, the kept binary back, `k3s server --cluster-reset --cluster-reset-restore-path`, started — then Ready
 * at the old version, uncordoned, the post-gates again, and the run fails (exit 1) without touching the agent.
 */
describe('apply: a moved single k3s server rolled back from its pre-hop snapshot', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.122', [{ name: 'sr', distribution: 'k3s', controlPlanes: 1, workers: 1 }]))
    await l.editPlan(rollbackOnFailure())
  }, 60_000)
  afterAll(async () => l?.stop())

  it('restores the server from the snapshot, back at the old version with the API, the agent untouched', async () => {
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'sr', node: 'sr-cp-1' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    const failed = ev.find((e) => e.type === 'step-failed' && e.step.node === 'sr-cp-1')
    expect(failed.step.action).toBe('wait-ready')
    expect(ev.find((e) => e.type === 'rollback-started')).toMatchObject({ node: 'sr-cp-1', path: 'snapshot-restore', detail: expect.stringMatching(/^automatic/) })
    const undo = ev.find((e) => e.type === 'undo-started' && e.step.action === 'replace-binary')
    expect(undo.title).toMatch(/k3s server --cluster-reset --cluster-reset-restore-path=\/var\/lib\/kupgrade\/backup\/v1\.29\.6\+k3s1\/etcd-snapshot\//)
    expect(ev.filter((e) => e.type === 'undo-done').map((e) => `${e.step.action}:${e.changed}`)).toEqual(['replace-binary:true', 'drain:true'])
    const rbGates = ev.filter((e) => e.type === 'gate-result' && e.during === 'rollback')
    expect(rbGates.map((e) => e.gate)).toEqual(expect.arrayContaining(['kube-proxy-sync', 'api-vip', 'nodes-ready', 'version-skew']))
    expect(rbGates.every((e) => e.status === 'pass' || e.status === 'warn'), JSON.stringify(rbGates.map((e) => [e.gate, e.status, e.summary]))).toBe(true)
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })
    expect(ev.at(-1).message).toMatch(/rolled back: sr-cp-1 back at the old version/)

    // The lab's view: both nodes at v1.29, Ready, schedulable; the agent was never cordoned; the API serves v1.29.
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ['sr-cp-1', 'v1.29.6+k3s1', 'True', false], ['sr-w-1', 'v1.29.6+k3s1', 'True', false],
    ])
    expect(ev.some((e) => e.type === 'step-started' && e.step.node === 'sr-w-1' && e.step.mutates)).toBe(false)
    const version = JSON.parse((await run(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'sr', 'version', '-o', 'json'])).stdout)
    expect(version.serverVersion.gitVersion).toBe('v1.29.6+k3s1')
  }, 300_000)

  it('puts the snapshot back from the copy kept next to the plan when the node lost it, then restores', async () => {
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'sr', node: 'sr-cp-1' }
    const backupDir = join(l.dir, 'nodes/sr/sr-cp-1/var/lib/kupgrade/backup/v1.29.6+k3s1')
    const snapshots = join(backupDir, 'etcd-snapshot')
    l.lab.setFault(fault, true)
    // The node loses its backups (snapshot and kept binary) once the hop took and kupgrade copied them, before the
    // binary changes: a disk swapped, a folder cleaned.
    const r = await cliKillable(l, ['apply', l.plan, '--output', 'json'], (e) => {
      if (e.type === 'step-started' && e.step.node === 'sr-cp-1' && e.step.action === 'replace-binary') rmSync(backupDir, { recursive: true, force: true })
      return undefined
    }).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    const copies = expectBackupsCopied(l, 'sr', ev.at(-1).runId)
    expect(copies.map((b) => [b.node, b.version, b.step.replace(/^.*\//, '')]).sort()).toEqual([['sr-cp-1', 'v1.29.6+k3s1', 'backup'], ['sr-cp-1', 'v1.29.6+k3s1', 'backup-files']])
    const restore = ev.find((e) => e.type === 'undo-done' && e.step.action === 'replace-binary')
    expect(restore, JSON.stringify(ev.filter((e) => e.type === 'undo-failed'))).toBeDefined()
    expect(restore.evidence.slice(0, 2).sort()).toEqual(copies.map((c) => `${c.step} on sr-cp-1 was missing or damaged: ${c.sums.length + c.files.length} file(s) put back from ${c.dir} (run ${c.run}), checksums verified on the node`).sort())
    const snapshot = copies.find((b) => b.step.endsWith('/backup'))
    expect(readdirSync(snapshots).sort()).toEqual(['SHA256SUMS', ...snapshot.files.map((f: any) => basename(f.remote))].sort())
    expect(ev.at(-1).message).toMatch(/rolled back: sr-cp-1 back at the old version/)
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ['sr-cp-1', 'v1.29.6+k3s1', 'True', false], ['sr-w-1', 'v1.29.6+k3s1', 'True', false],
    ])
  }, 300_000)

  it('a later run takes its own snapshot, not the one an earlier run left in the same place: what the cluster gained since survives its rollback', async () => {
    // The earlier runs of this file left a checksummed snapshot of the hop's version on the node. The cluster then
    // gains an object (real kubectl); a restore from that old snapshot would silently take it away.
    const kubectl = (...args: string[]) => run(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'sr', ...args])
    const marker = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'made-after-the-last-run', namespace: 'default' }, spec: { holderIdentity: 'someone' } }
    const create = execFile(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'sr', 'create', '-f', '-'])
    create.stdin!.end(JSON.stringify(marker))
    await new Promise((resolve, reject) => create.on('exit', (c) => (c === 0 ? resolve(c) : reject(new Error(`kubectl create exited ${c}`)))))
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'sr', node: 'sr-cp-1' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    const backups = ev.filter((e) => e.type === 'step-done' && ['backup', 'backup-files'].includes(e.step.action) && e.step.node === 'sr-cp-1')
    expect(backups.map((e) => [e.step.action, e.changed, e.evidence.find((x: string) => x.startsWith('not verified first'))])).toEqual([
      ['backup', true, 'not verified first: each run takes its own backup: one an earlier run left here holds the state of then'],
      ['backup-files', true, 'not verified first: each run takes its own backup: one an earlier run left here holds the state of then'],
    ])
    expect(ev.at(-1).message).toMatch(/rolled back: sr-cp-1 back at the old version/)
    // The earlier run's snapshot (copied off the node by that run) is pruned by k3s: one snapshot per hop stays on the
    // server's disk however often a run is retried, and it is the one the list names.
    const snapshots = join(l.dir, 'nodes/sr/sr-cp-1/var/lib/kupgrade/backup/v1.29.6+k3s1/etcd-snapshot')
    const kept = readdirSync(snapshots).filter((f) => f !== 'SHA256SUMS')
    expect(kept).toHaveLength(1)
    expect(readFileSync(join(snapshots, 'SHA256SUMS'), 'utf8')).toMatch(new RegExp(`^[0-9a-f]{64}  ${kept[0]}\\n$`))
    expect(JSON.parse((await kubectl('get', 'lease', '-n', 'default', 'made-after-the-last-run', '-o', 'json')).stdout).spec.holderIdentity).toBe('someone')
    // The Lease the restore brought back is this run's own lock, not the earlier run's.
    expect(ev.filter((e) => e.type === 'lock-acquired').map((e) => [e.afterRestore ?? false, e.takenOverFrom])).toEqual([[false, undefined], [true, undefined]])
  }, 300_000)
})
