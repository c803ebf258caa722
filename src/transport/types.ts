import type { RemoteCommand } from './quote.js'

/**
 * What kupgrade needs from "a way to run commands on nodes". Reads and mutations are separate calls on purpose:
 * a read may be retried after a dropped connection and runs for real in a dry-run; a mutation is never silently
 * repeated, and a dry-run recorder records it instead of running it (`recorder.ts`).
 */

/** Everything needed to reach one node over SSH, already merged from plan, node and ~/.ssh/config. */
export interface NodeTarget {
  cluster?: string
  /** Kubernetes node name; used in every message. */
  node: string
  host: string
  port?: number
  user?: string
  /** Private key files to offer, in order. Empty: ~/.ssh/config's, else the default ~/.ssh/id_* files. */
  identityFiles?: string[]
  knownHosts?: string
  /** Run privileged commands through `sudo -n`. */
  sudo?: boolean
  /** `[user@]host[:port][,…]` bastions, as OpenSSH's ProxyJump. */
  proxyJump?: string
}

export interface OutputLine {
  node: string
  stream: 'stdout' | 'stderr'
  line: string
}

export interface ExecOptions {
  /** Per-command limit; on expiry the remote process is signalled and the call fails. Default 60 s. */
  timeoutMs?: number
  signal?: AbortSignal
  /** Streams output line by line while the command runs (logs, progress). */
  onOutput?: (line: OutputLine) => void
  /** Exit codes that are results, not failures (e.g. `needs-restarting -r` exits 1 for "reboot needed"). Default [0]. */
  okExitCodes?: number[]
  /** Wrap in `sudo -n` when the node is configured for sudo. Default: true for mutate, false for read. */
  privileged?: boolean
  stdin?: string | Buffer
}

export interface ExecResult {
  stdout: string
  stderr: string
  exitCode: number | null
  signal?: string
  /** How many times a read was re-run after a dropped connection. */
  retries: number
  durationMs: number
}

export interface Transport {
  /** A command that changes nothing; safe to retry, runs for real in a dry-run. */
  read(node: NodeTarget, cmd: RemoteCommand, opts?: ExecOptions): Promise<ExecResult>
  /** A command that changes the node; `why` says what for (journal, dry-run report). Never retried after it started. */
  mutate(node: NodeTarget, why: string, cmd: RemoteCommand, opts?: ExecOptions): Promise<ExecResult>
  close(): Promise<void>
}
