import { escapeControl, escapeControlKeepLines } from './util/escape.js'

/**
 * Every error a user can cause or meet is a KupgradeError with an exit code; cli/main.ts is the only place that
 * turns one into process output, so no stack trace reaches the user for bad input.
 */
export const ExitCode = {
  ok: 0,
  failed: 1,
  invalid: 2,
  blocked: 3,
  paused: 4,
  interrupted: 130,
} as const
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export class KupgradeError extends Error {
  readonly exitCode: number
  /** One line telling the user what to do about it. */
  readonly hint?: string
  constructor(message: string, options: { exitCode?: number; hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.exitCode = options.exitCode ?? ExitCode.failed
    this.hint = options.hint
  }
}

/** Bad command-line usage (unknown flag, missing argument). */
export class UsageError extends KupgradeError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.invalid, hint })
  }
}

/** One problem in a plan (or topology) file, located to the character. */
export interface Problem {
  file: string
  line: number
  col: number
  message: string
  severity?: 'error' | 'warning'
  /** A warning that gate `gate` of cluster `cluster` reports too when a run evaluates it: the run says it once, there. */
  alsoGate?: { gate: string; cluster: string }
  /** The cluster a problem under `spec.clusters[i]` is about: a run that does not cover it does not say its warnings. */
  cluster?: string
}

/** `file:line:col: message`, with `warning: ` before the message for warnings (the form editors and CI matchers parse). */
export const formatProblem = (p: Problem): string =>
  escapeControl(`${p.file}:${p.line}:${p.col}: ${p.severity === 'warning' ? 'warning: ' : ''}${p.message}`)

/** At most this many problems are printed: a generated plan with 150,000 unknown keys must not print 150,000 lines. */
export const MAX_PRINTED_PROBLEMS = 50

/** The problems as printed lines: the first MAX_PRINTED_PROBLEMS, then one "… and N more" line. */
export function formatProblems(problems: readonly Problem[], max = MAX_PRINTED_PROBLEMS): string[] {
  const lines = problems.slice(0, max).map(formatProblem)
  if (problems.length > max) {
    const rest = problems.length - max
    lines.push(`${escapeControl(problems[max]!.file)}: and ${rest} more problem${rest === 1 ? '' : 's'} (fix these first, then validate again)`)
  }
  return lines
}

/** A plan that failed validation: carries every problem at once, never just the first. */
export class PlanError extends KupgradeError {
  readonly problems: Problem[]
  constructor(problems: Problem[]) {
    super(formatProblems(problems).join('\n'), {
      exitCode: ExitCode.invalid,
      hint: 'fix the problems above; nothing was changed',
    })
    this.problems = problems
  }
}

/** A command on a node (or a local tool such as kubectl) that failed. Never carries secrets: callers redact first. */
export class RemoteCommandError extends KupgradeError {
  readonly node: string
  readonly host: string
  readonly command: string
  readonly exitCode_: number | null
  readonly stderrTail: string
  /**
   * The transport failed under the command — its SSH connection dropped, or the API server did not answer — so the
   * command itself gave no answer: its effect is unknown, and a later attempt may succeed where this one could not.
   */
  readonly transient: boolean
  constructor(a: { node: string; host: string; command: string; exitCode: number | null; stderr: string; cluster?: string; hint?: string; cause?: unknown; transient?: boolean }) {
    // stderr comes from the node or the API server: its ESC sequences must not reach the user's terminal.
    const tail = escapeControlKeepLines(tailLines(a.stderr, 10))
    const where = a.cluster ? `${a.cluster}/${a.node}` : a.node
    super(
      `command failed on ${where} (${a.host}) with ${a.exitCode === null ? 'no exit code' : `exit code ${a.exitCode}`}: ${commandInOneLine(a.command)}${tail ? `\n${indent(tail)}` : ''}`,
      { hint: a.hint, cause: a.cause },
    )
    this.node = a.node
    this.host = a.host
    this.command = a.command
    this.exitCode_ = a.exitCode
    this.stderrTail = tail
    this.transient = a.transient ?? false
  }
}

/**
 * Why a command failed, on one line: its error's first line (the command and its exit), then the lines under it, which
 * are what it printed itself (the API's Status message, a timeout, a refused connection, a missing context). A user
 * who loses the lock, or reads the list of nodes and clusters that could not be read, needs the real reason, not
 * only "exit code 1".
 */
export function failureReason(err: unknown): string {
  const message = (err as { message?: unknown } | undefined)?.message
  const [head = '', ...under] = (typeof message === 'string' ? message : String(err)).split('\n').map((l) => l.trim()).filter(Boolean)
  return under.length ? `${head}: ${under.join('; ')}` : head
}

/** A gate that blocked before any change (exit 3). */
export class GateBlockedError extends KupgradeError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.blocked, hint })
  }
}

/**
 * A failed command as its error's first line names it. A driver's script (a dozen lines of `set -e`, `if`, `eval`)
 * printed whole buried what the node said under it, and a one-line view of the error showed only `set -e`: a script
 * is named by its length and its last line that does something, which is the command it exists for. The full
 * text stays on the error (`command`).
 */
export function commandInOneLine(command: string): string {
  const lines = command.trim().split('\n').map((l) => l.trim()).filter(Boolean)
  const one = (l: string) => (l.length > MAX_COMMAND_SHOWN ? `${l.slice(0, MAX_COMMAND_SHOWN)}…` : l)
  if (lines.length <= 1) return one(lines[0] ?? '')
  const last = lines.findLast((l) => !SHELL_CLOSERS.test(l)) ?? lines.at(-1)!
  return `a ${lines.length}-line script ending in: ${one(last)}`
}
const MAX_COMMAND_SHOWN = 300
/** Lines that only close a block: they say nothing about what the script does. */
const SHELL_CLOSERS = /^(fi|done|esac|\}|\)|;;|else)[;\s]*$/

/**
 * A note about a failure (what was left cordoned, what was rolled back, how to go on) joins its first line, the one
 * that says what failed; the lines under it (a command's stderr) stay last, so the note is not lost after them.
 */
export function addToHeadline(message: string, note: string): string {
  const i = message.indexOf('\n')
  return i < 0 ? `${message}${note}` : `${message.slice(0, i)}${note}${message.slice(i)}`
}

export const tailLines = (text: string, n: number): string => text.trimEnd().split('\n').slice(-n).join('\n').trim()
const indent = (text: string): string => text.split('\n').map((l) => `    ${l}`).join('\n')
