import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { backupReadScript, parseBackupReadBack } from '../../src/executor/backup-copy.js'
import { StepFailure } from '../../src/executor/run-program.js'

/** The node side of the copy, run by a real shell against real sha256sum lists, and the checks on this side. */
describe('executor/backup-copy: reading a backup back off the node', () => {
  let dir: string
  const marker = '@@kupgrade-test'
  const run = (sums: string[]) => spawnSync('sh', ['-c', backupReadScript(sums, marker)], { encoding: 'utf8' })
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kupgrade-backup-copy-'))
    mkdirSync(join(dir, 'sqlite/db'), { recursive: true })
    writeFileSync(join(dir, 'sqlite/db/state.db'), randomBytes(70_000))
    writeFileSync(join(dir, 'sqlite/token'), 'K10secret::server:pw\n')
    // As the drivers write them: relative "./" paths (find), plain names, and an absolute path (kubeadm's .sha256).
    execFileSync('sh', ['-c', "cd sqlite && find . -type f ! -name 'SHA256SUMS*' -exec sha256sum {} + > SHA256SUMS.new && mv SHA256SUMS.new SHA256SUMS"], { cwd: dir })
    writeFileSync(join(dir, 'etcd-snapshot.db'), randomBytes(1_000))
    execFileSync('sh', ['-c', `sha256sum ${join(dir, 'etcd-snapshot.db')} > etcd-snapshot.db.sha256`], { cwd: dir })
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('returns every listed file byte for byte with its list, passing over lists that do not exist', () => {
    const r = run([join(dir, 'etcd-snapshot/SHA256SUMS'), join(dir, 'sqlite/SHA256SUMS'), join(dir, 'etcd-snapshot.db.sha256')])
    expect(r.status, r.stderr).toBe(0)
    const back = parseBackupReadBack(r.stdout, marker, 'c/n')
    expect(back.sums.map((s) => s.remote)).toEqual([join(dir, 'sqlite/SHA256SUMS'), join(dir, 'etcd-snapshot.db.sha256')])
    expect(back.files.map((f) => f.remote).sort()).toEqual([join(dir, 'etcd-snapshot.db'), join(dir, 'sqlite/db/state.db'), join(dir, 'sqlite/token')])
    for (const f of back.files) expect(f.data.equals(execFileSync('cat', [f.remote])), f.remote).toBe(true)
  })

  it('refuses a file that no longer matches its checksum, naming node and file', () => {
    writeFileSync(join(dir, 'sqlite/token'), 'changed\n')
    const r = run([join(dir, 'sqlite/SHA256SUMS')])
    let err: unknown
    try {
      parseBackupReadBack(r.stdout, marker, 'c1/cp-1')
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(StepFailure)
    expect((err as Error).message).toMatch(new RegExp(`the copy of ${join(dir, 'sqlite/token')} read from c1/cp-1 has sha256 [0-9a-f]{64}, its checksum list says [0-9a-f]{64}`))
  })

  it('fails, saying which lists it looked for, when the backup left none', () => {
    const r = run([join(dir, 'nothing/SHA256SUMS')])
    expect(r.status).toBe(3)
    expect(r.stderr).toContain(`none of the checksum lists exists: ${join(dir, 'nothing/SHA256SUMS')}`)
    expect(() => parseBackupReadBack(r.stdout, marker, 'c/n')).toThrow(/no checksum list came back from c\/n/)
  })
})
