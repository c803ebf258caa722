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
      /** The command takes the connection down (a reboot): a dropped connection is its success, not a failure. */
      disconnects?: boolean
      /**
       * Runs on the cluster's first control-plane node instead of the step's (a join token is made there); or on the
       * first control-plane node that is not the step's (`peer-control-plane`: a serving server, where the step's own
       * node is the one being rebuilt).
       */
      at?: 'first-control-plane' | 'peer-control-plane'
      /**
       * Its stdout is a secret (a join token) kept under this name for a later command of the same program: never
       * streamed, journaled or shown, and gone when the step ends.
       */
      secretOut?: string
      /** Its stdin is the secret an earlier command of the same program kept under this name. */
      secretIn?: string
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
  /**
   * All given conditions must hold. `stdoutMatches` is a JavaScript RegExp source tested with the `m` flag (so `^`/`$`
   * match at line ends); without `exitCode`, any exit code the read accepted counts. `checkHolds` is the one reading.
   */
  expect: { exitCode?: number; stdoutMatches?: string; stdoutIncludes?: string; stdoutExcludes?: string }
}

/** Whether a check's observation shows the step's effect: the single interpretation shared by executor and tests. */
export function checkHolds(check: Check, observed: { exitCode: number | null; stdout: string }): boolean {
  const e = check.expect
  if (e.exitCode !== undefined && observed.exitCode !== e.exitCode) return false
  if (e.stdoutMatches !== undefined && !new RegExp(e.stdoutMatches, 'm').test(observed.stdout)) return false
  if (e.stdoutIncludes !== undefined && !observed.stdout.includes(e.stdoutIncludes)) return false
  if (e.stdoutExcludes !== undefined && observed.stdout.includes(e.stdoutExcludes)) return false
  return true
}

/** Executor-owned waits that follow `run` (and `undo`): polling with timeouts lives in the executor, not in drivers. */
export type Wait =
  | { kind: 'ssh-back'; timeoutMs: number; /** the boot id must change (a reboot happened) */ newBoot: boolean }
  /** Ready, reporting `kubeletVersion` ('' = any version: an OS-only pass does not change it). `newBoot`: after a
   *  reboot, and only once the Node reports the boot the `ssh-back` wait saw (status.nodeInfo.bootID): the Node keeps
   *  its Ready from before the reboot until the node-monitor grace period has passed, so Ready alone proves nothing. */
  | { kind: 'node-ready'; node: string; kubeletVersion: string; timeoutMs: number; newBoot?: boolean }
  | { kind: 'service-active'; service: string; timeoutMs: number }
  /** Until a read-only check holds: an effect that appears after the commands returned, as a controller's etcd
   *  membership once its join went through (its unit is active even while the join is being refused). */
  | { kind: 'holds'; check: Check; timeoutMs: number }

export interface StepProgram {
  /** One line for people, rendered from the same commands (`plan` shows it as the step's title); drivers always set it. */
  title?: string
  /**
   * All hold → the step is done (skip `run`); empty → the effect cannot be read, so `run` always runs. Checked
   * before `run`, and again after `run` and its `wait`s (a run that exits 0 but leaves no effect is a failure).
   */
  verify: Check[]
  run: Command[]
  wait?: Wait[]
  /**
   * Where the last `run` command's own answer says whether the effect was already there (kubectl cordon: `node/x
   * cordoned` or `node/x already cordoned`), the reads before and after are not needed: the command runs (it must be
   * idempotent), and its stdout matching `changed` or `unchanged` (RegExp sources, `m` flag) decides. An answer that
   * matches neither falls back to `verify`. Not for a dry-run (which records the command and reads nothing back) or a
   * forced step.
   */
  reports?: { changed: string; unchanged: string }
  /**
   * How to undo it (the program of the step's undo spec); `irreversible` says why not (an OS upgrade is rolled
   * forward or the node rebuilt). `verify` holding means the undo's effect is already there: skip its `run`.
   */
  undo: { title?: string; verify?: Check[]; run: Command[]; wait?: Wait[]; readsBackup?: ReadsBackup } | { irreversible: string } | { nothing: true }
  /**
   * A backup's files, to be copied off the node once the step's effect is there (a snapshot kept only on the node that
   * fails is lost with it): the checksum lists (sha256sum format, on the step's node) that name them. Lists that do
   * not exist are passed over (a k3s backup is an etcd snapshot or a SQLite copy); at least one must.
   */
  offNode?: { sums: string[] }
  /** A restore: it reads the backup the node kept of this release, which must be there first (put back from the copy
   *  kept off the node where the node lost it: executor/backup-copy.ts). */
  readsBackup?: ReadsBackup
  /**
   * Read-only, after the step failed: all hold → it left the node as it was before it (kubeadm stopped at its checks,
   * or put its own backup back), so a step that would have moved the control plane did not.
   */
  untouched?: Check[]
}

export interface ReadsBackup {
  /** The release the backup holds (the version before its hop): the key of its copies in the backup index. */
  release: string
  /** Another node's backup, of which only these files (kubeadm: the first control-plane node's etcd snapshot, which
   *  every etcd member restores from); without it, the step's own node's backups. */
  from?: { node: string; paths: string[] }
}

/** What a driver makes for one action; the registry adds `undo` from the step's undo spec (drivers/registry.ts). */
export type ActionProgram = Omit<StepProgram, 'undo' | 'title'> & { title: string }
