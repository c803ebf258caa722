import { accessSync, constants } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { execa } from 'execa'
import { planPath } from '../plan/paths.js'
import { parseDuration } from '../util/duration.js'
import type { RunOutcome } from './events.js'

/**
 * Hooks (brief §6): a zx `.mjs` script or any executable, run at a named point with the context as JSON on stdin
 * and as KUPGRADE_* variables. A non-zero exit fails that point like a gate.
 */
export interface HookContext {
  runId: string
  plan: string
  point: string
  stage: string
  cluster?: string
  node?: string
  step: string
  dryRun: boolean
  journal: string
  /** Node points: the node's role and the address kupgrade reaches it at. */
  role?: 'control-plane' | 'worker'
  host?: string
  /** Node points within a version hop: which, and the versions (the distribution's releases) it goes between. */
  hop?: { index: number; from: string; to: string }
  /** onFailure only: how the run ended and, when a step failed, the first that did (cluster and node are its). */
  failure?: HookFailure
}

export interface HookFailure {
  outcome: RunOutcome
  exitCode: number
  /** The run's own closing message, as `status` shows it. */
  message: string
  resume?: string
  step?: string
  error?: string
  cluster?: string
  node?: string
}

export interface HookResult {
  ok: boolean
  exitCode: number | null
  /** The last lines of output, for the journal and the report. */
  output: string[]
  command: string
  /** Stopped at its time limit. */
  timedOut?: true
}

/** How long a hook may run unless the plan's spec.hooks.timeout says otherwise. */
export const HOOK_TIMEOUT = '10m'

/** zx's own command (its package `bin`), run with this node. */
const zxCli = (): string => join(dirname(createRequire(import.meta.url).resolve('zx/package.json')), 'build', 'cli.js')

export function hookEnv(c: HookContext): Record<string, string> {
  return {
    KUPGRADE_RUN_ID: c.runId, KUPGRADE_PLAN: c.plan, KUPGRADE_POINT: c.point, KUPGRADE_STAGE: c.stage,
    KUPGRADE_CLUSTER: c.cluster ?? '', KUPGRADE_NODE: c.node ?? '', KUPGRADE_STEP: c.step,
    KUPGRADE_DRY_RUN: c.dryRun ? '1' : '0', KUPGRADE_JOURNAL: c.journal,
    ...(c.role ? { KUPGRADE_ROLE: c.role } : {}), ...(c.host ? { KUPGRADE_HOST: c.host } : {}),
    ...(c.hop ? { KUPGRADE_HOP: String(c.hop.index), KUPGRADE_FROM: c.hop.from, KUPGRADE_TO: c.hop.to } : {}),
    ...(c.failure ? { KUPGRADE_OUTCOME: c.failure.outcome, KUPGRADE_MESSAGE: c.failure.message, KUPGRADE_FAILED_STEP: c.failure.step ?? '', KUPGRADE_ERROR: c.failure.error ?? '' } : {}),
  }
}

export async function runHook(hook: string, planDir: string, c: HookContext, o: { env: NodeJS.ProcessEnv; signal?: AbortSignal; timeoutMs?: number }): Promise<HookResult> {
  const file = planPath(hook, planDir)
  // zx scripts get zx's globals ($, fetch, sleep …) through its CLI; anything else must be executable itself.
  const [cmd, args] = /\.(mjs|js)$/.test(file) ? [process.execPath, [zxCli(), file]] : [file, []]
  if (cmd === file) {
    try {
      accessSync(file, constants.X_OK)
    } catch {
      return { ok: false, exitCode: null, output: [`${file} is not executable (chmod +x it, or write it as a zx .mjs script)`], command: file }
    }
  }
  // A process group of its own, stopped whole at its time limit or an interrupt: a hook's children (a `sleep`, a
  // `kubectl wait`) keep its output open, and killing the hook alone left the run waiting for them.
  const child = execa(cmd, args, { input: JSON.stringify(c), env: { ...o.env, ...hookEnv(c) }, reject: false, all: true, detached: true, cwd: planDir })
  let timedOut = false
  const stop = () => {
    signalGroup(child.pid, 'SIGTERM')
    setTimeout(() => signalGroup(child.pid, 'SIGKILL'), STOP_GRACE_MS).unref()
  }
  const timer = setTimeout(() => {
    timedOut = true
    stop()
  }, o.timeoutMs ?? parseDuration(HOOK_TIMEOUT)!)
  if (o.signal?.aborted) stop()
  o.signal?.addEventListener('abort', stop, { once: true })
  let r
  try {
    r = await child
  } finally {
    clearTimeout(timer)
    o.signal?.removeEventListener('abort', stop)
  }
  const output = String(r.all ?? '').trimEnd().split('\n').filter(Boolean).slice(-20)
  return { ok: !r.failed && r.exitCode === 0, exitCode: r.exitCode ?? null, output, command: [file].join(' '), ...(timedOut ? { timedOut: true as const } : {}) }
}

/** How long a stopped hook's group has after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 2_000

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return
  try {
    process.kill(-pid, signal)
  } catch {
    // already gone
  }
}
