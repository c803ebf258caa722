import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KUBECTL, openSsh } from '../lab/helpers.js'
import { waitFor } from '../lab/node/helpers.js'
import { events, rollbackOnFailure, startExecLab, topology, type ExecLab } from './helpers.js'

const run = promisify(execFile)

/**
 * apply on a k3s cluster whose one server keeps its data in SQLite (lab `datastore: sqlite`, no --cluster-init): the
 * pre-hop backup is the documented SQLite one (docs.k3s.io datastore/backup-restore: a copy of server/db and the
 * server token, here with SHA256SUMS), checked on the node over real OpenSSH; the run reaches the target. Then the
 * server never comes back Ready after its upgrade: onFailure rollback puts the copied database and token back with
 * the kept binary (the old binary alone would not start on the moved datastore), Ready at the old version, API too.
 */
const NET = '127.0.137'
const SERVER = `${NET}.11`
const BACKUP = '/var/lib/kupgrade/backup/v1.29.6+k3s1'

const apiVersion = async (l: ExecLab, cluster: string) =>
  JSON.parse((await run(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', cluster, 'version', '-o', 'json'])).stdout).serverVersion.gitVersion as string

describe('apply on a SQLite k3s cluster: the database and token copied with checksums before the hop', () => {
  let l: ExecLab
  const { ok } = openSsh(() => l)
  beforeAll(async () => {
    l = await startExecLab(topology(NET, [{ name: 'sq', distribution: 'k3s', datastore: 'sqlite', controlPlanes: 1, workers: 1 }]))
  }, 60_000)
  afterAll(async () => l?.stop())

  it('backs up server/db and the token into the backup dir with SHA256SUMS, and upgrades both nodes', async () => {
    const token = await ok(SERVER, 'cat /var/lib/rancher/k3s/server/token')
    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)
    const ev = events(r.out)
    const backup = ev.find((e) => e.type === 'step-done' && e.step.action === 'backup')
    expect(backup, 'a backup step ran').toBeDefined()
    expect(backup.step.node).toBe('sq-cp-1')
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'done', exitCode: 0 })
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ['sq-cp-1', 'v1.30.4+k3s1', 'True', false], ['sq-w-1', 'v1.30.4+k3s1', 'True', false],
    ])
    expect(await apiVersion(l, 'sq')).toBe('v1.30.4+k3s1')

    // On the node: no etcd snapshot (there is no etcd), the copy of db/ with the database as v1.29 left it, the token.
    // (beside the hop's kept files: files/, their SHA256SUMS and the ABSENT list of backup-files)
    const listing = (await ok(SERVER, `ls ${BACKUP}`)).split('\n')
    expect(listing).toEqual(expect.arrayContaining(['files', 'sqlite']))
    expect(listing).not.toContain('etcd-snapshot')
    expect(await ok(SERVER, `cd ${BACKUP}/sqlite && sha256sum --check --strict SHA256SUMS`)).toMatch(/^\.\/db\/state\.db: OK$/m)
    const sums = (await ok(SERVER, `cat ${BACKUP}/sqlite/SHA256SUMS`)).split('\n').map((l) => l.split(/\s+/)[1]).sort()
    expect(sums).toEqual(expect.arrayContaining(['./db/state.db', './token']))
    expect(await ok(SERVER, `sed -n 2p ${BACKUP}/sqlite/db/state.db`)).toBe('kupgrade-lab-kine written-by=v1.29.6+k3s1')
    expect(await ok(SERVER, 'sed -n 2p /var/lib/rancher/k3s/server/db/state.db')).toBe('kupgrade-lab-kine written-by=v1.30.4+k3s1')
    expect(await ok(SERVER, `cat ${BACKUP}/sqlite/token`)).toBe(token)
    expect(await ok(SERVER, `stat -c %a ${BACKUP}/sqlite/token`)).toBe('600')
    // Copied with k3s stopped (k3s-io/k3s#1318): its stop checkpointed the WAL into state.db, so no state.db-wal or
    // -shm of a database being written is in the copy, and k3s was started again right after.
    expect(await ok(SERVER, `cd ${BACKUP}/sqlite && find . -type f | sort`)).toBe('./SHA256SUMS\n./db/state.db\n./token')
    // k3s stopped twice: for the copy, and by the upgrade's restart onto the new binary.
    const journal = (await ok(SERVER, 'journalctl -u k3s --no-pager -o cat')).split('\n')
    expect(journal.filter((line) => /^(Stopped|Started) k3s\.service/.test(line)), journal.join('\n')).toEqual(['Stopped k3s.service.', 'Started k3s.service.', 'Stopped k3s.service.', 'Started k3s.service.'])

    // Off the node, next to the plan: every file the node's SHA256SUMS lists, byte for byte, in the index.
    const planDir = dirname(l.plan)
    const all = readFileSync(join(planDir, '.kupgrade/backups/index.jsonl'), 'utf8').trim().split('\n').map((x) => JSON.parse(x))
    // The datastore backup, and the server's kept files (binary, unit, env) beside it: a restore needs both.
    expect(all.map((e) => e.step).sort()).toEqual([backup.step.id, backup.step.id.replace(/\/backup$/, '/sq-cp-1/backup-files')].sort())
    const index = all.filter((e) => e.step === backup.step.id)
    expect(index[0]).toMatchObject({ run: ev.at(-1).runId, cluster: 'sq', node: 'sq-cp-1', hop: 1, step: backup.step.id, version: 'v1.29.6+k3s1' })
    const files: { path: string; remote: string; sha256: string; bytes: number }[] = index[0].files
    expect(files.map((f) => f.remote)).toEqual(expect.arrayContaining([`${BACKUP}/sqlite/db/state.db`, `${BACKUP}/sqlite/token`]))
    expect(files).toHaveLength(sums.length)
    for (const f of files) {
      const local = readFileSync(join(planDir, f.path))
      expect(createHash('sha256').update(local).digest('hex'), f.path).toBe(f.sha256)
      expect(local.length).toBe(f.bytes)
      expect((await ok(SERVER, `sha256sum ${f.remote}`)).split(' ')[0], f.remote).toBe(f.sha256)
      expect(statSync(join(planDir, f.path)).mode & 0o777, f.path).toBe(0o600)
    }
    expect(readFileSync(join(planDir, files.find((f) => f.remote.endsWith('/token'))!.path), 'utf8')).toBe(`${token}\n`)
    expect(statSync(join(planDir, index[0].dir)).mode & 0o777).toBe(0o700)
    expect(backup.evidence.join('\n')).toMatch(new RegExp(`copied off the node: ${files.length} file\\(s\\), \\d+ bytes, each matching its sha256, into ${index[0].dir.replace(/[.+]/g, '\\$&')}`))
  }, 300_000)
})

describe('apply on a SQLite k3s cluster: the moved server rolled back from the copied database', () => {
  let l: ExecLab
  const { ok } = openSsh(() => l)
  beforeAll(async () => {
    l = await startExecLab(topology(NET, [{ name: 'sq', distribution: 'k3s', datastore: 'sqlite', controlPlanes: 1, workers: 1 }]))
    await l.editPlan(rollbackOnFailure())
  }, 60_000)
  afterAll(async () => l?.stop())

  it('puts the copied db and token back with the kept binary: Ready at v1.29 with the API at v1.29, the agent untouched', async () => {
    // An earlier run's backup of the same hop, complete and checksummed, left on the node with a file the node no longer
    // has; and an earlier run's kept files with one too. This run must take its own, in clean folders.
    await ok(SERVER, [
      `mkdir -p ${BACKUP}/sqlite/db ${BACKUP}/files/etc`,
      `printf 'SQLite format 3\\nkupgrade-lab-kine written-by=an-earlier-run\\n' > ${BACKUP}/sqlite/db/state.db`,
      `echo stale > ${BACKUP}/sqlite/db/left-by-an-earlier-run`,
      `echo stale > ${BACKUP}/files/etc/left-by-an-earlier-run`,
      `cd ${BACKUP}/sqlite && find . -type f ! -name 'SHA256SUMS*' -exec sha256sum {} + > SHA256SUMS && echo planted`,
    ].join(' && '))
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'sq', node: 'sq-cp-1' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    expect(ev.find((e) => e.type === 'step-failed' && e.step.node === 'sq-cp-1').step.action).toBe('wait-ready')
    expect(ev.find((e) => e.type === 'rollback-started')).toMatchObject({ node: 'sq-cp-1', path: 'snapshot-restore', detail: expect.stringMatching(/^automatic/) })
    const undo = ev.find((e) => e.type === 'undo-started' && e.step.action === 'replace-binary')
    expect(undo.title).toContain(`(SQLite: ${BACKUP}/sqlite)`)
    expect(ev.filter((e) => e.type === 'undo-done').map((e) => `${e.step.action}:${e.changed}`)).toEqual(['replace-binary:true', 'drain:true'])
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })
    expect(ev.at(-1).message).toMatch(/rolled back: sq-cp-1 back at the old version/)

    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ['sq-cp-1', 'v1.29.6+k3s1', 'True', false], ['sq-w-1', 'v1.29.6+k3s1', 'True', false],
    ])
    expect(ev.some((e) => e.type === 'step-started' && e.step.node === 'sq-w-1' && e.step.mutates)).toBe(false)
    expect(await apiVersion(l, 'sq')).toBe('v1.29.6+k3s1')
    // The database is the copy again (written by v1.29 and run by it since), the server runs the old binary.
    expect(await ok(SERVER, 'sed -n 2p /var/lib/rancher/k3s/server/db/state.db')).toBe('kupgrade-lab-kine written-by=v1.29.6+k3s1')
    expect(await ok(SERVER, 'k3s --version | head -n 1')).toMatch(/^k3s version v1\.29\.6\+k3s1 /)
    expect(await ok(SERVER, 'systemctl is-active k3s')).toBe('active')
    // The backup was this run's, in clean folders: nothing of the earlier one is left to be put back another time.
    expect(await ok(SERVER, `cd ${BACKUP} && find sqlite files -name 'left-by-an-earlier-run' -o -path sqlite/db/db | wc -l`)).toBe('0')
    const listed = (await ok(SERVER, `cut -c67- ${BACKUP}/sqlite/SHA256SUMS | sort`)).split('\n')
    expect(listed).toEqual(expect.arrayContaining(['./db/state.db', './token']))
    // (state.db-wal and -shm beside it while k3s runs)
    expect(listed.filter((f) => !/^\.\/(db\/state\.db(-wal|-shm)?|token)$/.test(f))).toEqual([])
  }, 300_000)

  it('a datastore copy that fails (its backup folder cannot be written) starts k3s again: the run stops, the server up at its version', async () => {
    // The copy is made with k3s stopped; a failure must not leave the only server (and the API) down. The hop's backup
    // folder is a place nothing can be created in (each command of a lab node has a mount namespace of its own, so a
    // full or read-only mount cannot be set up for a later one): the folder for the copy cannot be made.
    await ok(SERVER, `mkdir -p ${BACKUP} && mv ${BACKUP} ${BACKUP}.kept && ln -s /proc/self ${BACKUP} && echo ready`)
    try {
      const r = await l.cli(['apply', l.plan, '--output', 'json'])
      // Nothing was changed yet: the run pauses there (exit 4), to be resumed once the backup can be made.
      expect(r.code, r.err + r.out.slice(-4000)).toBe(4)
      const ev = events(r.out)
      const failed = ev.find((e) => e.type === 'step-failed')
      expect(failed.step).toMatchObject({ action: 'backup', node: 'sq-cp-1' })
      expect(failed.error).toMatch(/mkdir: cannot create directory .\/var\/lib\/kupgrade\/backup\/v1\.29\.6\+k3s1\/sqlite.: No such file or directory/)
      expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'paused', exitCode: 4 })
      expect(ev.some((e) => e.type === 'step-started' && e.step.mutates && !['lock', 'backup'].includes(e.step.action))).toBe(false)
      // Started again by the script's trap: k3s runs, the Node Ready at the old version, the API answering.
      expect(await ok(SERVER, 'systemctl is-active k3s')).toBe('active')
      const journal = (await ok(SERVER, 'journalctl -u k3s --no-pager -o cat')).split('\n')
      expect(journal.filter((line) => /^(Stopped|Started) k3s\.service/.test(line)).slice(-2)).toEqual(['Stopped k3s.service.', 'Started k3s.service.'])
      expect(await apiVersion(l, 'sq')).toBe('v1.29.6+k3s1')
      await waitFor('sq-cp-1 Ready again', () => l.lab.status().clusters[0]!.nodes.every((n) => n.ready === 'True'))
      expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.cordoned])).toEqual([['sq-cp-1', 'v1.29.6+k3s1', false], ['sq-w-1', 'v1.29.6+k3s1', false]])
    } finally {
      await ok(SERVER, `rm -f ${BACKUP} && mv ${BACKUP}.kept ${BACKUP}`)
    }
  }, 300_000)
})
