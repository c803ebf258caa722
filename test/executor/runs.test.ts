import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { Journal, JOURNAL_FORMAT } from '../../src/executor/journal.js'
import { findRun } from '../../src/executor/runs.js'
import { runCli } from '../helpers/run-cli.js'

/** Which run a command without RUN means: resume the newest unfinished one; status and rollback the newest. */
describe('findRun without a run named', () => {
  const dirs: string[] = []
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })
  /** A runs dir holding one journal per [id, last run state or none (killed), plan file name]. */
  const runsWith = (runs: [string, 'done' | 'failed' | 'rolled-back' | undefined, string?][]): string => {
    const cwd = mkdtempSync(join(tmpdir(), 'kupgrade-runs-'))
    dirs.push(cwd)
    for (const [runId, state, plan = 'plan.yaml'] of runs) {
      writeFileSync(join(cwd, plan), 'kind: UpgradePlan\n')
      const j = Journal.create(join(cwd, '.kupgrade', 'runs', runId, 'journal.jsonl'), {
        kind: 'kupgrade-journal', format: JOURNAL_FORMAT, runId, plan: join(cwd, plan), planSha256: 'a'.repeat(64), schemaVersion: 1,
        kupgradeVersion: '0.1.0', host: 'h', user: 'u', startedAt: '2026-12-05T00:00:00.000Z', selection: {},
      })
      // (`kupgrade rollback` ends its run done, with rolled-back as the status: executor/run.ts.)
      if (state) j.append({ step: 'run', state: state === 'rolled-back' ? 'done' : state, attempt: 1, evidence: [state] })
      j.close()
    }
    return cwd
  }
  const id = (path: string) => path.split('/').at(-2)

  it('resume takes up the newest unfinished run; status shows the newest run, however it ended', () => {
    const cwd = runsWith([['20261205T010000Z-aaaa', 'failed'], ['20261205T020000Z-bbbb', 'done'], ['20261205T030000Z-cccc', 'rolled-back']])
    // A run `kupgrade rollback` took back is finished: a new apply goes forward again, not a resume of it.
    expect(id(findRun(undefined, cwd))).toBe('20261205T010000Z-aaaa')
    expect(id(findRun(undefined, cwd, undefined, { anyStatus: true }))).toBe('20261205T030000Z-cccc')
  })

  it('when every run finished: resume has nothing to take up', () => {
    const cwd = runsWith([['20261205T010000Z-aaaa', 'done'], ['20261205T020000Z-bbbb', 'done']])
    expect(() => findRun(undefined, cwd)).toThrow(/no unfinished run under/)
    expect(id(findRun(undefined, cwd, undefined, { anyStatus: true }))).toBe('20261205T020000Z-bbbb')
  })

  it('a plan, or the folder holding it, names its runs: from anywhere, as `apply PLAN` printed them', () => {
    const cwd = runsWith([['20261205T010000Z-aaaa', 'failed'], ['20261205T020000Z-bbbb', 'done'], ['20261205T030000Z-cccc', undefined, 'other.yaml']])
    const elsewhere = mkdtempSync(join(tmpdir(), 'kupgrade-runs-elsewhere-'))
    dirs.push(elsewhere)
    // The plan: its own runs only (other.yaml's killed run beside it is not plan.yaml's).
    expect(id(findRun(join(cwd, 'plan.yaml'), elsewhere))).toBe('20261205T010000Z-aaaa')
    expect(id(findRun(join(cwd, 'plan.yaml'), elsewhere, undefined, { anyStatus: true }))).toBe('20261205T020000Z-bbbb')
    expect(id(findRun(join(cwd, 'other.yaml'), elsewhere))).toBe('20261205T030000Z-cccc')
    // Its folder, relative to where the command runs: every run there.
    expect(id(findRun('.', cwd, undefined, { anyStatus: true }))).toBe('20261205T030000Z-cccc')
    // A journal file and a run directory still mean themselves.
    const journal = join(cwd, '.kupgrade', 'runs', '20261205T020000Z-bbbb', 'journal.jsonl')
    expect(findRun(journal, elsewhere)).toBe(journal)
    expect(findRun(join(cwd, '.kupgrade', 'runs', '20261205T020000Z-bbbb'), elsewhere)).toBe(journal)
    mkdirSync(join(elsewhere, 'empty'))
    expect(() => findRun('empty', elsewhere)).toThrow(/no run empty: not a journal, a run directory, a run id under .*, or a plan \(or its folder\) with runs beside it/)
    writeFileSync(join(elsewhere, 'new.yaml'), 'kind: UpgradePlan\n')
    expect(() => findRun('new.yaml', elsewhere)).toThrow(/^no unfinished run of .*new\.yaml under /)
  })

  it('with no run at all, says so for status too', () => {
    const cwd = runsWith([])
    expect(() => findRun(undefined, cwd, undefined, { anyStatus: true })).toThrow(/^no run under /)
  })
})

describe('kupgrade resume of a run kupgrade rollback took back', () => {
  it('is refused (exit 2) with the way forward, and nothing is touched', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'kupgrade-resume-rolled-back-'))
    try {
      writeFileSync(join(cwd, 'plan.yaml'), 'kind: UpgradePlan\n')
      const path = join(cwd, '.kupgrade', 'runs', '20261205T030000Z-cccc', 'journal.jsonl')
      const j = Journal.create(path, {
        kind: 'kupgrade-journal', format: JOURNAL_FORMAT, runId: '20261205T030000Z-cccc', plan: join(cwd, 'plan.yaml'), planSha256: 'a'.repeat(64), schemaVersion: 1,
        kupgradeVersion: '0.1.0', host: 'h', user: 'u', startedAt: '2026-12-05T00:00:00.000Z', selection: {},
      })
      j.append({ step: 'run', state: 'done', attempt: 1, evidence: ['rolled-back'] })
      j.close()
      const before = readFileSync(path, 'utf8')
      const r = await runCli(['resume', '20261205T030000Z-cccc'], { env: {}, cwd })
      expect(r.code).toBe(2)
      expect(r.err).toContain('run 20261205T030000Z-cccc was taken back by kupgrade rollback: it is finished, there is nothing to resume')
      expect(r.err).toContain('start a new run: kupgrade apply plan.yaml')
      expect(readFileSync(path, 'utf8')).toBe(before)
      expect(readdirSync(join(cwd, '.kupgrade', 'runs'))).toEqual(['20261205T030000Z-cccc'])
    } finally {
      rmSync(cwd, { recursive: true, force: true })
    }
  })
})

/**
 * A run whose journal has no end yet: `status` once said "unfinished … to continue: kupgrade resume" of a run still
 * going in another terminal (whose resume the lock then refused). It is running while its process holds the lock file
 * beside the runs; once that process is gone, unfinished (killed), to be resumed.
 */
describe('status of a run without its end', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'kupgrade-running-'))
  afterEach(() => rmSync(join(cwd, '.kupgrade', 'runs', 'apply.lock'), { force: true }))
  afterAll(() => rmSync(cwd, { recursive: true, force: true }))
  const runId = '20261206T120000Z-abcd'
  writeFileSync(join(cwd, 'plan.yaml'), 'kind: UpgradePlan\n')
  Journal.create(join(cwd, '.kupgrade', 'runs', runId, 'journal.jsonl'), {
    kind: 'kupgrade-journal', format: JOURNAL_FORMAT, runId, plan: join(cwd, 'plan.yaml'), planSha256: 'a'.repeat(64), schemaVersion: 1,
    kupgradeVersion: '0.1.0', host: hostname(), user: 'u', startedAt: '2026-12-06T12:00:00.000Z', selection: {},
  }).close()
  const lockedBy = (pid: number) => writeFileSync(join(cwd, '.kupgrade', 'runs', 'apply.lock'), `${JSON.stringify({ runId, pid, host: hostname(), since: '2026-12-06T12:00:00.000Z' })}\n`)
  const status = async () => (await runCli(['status'], { cwd, env: { PATH: process.env.PATH } })).out

  it('running while its process holds the lock: no resume offered', async () => {
    lockedBy(process.pid)
    const out = await status()
    expect(out).toMatch(new RegExp(`^run ${runId}: running — pid ${process.pid} on host ${hostname()}\\n`))
    expect(out).toContain('\n  next: let it finish')
    expect(out).not.toContain('kupgrade resume')
    expect((await runCli(['runs'], { cwd, env: { PATH: process.env.PATH } })).out).toMatch(new RegExp(`^${runId}\\s+running\\s`, 'm'))
  })

  it('unfinished once that process is gone, or with no lock: resume it', async () => {
    const gone = spawnSync('true').pid!
    lockedBy(gone)
    expect(await status()).toMatch(new RegExp(`^run ${runId}: unfinished\\n[^]*\\n  to continue: kupgrade resume \\.kupgrade/runs/${runId}\\n$`))
    rmSync(join(cwd, '.kupgrade', 'runs', 'apply.lock'))
    expect(await status()).toMatch(/: unfinished\n/)
  })
})

/** A failed run whose onFailure rollback took its steps back: status counted them nowhere ("0 failed (of 48 journaled)"). */
describe('status of a run whose failed node was rolled back', () => {
  it('counts the steps taken back as undone', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'kupgrade-undone-'))
    try {
      writeFileSync(join(cwd, 'plan.yaml'), 'kind: UpgradePlan\n')
      const j = Journal.create(join(cwd, '.kupgrade', 'runs', '20261206T130000Z-dddd', 'journal.jsonl'), {
        kind: 'kupgrade-journal', format: JOURNAL_FORMAT, runId: '20261206T130000Z-dddd', plan: join(cwd, 'plan.yaml'), planSha256: 'a'.repeat(64), schemaVersion: 1,
        kupgradeVersion: '0.1.0', host: 'h', user: 'u', startedAt: '2026-12-06T13:00:00.000Z', selection: {},
      })
      j.append({ step: 's/c/hop1/w/cordon', state: 'done', attempt: 1, changed: true })
      j.append({ step: 's/c/hop1/w/wait-ready', state: 'failed', attempt: 1, error: 'timed out' })
      j.append({ step: 's/c/hop1/w/cordon', state: 'undone', attempt: 1, evidence: ['rolled back'] })
      j.append({ step: 's/c/hop1/w/wait-ready', state: 'undone', attempt: 1, evidence: ['rolled back'] })
      j.append({ step: 's/c/hop1/x/cordon', state: 'skipped', attempt: 1, evidence: ['already at v1.30.4'] })
      j.append({ step: 'run', state: 'failed', attempt: 1, evidence: ['failed'], error: 'c/w: … rolled back: w' })
      j.close()
      const out = (await runCli(['status'], { cwd, env: { PATH: process.env.PATH } })).out
      expect(out).toContain('\n  steps: 0 done, 1 skipped, 0 failed, 2 undone (rolled back) (of 3 journaled)\n')
      // The list of runs says the same (it said "0 done, 1 skipped, 0 failed" of a failed run).
      const list = (await runCli(['runs'], { cwd, env: { PATH: process.env.PATH } })).out
      expect(list).toMatch(/20261206T130000Z-dddd +failed +2026-12-06T13:00:00Z +0 done, 1 skipped, 0 failed, 2 undone \(rolled back\) +/)
      expect(out).toContain('\n  to continue: kupgrade resume .kupgrade/runs/20261206T130000Z-dddd\n')

      // A later run of the same plan finished it (apply again after the fix): resuming this one would find nothing.
      // One over another part of the plan (--cluster), or of another plan, did not.
      const later = (id: string, sha: string, selection: object) => {
        const l = Journal.create(join(cwd, '.kupgrade', 'runs', id, 'journal.jsonl'), {
          kind: 'kupgrade-journal', format: JOURNAL_FORMAT, runId: id, plan: join(cwd, 'plan.yaml'), planSha256: sha, schemaVersion: 1,
          kupgradeVersion: '0.1.0', host: 'h', user: 'u', startedAt: '2026-12-06T14:00:00.000Z', selection,
        })
        l.append({ step: 'run', state: 'done', attempt: 1, evidence: ['done'] })
        l.close()
      }
      later('20261206T140000Z-eeee', 'b'.repeat(64), {})
      later('20261206T140100Z-ffff', 'a'.repeat(64), { clusters: ['other'] })
      const status = async () => (await runCli(['status', '20261206T130000Z-dddd'], { cwd, env: { PATH: process.env.PATH } })).out
      expect(await status()).toContain('\n  to continue: kupgrade resume ')
      later('20261206T140200Z-0000', 'a'.repeat(64), {})
      const finishedLater = await status()
      // The time the later run finished is its journal's last entry's (written now, whatever the date).
      const finishedAt = JSON.parse(readFileSync(join(cwd, '.kupgrade', 'runs', '20261206T140200Z-0000', 'journal.jsonl'), 'utf8').trim().split('\n').at(-1)!).time
      expect(finishedLater.split('\n').slice(-2)).toEqual([`  next: nothing — run 20261206T140200Z-0000, started later from the same plan, finished it (${finishedAt})`, ''])
      expect(finishedLater).not.toContain('kupgrade resume')
    } finally {
      rmSync(cwd, { recursive: true, force: true })
    }
  })
})
