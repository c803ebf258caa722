import type { RemoteCommand } from '../transport/quote.js'

/**
 * The contract between drivers and the executor: a step's commands as data. A driver turns one planned step (and the
 * node's facts) into a `StepProgram`; the executor runs it as verify → run → verify (docs: shared/design/execution.md),
 * the dry-run records its mutating commands through the same transports, and `plan` renders titles from the same data,
 * so what is printed cannot drift from what runs.
 */

/** One command, where it runs, and why (the reason is journaled and shown by the dry-run). */
export type Command =
  | {
      on: 'node'
      command: RemoteCommand
      why: string
      /** Run through `sudo -n` when the node is configured for sudo. Default true for `run`/`undo`, false for checks. */
      privileged?: boolean
      timeoutMs?: number
      /** Exit codes that are results, not failures. Default [0]. */
      okExitCodes?: number[]
      stdin?: string
    }
  | {
      on: 'kubectl'
      /** kubectl arguments after the client's own --kubeconfig/--context/--request-timeout. */
      args: readonly string[]
      why: string
      timeoutMs?: number
      stdin?: string
    }

/** A read-only probe and what "the step's effect is already there" looks like in its result. */
export interface Check {
  /** Must be read-only: it runs for real in a dry-run and may be retried. */
  read: Command
  /** Shown in evidence: `k3s --version reports v1.30.4+k3s1`. */
  describe: string
  expect: { exitCode?: number; stdoutMatches?: string; stdoutIncludes?: string; stdoutExcludes?: string }
}

/** Executor-owned waits that follow `run` (and `undo`): polling with timeouts lives in the executor, not in drivers. */
export type Wait =
  | { kind: 'ssh-back'; timeoutMs: number; /** the boot id must change (a reboot happened) */ newBoot: boolean }
  | { kind: 'node-ready'; node: string; kubeletVersion: string; timeoutMs: number }
  | { kind: 'service-active'; service: string; timeoutMs: number }

export interface StepProgram {
  /** All hold → the step is done (skip `run`); empty → the effect cannot be read, so `run` always runs. */
  verify: Check[]
  run: Command[]
  wait?: Wait[]
  /** How to undo it; `irreversible` says why not (an OS upgrade is rolled forward or the node rebuilt). */
  undo: { run: Command[]; wait?: Wait[] } | { irreversible: string } | { nothing: true }
}
