import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Journal, JOURNAL_FORMAT, readJournal, type JournalHeader } from '../../src/executor/journal.js'

const header = (runId = 'r1'): JournalHeader => ({
  kind: 'kupgrade-journal', format: JOURNAL_FORMAT, runId, plan: '/p/plan.yaml', planSha256: 'a'.repeat(64), schemaVersion: 1,
  kupgradeVersion: '0.1.0', host: 'h', user: 'u', startedAt: '2026-01-01T00:00:00.000Z', selection: {},
})

describe('journal', () => {
  const dirs: string[] = []
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'kupgrade-journal-'))
    dirs.push(d)
    return join(d, 'runs', 'r1', 'journal.jsonl')
  }
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })

  it('writes a header line, then one entry per line with increasing seq, on disk at once', () => {
    const path = tmp()
    const j = Journal.create(path, header())
    j.append({ step: 'a', state: 'started', attempt: 1 })
    // Readable by another reader before close: every append is written and fsynced, not buffered.
    expect(readJournal(path).entries.map((e) => [e.seq, e.step, e.state])).toEqual([[1, 'a', 'started']])
    j.append({ step: 'a', state: 'done', attempt: 1, evidence: ['x'], changed: true, undo: { commands: ['kubectl uncordon n'] } })
    j.close()
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l))
    expect(lines[0]).toMatchObject({ kind: 'kupgrade-journal', runId: 'r1', planSha256: 'a'.repeat(64) })
    expect(lines[2]).toMatchObject({ seq: 2, step: 'a', state: 'done', attempt: 1, evidence: ['x'], changed: true, undo: { commands: ['kubectl uncordon n'] } })
    expect(() => Journal.create(path, header())).toThrow(/already exists/)
  })

  it('appendDurable: concurrent entries keep seq order on disk and share fsyncs (group commit); each resolves once written and synced', async () => {
    const path = tmp()
    const j = Journal.create(path, header())
    const before = j.fsyncs
    // Twenty nodes journal a state change at the same moment: the first starts an fsync, the other nineteen were
    // written while it ran, so one more fsync covers them all.
    const done = await Promise.all(Array.from({ length: 20 }, (_, i) => j.appendDurable({ step: `n${i}`, state: 'started', attempt: 1 })))
    expect(done.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    expect(j.fsyncs - before).toBe(2)
    expect(readJournal(path).entries.map((e) => e.step)).toEqual(Array.from({ length: 20 }, (_, i) => `n${i}`))
    // One at a time, each entry gets its own fsync, as append gives it.
    await j.appendDurable({ step: 'n0', state: 'done', attempt: 1, changed: true })
    await j.appendDurable({ step: 'n1', state: 'done', attempt: 1, changed: false })
    expect(j.fsyncs - before).toBe(4)
    expect(j.last('n1')).toMatchObject({ seq: 22, state: 'done', changed: false })
    // close() while an fsync is in flight lets it finish: the entry is on disk and later reads see every line.
    const pending = j.appendDurable({ step: 'n2', state: 'done', attempt: 1 })
    j.close()
    await pending
    expect(readJournal(path).entries.at(-1)).toMatchObject({ seq: 23, step: 'n2', state: 'done' })
  })

  it('ignores a torn last line, and continuing cuts it off before appending', () => {
    const path = tmp()
    const j = Journal.create(path, header())
    j.append({ step: 'a', state: 'started', attempt: 1 })
    j.close()
    appendFileSync(path, '{"seq":2,"time":"2026-01-01T00:00:0')
    const c = readJournal(path)
    expect(c.entries).toHaveLength(1)
    expect(c.tornTail).toContain('"seq":2')
    const again = Journal.open(path)
    again.append({ step: 'a', state: 'done', attempt: 1 })
    again.close()
    const after = readJournal(path)
    expect(after.tornTail).toBeUndefined()
    expect(after.entries.map((e) => [e.seq, e.state])).toEqual([[1, 'started'], [2, 'done']])
    expect(again.lastStates().get('a')?.state).toBe('done')
  })

  it('refuses a damaged line that is not the last, naming file and line', () => {
    const path = tmp()
    Journal.create(path, header()).close()
    appendFileSync(path, 'garbage\n{"seq":2,"time":"t","step":"a","state":"done","attempt":1}\n')
    expect(() => readJournal(path)).toThrow(new RegExp(`${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:2: not a JSON line`))
    writeFileSync(path, '{"not":"a header"}\n')
    expect(() => readJournal(path)).toThrow(/:1: not a kupgrade journal header/)
  })
})
