import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { appendBackupIndex, backupCopiesFor, copyBackupOffNode, putBackupBackOnNode, type BackupIndexEntry } from '../../src/executor/backup-copy.js'
import { StepFailure } from '../../src/executor/run-program.js'
import type { ExecOptions, NodeTarget, Transport } from '../../src/transport/types.js'
import type { RemoteCommand } from '../../src/transport/quote.js'

/**
 * The copy off the node and back, with a real shell, real sha256sum lists, dd and base64 standing in for the node: a
 * transport that runs each command here. Pieces of 1 MiB, so that a 2.5 MiB snapshot crosses in three.
 */
class LocalShell implements Transport {
  mutations: string[] = []
  reads = 0
  private run(cmd: RemoteCommand, o: ExecOptions = {}) {
    const script = 'script' in cmd ? cmd.script : cmd.join(' ')
    const r = spawnSync('sh', ['-c', script], { input: o.stdin ?? '', maxBuffer: 64 * 1024 * 1024 })
    const out = { stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), exitCode: r.status, retries: 0, durationMs: 0 }
    if (!(o.okExitCodes ?? [0]).includes(r.status ?? -1)) throw new Error(`exit ${r.status}: ${out.stderr}`)
    return out
  }
  async read(_n: NodeTarget, cmd: RemoteCommand, o?: ExecOptions) {
    this.reads++
    return this.run(cmd, o)
  }
  async mutate(_n: NodeTarget, why: string, cmd: RemoteCommand, o?: ExecOptions) {
    this.mutations.push(why)
    return this.run(cmd, o)
  }
  async close() {}
}

describe('executor/backup-copy: a backup off the node and back', () => {
  let dir: string
  let node: string
  let keep: string
  const target = { cluster: 'c1', node: 'cp-1', host: '127.0.0.1' } as NodeTarget
  const lists = () => [join(node, 'etcd-snapshot/SHA256SUMS'), join(node, 'sqlite/SHA256SUMS'), join(node, 'etcd-snapshot.db.sha256')]
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kupgrade-backup-copy-'))
    node = join(dir, 'node')
    keep = join(dir, 'plan')
    mkdirSync(join(node, 'sqlite/db'), { recursive: true })
    mkdirSync(keep)
    writeFileSync(join(node, 'sqlite/db/state.db'), randomBytes(2.5 * 1024 * 1024))
    writeFileSync(join(node, 'sqlite/token'), 'K10secret::server:pw\n', { mode: 0o600 })
    writeFileSync(join(node, 'sqlite/k3s'), '#!/bin/sh\n', { mode: 0o755 })
    writeFileSync(join(node, 'sqlite/empty'), '')
    // As the drivers write them: relative "./" paths (find), and an absolute path (kubeadm's .sha256).
    execFileSync('sh', ['-c', "cd sqlite && find . -type f ! -name 'SHA256SUMS*' -exec sha256sum {} + > SHA256SUMS.new && mv SHA256SUMS.new SHA256SUMS"], { cwd: node })
    writeFileSync(join(node, 'etcd-snapshot.db'), randomBytes(1_000))
    execFileSync('sh', ['-c', `sha256sum ${join(node, 'etcd-snapshot.db')} > etcd-snapshot.db.sha256`], { cwd: node })
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('copies every listed file byte for byte, in pieces, passing over lists that do not exist; files 0600', async () => {
    const ssh = new LocalShell()
    const r = await copyBackupOffNode(ssh, target, lists(), join(keep, 'b'), keep, undefined, 1)
    expect(r.sums).toEqual([join(node, 'sqlite/SHA256SUMS'), join(node, 'etcd-snapshot.db.sha256')])
    expect(r.files.map((f) => f.remote).sort()).toEqual(['etcd-snapshot.db', 'sqlite/db/state.db', 'sqlite/empty', 'sqlite/k3s', 'sqlite/token'].map((p) => join(node, p)))
    expect(Object.fromEntries(r.files.map((f) => [f.remote.slice(node.length + 1), f.mode]))).toMatchObject({ 'sqlite/k3s': '755', 'sqlite/token': '600' })
    for (const f of r.files) {
      expect(readFileSync(join(keep, f.path)).equals(readFileSync(f.remote)), f.remote).toBe(true)
      expect(f.bytes).toBe(statSync(f.remote).size)
      expect(statSync(join(keep, f.path)).mode & 0o777).toBe(0o600)
    }
    expect(ssh.mutations).toEqual([])
    // The manifest, the 2.5 MiB database in three pieces, and the four small files together in one read.
    expect(ssh.reads).toBe(5)
  })

  it('reads small files together only as many as fit in one piece', async () => {
    mkdirSync(join(node, 'many'))
    for (const n of ['a', 'b', 'c']) writeFileSync(join(node, 'many', n), randomBytes(400 * 1024))
    execFileSync('sh', ['-c', 'cd many && sha256sum a b c > SHA256SUMS'], { cwd: node })
    const ssh = new LocalShell()
    const r = await copyBackupOffNode(ssh, target, [join(node, 'many/SHA256SUMS')], join(keep, 'b'), keep, undefined, 1)
    for (const f of r.files) expect(readFileSync(join(keep, f.path)).equals(readFileSync(f.remote)), f.remote).toBe(true)
    expect(r.files.map((f) => f.remote)).toEqual(['a', 'b', 'c'].map((n) => join(node, 'many', n)))
    // 400 KiB + 400 KiB fit in a 1 MiB piece, a third does not: the manifest and two reads.
    expect(ssh.reads).toBe(3)
  })

  it('refuses a file that no longer matches its checksum, naming node and file', async () => {
    writeFileSync(join(node, 'sqlite/token'), 'changed\n')
    const err = await copyBackupOffNode(new LocalShell(), target, lists(), join(keep, 'b'), keep, undefined, 1).catch((e) => e)
    expect(err).toBeInstanceOf(StepFailure)
    expect(err.message).toMatch(new RegExp(`the copy of ${join(node, 'sqlite/token')} read from c1/cp-1 has sha256 [0-9a-f]{64}, its checksum list says [0-9a-f]{64}: the backup on the node is damaged`))
  })

  it('refuses a listed file that is gone from the node, naming it, before copying anything', async () => {
    rmSync(join(node, 'sqlite/token'))
    const ssh = new LocalShell()
    const err = await copyBackupOffNode(ssh, target, lists(), join(keep, 'b'), keep, undefined, 1).catch((e) => e)
    expect(err).toBeInstanceOf(StepFailure)
    expect(err.message).toBe(`c1/cp-1 listed the backup file ${JSON.stringify(join(node, 'sqlite/token'))} without a sha256, size and mode`)
    expect(ssh.mutations).toEqual([])
  })

  it('fails, saying which lists it looked for, when the backup left none', async () => {
    const err = await copyBackupOffNode(new LocalShell(), target, [join(node, 'nothing/SHA256SUMS')], join(keep, 'b'), keep).catch((e) => e)
    expect(err.message).toContain(`none of the checksum lists exists: ${join(node, 'nothing/SHA256SUMS')}`)
  })

  it('puts a lost backup back from the copy, in pieces, and leaves an intact one alone', async () => {
    const ssh = new LocalShell()
    const copied = await copyBackupOffNode(ssh, target, lists(), join(keep, 'b'), keep, undefined, 1)
    const entry: BackupIndexEntry = { run: 'r1', cluster: 'c1', node: 'cp-1', hop: 1, step: 's', version: 'v1', time: '', dir: 'b', ...copied }
    const original = new Map(copied.files.map((f) => [f.remote, readFileSync(f.remote)]))
    expect(await putBackupBackOnNode(ssh, target, keep, entry, undefined, 1)).toEqual([])
    expect(ssh.mutations).toEqual([])

    rmSync(join(node, 'sqlite'), { recursive: true })
    writeFileSync(join(node, 'etcd-snapshot.db'), 'damaged')
    const evidence = await putBackupBackOnNode(ssh, target, keep, entry, undefined, 1)
    expect(evidence).toEqual(['s on cp-1 was missing or damaged: 7 file(s) put back from b (run r1), checksums verified on the node'])
    for (const [remote, bytes] of original) expect(readFileSync(remote).equals(bytes), remote).toBe(true)
    expect(ssh.mutations.filter((m) => m.includes('state.db'))).toHaveLength(3)
    expect(statSync(join(node, 'sqlite/token')).mode & 0o777).toBe(0o600)
    expect(statSync(join(node, 'sqlite/k3s')).mode & 0o777).toBe(0o755)
  })

  it("a restore reads its node's own backups, or of another node's only the named files (kubeadm: the first node's snapshot)", () => {
    const entry = (node: string, step: string, files: string[], sums: string[], run = 'r1'): BackupIndexEntry =>
      ({ run, cluster: 'c1', node, hop: 1, step, version: 'v1.29.6', time: '', dir: `d/${node}/${step}`, sums, files: files.map((f) => ({ path: f, remote: f, sha256: '', bytes: 0, mode: '600' })) })
    const snap = '/var/lib/kupgrade/backup/v1.29.6/etcd-snapshot.db'
    appendBackupIndex(keep, entry('cp-1', 'backup', [snap], [`${snap}.sha256`]))
    appendBackupIndex(keep, entry('cp-1', 'backup-files', ['/var/lib/kupgrade/backup/v1.29.6/files/etc/kubernetes/admin.conf'], ['/var/lib/kupgrade/backup/v1.29.6/SHA256SUMS']))
    appendBackupIndex(keep, entry('cp-2', 'backup-files', ['/var/lib/kupgrade/backup/v1.29.6/files/etc/kubernetes/admin.conf'], ['/var/lib/kupgrade/backup/v1.29.6/SHA256SUMS']))
    expect(backupCopiesFor(keep, 'c1', 'cp-2', { release: 'v1.29.6' }).map((e) => `${e.node} ${e.step}`)).toEqual(['cp-2 backup-files'])
    // Never cp-1's own /etc/kubernetes onto cp-2: only the snapshot and its checksum list.
    expect(backupCopiesFor(keep, 'c1', 'cp-2', { release: 'v1.29.6', from: { node: 'cp-1', paths: [snap, `${snap}.sha256`] } }).map((e) => `${e.node} ${e.step}`)).toEqual(['cp-1 backup'])
    expect(backupCopiesFor(keep, 'c1', 'cp-2', { release: 'v1.29.6', from: { node: 'cp-1', paths: [snap] } })).toEqual([])
  })
})
