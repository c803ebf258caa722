import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { KupgradeError } from '../errors.js'

/**
 * The run's journal (execution.md "The journal"): `.kupgrade/runs/<run-id>/journal.jsonl`, a header line, then one
 * entry per state change, each appended and fsynced before the executor takes its next action — so a process killed at
 * any point resumes from exactly what happened. A torn last line (killed mid-write) is ignored, never a crash.
 */

export const JOURNAL_FORMAT = 1

export interface JournalHeader {
  kind: 'kupgrade-journal'
  format: typeof JOURNAL_FORMAT
  runId: string
  /** The plan file as given, resolved to an absolute path. */
  plan: string
  planSha256: string
  /** The execution plan's schemaVersion (docs/execution-plan.md). */
  schemaVersion: number
  kupgradeVersion: string
  host: string
  user: string
  startedAt: string
  /** Selections the run was started with, which `resume` repeats (`--stage`, `--cluster`). */
  selection: { stages?: string[]; clusters?: string[] }
}

export type StepState = 'started' | 'done' | 'failed' | 'undoing' | 'undone' | 'skipped' | 'paused' | 'approved'

/** An undo spec as the driver gave it, kept with `done` so rollback (the failure-handling issue) can replay it. */
export type UndoRecord = { commands: string[] } | { irreversible: string } | { nothing: true }

export interface JournalEntry {
  seq: number
  time: string
  step: string
  state: StepState
  attempt: number
  evidence?: string[]
  error?: string
  /** On `done` of a step that changed something: how to undo it. */
  undo?: UndoRecord
  /** On `done`: false when verify found the effect already present and nothing ran. */
  changed?: boolean
}

export interface JournalContents {
  header: JournalHeader
  entries: JournalEntry[]
  /** A torn last line that was ignored (for `status` to mention). */
  tornTail?: string
}

export class Journal {
  private fd: number
  private seq: number
  /** The newest entry per step, kept as entries are appended (the executor asks it while a run goes on). */
  private readonly latest: Map<string, JournalEntry>

  private constructor(readonly path: string, readonly header: JournalHeader, readonly entries: JournalEntry[], inMemory = false) {
    this.fd = inMemory ? -1 : openSync(path, 'a')
    this.seq = entries.at(-1)?.seq ?? 0
    this.latest = lastStates(entries)
  }

  /** The newest entry of one step, now. */
  last(step: string): JournalEntry | undefined {
    return this.latest.get(step)
  }

  /** A dry-run's journal: the same entries, kept in memory only (a dry-run leaves no run behind). */
  static memory(header: JournalHeader): Journal {
    return new Journal('(dry-run: no journal written)', header, [], true)
  }

  /** A new journal: the directory, the header line, fsynced. Refuses to overwrite an existing journal. */
  static create(path: string, header: JournalHeader): Journal {
    mkdirSync(dirname(path), { recursive: true })
    if (existsSync(path)) throw new KupgradeError(`journal ${path} already exists`, { hint: 'use `kupgrade resume` to continue that run' })
    const fd = openSync(path, 'wx')
    try {
      writeSync(fd, `${JSON.stringify(header)}\n`)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    return new Journal(path, header, [])
  }

  /** An existing journal, to continue (resume). A torn last line is cut off before appending after it. */
  static open(path: string): Journal {
    const c = readJournal(path)
    if (c.tornTail !== undefined) {
      // Appending after a torn line would glue the next entry to it; rewrite the file without it, fsynced.
      const good = readFileSync(path, 'utf8').split('\n').slice(0, c.entries.length + 1).join('\n') + '\n'
      const fd = openSync(path, 'w')
      try {
        writeSync(fd, good)
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
    }
    return new Journal(path, c.header, c.entries)
  }

  /** Appends one entry and fsyncs it; returns it. Nothing happens after a state change until it is on disk. */
  append(e: Omit<JournalEntry, 'seq' | 'time'> & { time?: string }): JournalEntry {
    const entry: JournalEntry = { seq: ++this.seq, time: e.time ?? new Date().toISOString(), step: e.step, state: e.state, attempt: e.attempt }
    if (e.evidence?.length) entry.evidence = e.evidence
    if (e.error !== undefined) entry.error = e.error
    if (e.undo !== undefined) entry.undo = e.undo
    if (e.changed !== undefined) entry.changed = e.changed
    if (this.fd >= 0) {
      writeSync(this.fd, `${JSON.stringify(entry)}\n`)
      fsyncSync(this.fd)
    }
    this.entries.push(entry)
    this.latest.set(entry.step, entry)
    return entry
  }

  /** The last state of each step. */
  lastStates(): Map<string, JournalEntry> {
    return new Map(this.latest)
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd)
    this.fd = -1
  }
}

export function lastStates(entries: JournalEntry[]): Map<string, JournalEntry> {
  const m = new Map<string, JournalEntry>()
  for (const e of entries) m.set(e.step, e)
  return m
}

/** Reads a journal. A damaged line anywhere but last is an error naming the line; a damaged last line is torn. */
export function readJournal(path: string): JournalContents {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new KupgradeError(`cannot read journal ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { exitCode: 2 })
  }
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  const parsed: unknown[] = []
  let tornTail: string | undefined
  for (let i = 0; i < lines.length; i++) {
    try {
      parsed.push(JSON.parse(lines[i]!))
    } catch {
      if (i === lines.length - 1 && i > 0) {
        tornTail = lines[i]
        break
      }
      throw new KupgradeError(`${path}:${i + 1}: not a JSON line; the journal is damaged`, { exitCode: 2, hint: 'a journal is only ever appended to: restore it from a backup, or start a new `kupgrade apply` (verify skips what is done)' })
    }
  }
  const header = parsed[0] as JournalHeader | undefined
  if (!header || header.kind !== 'kupgrade-journal') throw new KupgradeError(`${path}:1: not a kupgrade journal header`, { exitCode: 2 })
  return { header, entries: parsed.slice(1) as JournalEntry[], ...(tornTail !== undefined ? { tornTail } : {}) }
}
