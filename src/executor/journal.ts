import { closeSync, existsSync, fsync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { KupgradeError } from '../errors.js'
import type { RestoreRequest } from '../planner/restore.js'
import { writeDurable } from '../util/durable.js'

/**
 * The run's journal (execution.md "The journal"): `.kupgrade/runs/<run-id>/journal.jsonl`, a header line, then one
 * entry per state change, each appended and fsynced before the executor takes its next action — so a process killed at
 * any point resumes from exactly what happened. A torn last line (killed mid-write) is ignored, never a crash.
 */

export const JOURNAL_FORMAT = 1

/** Which stages and clusters a run covers (`--stage`, `--cluster`); none named: all of them. */
export interface Selection { stages?: string[]; clusters?: string[] }

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
  selection: Selection
  /** A `kupgrade restore` run: its steps are that restore's (planner/restore.ts), and `resume` plans it again. */
  restore?: RestoreRequest
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
    writeDurable(path, `${JSON.stringify(header)}\n`, { flag: 'wx' })
    return new Journal(path, header, [])
  }

  /** An existing journal, to continue (resume). A torn last line is cut off before appending after it. */
  static open(path: string): Journal {
    const c = readJournal(path)
    if (c.tornTail !== undefined) {
      // Appending after a torn line would glue the next entry to it; rewrite the file without it, fsynced.
      const good = readFileSync(path, 'utf8').split('\n').slice(0, c.entries.length + 1).join('\n') + '\n'
      writeDurable(path, good, { flag: 'w' })
    }
    return new Journal(path, c.header, c.entries)
  }

  /** Appends one entry and fsyncs it; returns it. Nothing happens after a state change until it is on disk. */
  append(e: NewEntry): JournalEntry {
    const entry = this.write(e)
    if (this.fd >= 0) {
      fsyncSync(this.fd)
      this.fsyncs++
    }
    return entry
  }

  /**
   * Appends one entry and resolves once it is on disk, like `append`, without stopping the process meanwhile: the
   * line is written at once (so the file keeps seq order), the fsync runs off the event loop, and entries appended
   * while one is in flight share the next (group commit). `append` blocks every node of a parallel batch for each
   * fsync (milliseconds each, two per step); awaiting this keeps the same rule — no next action until the state
   * change is durable — per node.
   */
  async appendDurable(e: NewEntry): Promise<JournalEntry> {
    const entry = this.write(e)
    await this.durable()
    return entry
  }

  /** How many fsyncs the entries took (for the apply benchmark: group commit makes it fewer than the entries). */
  fsyncs = 0
  /** The fsync in flight, and the one queued after it for every line written since it started. */
  private flushing?: Promise<void>
  private queued?: Promise<void>

  private durable(): Promise<void> {
    if (this.fd < 0) return Promise.resolve()
    if (this.flushing === undefined) {
      const fd = this.fd
      this.fsyncs++
      this.flushing = new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve()))).finally(() => {
        this.flushing = undefined
      })
      return this.flushing
    }
    // The fsync in flight may have started before this line was written: the next one, after it, covers it.
    return (this.queued ??= this.flushing.catch(() => {}).then(() => {
      this.queued = undefined
      return this.durable()
    }))
  }

  private write(e: NewEntry): JournalEntry {
    const entry: JournalEntry = { seq: ++this.seq, time: e.time ?? new Date().toISOString(), step: e.step, state: e.state, attempt: e.attempt }
    if (e.evidence?.length) entry.evidence = e.evidence
    if (e.error !== undefined) entry.error = e.error
    if (e.undo !== undefined) entry.undo = e.undo
    if (e.changed !== undefined) entry.changed = e.changed
    if (this.fd >= 0) writeSync(this.fd, `${JSON.stringify(entry)}\n`)
    this.entries.push(entry)
    this.latest.set(entry.step, entry)
    return entry
  }

  /** The last state of each step. */
  lastStates(): Map<string, JournalEntry> {
    return new Map(this.latest)
  }

  /** Closes the file; an fsync still in flight (appendDurable) finishes first, and what it covers stays durable. */
  close(): void {
    const fd = this.fd
    if (fd < 0) return
    const pending = this.queued ?? this.flushing
    if (pending === undefined) {
      closeSync(fd)
      this.fd = -1
      return
    }
    void pending.catch(() => {}).then(() => this.close())
  }
}

type NewEntry = Omit<JournalEntry, 'seq' | 'time'> & { time?: string }

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
