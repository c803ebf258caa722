import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Journal, JOURNAL_FORMAT } from '../../src/executor/journal.js'
import { findRun } from '../../src/executor/runs.js'

/** Which run a command without RUN means: resume the newest unfinished one; status that, else the newest. */
describe('findRun without a run named', () => {
  const dirs: string[] = []
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })
  /** A runs dir holding one journal per [id, last run state or none (killed)]. */
  const runsWith = (runs: [string, 'done' | 'failed' | undefined][]): string => {
    const cwd = mkdtempSync(join(tmpdir(), 'kupgrade-runs-'))
    dirs.push(cwd)
    for (const [runId, state] of runs) {
      const j = Journal.create(join(cwd, '.kupgrade', 'runs', runId, 'journal.jsonl'), {
        kind: 'kupgrade-journal', format: JOURNAL_FORMAT, runId, plan: join(cwd, 'plan.yaml'), planSha256: 'a'.repeat(64), schemaVersion: 1,
        kupgradeVersion: '0.1.0', host: 'h', user: 'u', startedAt: '2026-12-05T00:00:00.000Z', selection: {},
      })
      if (state) j.append({ step: 'run', state, attempt: 1 })
      j.close()
    }
    return cwd
  }
  const id = (path: string) => path.split('/').at(-2)

  it('prefers the newest unfinished run, for resume and status alike', () => {
    const cwd = runsWith([['20261205T010000Z-aaaa', 'failed'], ['20261205T020000Z-bbbb', 'done']])
    expect(id(findRun(undefined, cwd))).toBe('20261205T010000Z-aaaa')
    expect(id(findRun(undefined, cwd, undefined, { orNewest: true }))).toBe('20261205T010000Z-aaaa')
  })

  it('when every run finished: resume has nothing to take up; status shows the newest run', () => {
    const cwd = runsWith([['20261205T010000Z-aaaa', 'done'], ['20261205T020000Z-bbbb', 'done']])
    expect(() => findRun(undefined, cwd)).toThrow(/no unfinished run under/)
    expect(id(findRun(undefined, cwd, undefined, { orNewest: true }))).toBe('20261205T020000Z-bbbb')
  })

  it('with no run at all, says so for status too', () => {
    const cwd = runsWith([])
    expect(() => findRun(undefined, cwd, undefined, { orNewest: true })).toThrow(/^no run under /)
  })
})
