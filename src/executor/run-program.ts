import { checkHolds, type Check, type Command, type StepProgram, type Wait } from '../drivers/program.js'
import { RemoteCommandError, tailLines } from '../errors.js'
import { sleep } from '../transport/backoff.js'
import { OUTAGE_BUDGET_MS, OUTAGE_RETRY_DELAYS_MS } from '../transport/outage.js'
import { commandLine } from '../transport/quote.js'
import { formatDuration } from '../util/duration.js'
import type { NodeTarget, OutputLine, Transport } from '../transport/types.js'
import type { KubectlChannel } from './kubectl-channel.js'
import { batchReads } from './check-batch.js'
import { StepFailure } from './step-failure.js'
import { runWait, type WaitContext } from './waits.js'

export { StepFailure }

/**
 * verify → run → verify (execution.md): a step whose effect is already there is done without running; a run that
 * exits 0 but leaves no effect is a failure carrying both observations.
 */
export interface ProgramChannels {
  ssh: Transport
  kubectl: KubectlChannel
  /** The step's node, when its commands run on one. */
  target?: NodeTarget
  /** The cluster's first control-plane node, for commands `at` it (join tokens). */
  firstControlPlane?: NodeTarget
  /** The first control-plane node other than the step's, for commands `at` a peer. */
  peerControlPlane?: NodeTarget
  signal?: AbortSignal
  onOutput?: (line: OutputLine) => void
  dryRun: boolean
  /**
   * Dry-run only: an earlier write to this node was recorded, not made, so the live state no longer predicts this
   * step (an uncordon after a recorded cordon would verify as "already schedulable"). Record it without verifying.
   */
  stateAhead?: boolean
  /**
   * Run the commands even where verify finds the effect there already, and why (Step.force; a backup this run has not
   * taken yet); verify must hold after them.
   */
  force?: string
  /** A command's transport failed under it; the step is verified and tried again (the attempt-th time) after delayMs. */
  onRetry?: (r: { attempt: number; error: string; delayMs: number }) => void
  /** Injected in tests: the time the outage budget is counted in, and the waits between attempts. */
  clock?: { now: () => number; sleep: (ms: number, signal?: AbortSignal) => Promise<void> }
}

export interface ProgramOutcome {
  /** false: verify found the effect present and nothing ran. */
  changed: boolean
  evidence: string[]
}


/** Every exit code is a result for a check: whether it matches is the check's `expect`, not the transport's business. */
const ANY_EXIT = Array.from({ length: 256 }, (_, i) => i)

/** Where a node command runs: the step's node, or the one its `at` names. */
const nodeOf = (c: Extract<Command, { on: 'node' }>, ch: ProgramChannels): NodeTarget | undefined =>
  c.at === 'first-control-plane' ? ch.firstControlPlane : c.at === 'peer-control-plane' ? ch.peerControlPlane : ch.target

export const describeCommand = (c: Command): string => (c.on === 'node' ? commandLine(c.command) : `kubectl ${c.args.join(' ')}`)

/** What a read saw, or why it saw nothing (`unreadable`: the output was cut short, as a lost transport is). */
type Observation = { stdout: string; exitCode: number | null } | { error: unknown; unreadable?: true }
type Reading = { holds: boolean; observed: string; unreadable?: boolean }

async function observe(r: Check['read'], ch: ProgramChannels): Promise<Observation> {
  try {
    if (r.on === 'node') {
      const target = nodeOf(r, ch)
      if (!target) throw new Error(`a node check without a node${r.at ? ` (${r.at})` : ''}`)
      const res = await ch.ssh.read(target, r.command, { okExitCodes: ANY_EXIT, privileged: r.privileged ?? false, ...(r.timeoutMs ? { timeoutMs: r.timeoutMs } : {}), ...(ch.signal ? { signal: ch.signal } : {}) })
      return { stdout: res.stdout, exitCode: res.exitCode }
    }
    return { stdout: await ch.kubectl.read(r.args, { ...(r.timeoutMs ? { timeoutMs: r.timeoutMs } : {}), ...(ch.signal ? { signal: ch.signal } : {}) }), exitCode: 0 }
  } catch (error) {
    return { error }
  }
}

/** Node checks on one node with one privilege, read with one SSH command (check-batch.ts). */
async function observeBatch(reads: Extract<Check['read'], { on: 'node' }>[], target: NodeTarget, privileged: boolean, ch: ProgramChannels): Promise<Observation[]> {
  const batch = batchReads(reads.map((r) => r.command))
  // Their time limits add up: they run one after the other.
  const timeoutMs = reads.every((r) => r.timeoutMs) ? reads.reduce((sum, r) => sum + r.timeoutMs!, 0) : undefined
  try {
    const res = await ch.ssh.read(target, batch.script, { okExitCodes: ANY_EXIT, privileged, ...(timeoutMs ? { timeoutMs } : {}), ...(ch.signal ? { signal: ch.signal } : {}) })
    return batch.parse(res.stdout).map((o) => o ?? { error: new Error(`gave no answer (the output of the checks read together ended before it${res.exitCode ? `; exit ${res.exitCode}` : ''})`), unreadable: true })
  } catch (error) {
    return reads.map(() => ({ error }))
  }
}

function judge(c: Check, o: Observation, ch: ProgramChannels): Reading {
  const r = c.read
  if ('error' in o) {
    if (ch.signal?.aborted) throw o.error
    return { holds: false, observed: `${describeCommand(r)}: ${(o.error as Error).message.split('\n')[0]}`, ...(isTransient(o.error) || o.unreadable ? { unreadable: true } : {}) }
  }
  const { stdout, exitCode } = o
  const out = stdout.trim()
  // The read's okExitCodes are the answers it expects (systemctl is-active exits 3 for "inactive"); any other exit
  // means the probe itself failed, which never shows the effect. Within them, checkHolds is the one reading.
  const expected = r.on === 'node' ? (r.okExitCodes ?? [0]) : [0]
  const holds = exitCode !== null && expected.includes(exitCode) && checkHolds(c, { exitCode, stdout })
  const shown = out.length > 200 ? `${out.slice(0, 200)}…` : out
  const where = r.on === 'node' && r.at ? ` (on the ${r.at.replaceAll('-', ' ')} node)` : ''
  return { holds, observed: `${describeCommand(r)}${where} → exit ${exitCode}${shown ? `: ${shown.replaceAll('\n', ' ⏎ ')}` : ''}` }
}

/**
 * Every check read at once: kubectl reads side by side, and the node checks of each node (and privilege) in one SSH
 * command — a node that has one check to answer gets it as it is. A read that several checks share (the three held
 * packages are all in one `apt-mark showhold`) is made once: checks only read, so one answer serves them all.
 */
async function observeAll(checks: Check[], ch: ProgramChannels): Promise<Observation[]> {
  const firstOf = new Map<string, number>()
  const unique: number[] = []
  const sameAs = checks.map((c, i) => {
    const r = c.read
    const where = r.on === 'node' ? `${r.at ?? ''}\0${r.privileged ?? false}` : ''
    const key = `${r.on}\0${where}\0${r.timeoutMs ?? ''}\0${describeCommand(r)}`
    const first = firstOf.get(key)
    if (first !== undefined) return first
    firstOf.set(key, i)
    unique.push(i)
    return i
  })
  const read = await observeDistinct(unique.map((i) => checks[i]!), ch)
  const byIndex = new Map(unique.map((i, k) => [i, read[k]!]))
  return sameAs.map((i) => byIndex.get(i)!)
}

async function observeDistinct(checks: Check[], ch: ProgramChannels): Promise<Observation[]> {
  const out: Promise<Observation>[] = []
  const groups = new Map<string, { target: NodeTarget; privileged: boolean; at: number[] }>()
  checks.forEach((c, i) => {
    const r = c.read
    const target = r.on === 'node' ? nodeOf(r, ch) : undefined
    if (r.on !== 'node' || !target) return void (out[i] = observe(r, ch))
    const privileged = r.privileged ?? false
    const key = `${target.node}\0${target.host}\0${privileged}`
    const g = groups.get(key) ?? { target, privileged, at: [] }
    g.at.push(i)
    groups.set(key, g)
  })
  for (const g of groups.values()) {
    if (g.at.length === 1) out[g.at[0]!] = observe(checks[g.at[0]!]!.read, ch)
    else {
      const batch = observeBatch(g.at.map((i) => checks[i]!.read as Extract<Check['read'], { on: 'node' }>), g.target, g.privileged, ch)
      g.at.forEach((i, k) => (out[i] = batch.then((o) => o[k]!)))
    }
  }
  return Promise.all(out)
}

export async function verify(checks: Check[], ch: ProgramChannels): Promise<{ all: boolean; evidence: string[]; unreadable: boolean }> {
  // Checks are read-only by contract and every one is read for the evidence anyway: read them at once, so a step's
  // verify costs one round trip, not one per check. Evidence stays in the checks' order.
  const results = (await observeAll(checks, ch)).map((o, i) => judge(checks[i]!, o, ch))
  return {
    all: checks.length > 0 && results.every((r) => r.holds),
    unreadable: results.some((r) => r.unreadable),
    evidence: results.map((r, i) => `${r.holds ? '✓' : '✗'} ${checks[i]!.describe} (${r.observed})`),
  }
}

export async function runCommand(c: Command, ch: ProgramChannels, secrets: Map<string, string> = new Map()): Promise<string> {
  if (c.on === 'node') {
    const target = nodeOf(c, ch)
    if (!target) throw new Error(`a node command without a node${c.at ? ` (${c.at})` : ''}: ${describeCommand(c)}`)
    if (c.secretIn !== undefined && !secrets.has(c.secretIn)) throw new Error(`${c.why}: the secret ${c.secretIn} was not made by an earlier command of this step`)
    const stdin = c.secretIn !== undefined ? secrets.get(c.secretIn) : c.stdin
    try {
      const res = await ch.ssh.mutate(target, c.why, c.command, {
        privileged: c.privileged ?? true,
        ...(c.timeoutMs ? { timeoutMs: c.timeoutMs } : {}),
        ...(c.okExitCodes ? { okExitCodes: c.okExitCodes } : {}),
        ...(stdin !== undefined ? { stdin } : {}),
        ...(ch.signal ? { signal: ch.signal } : {}),
        // A secret's output is never streamed to the report.
        ...(ch.onOutput && c.secretOut === undefined ? { onOutput: ch.onOutput } : {}),
      })
      if (c.secretOut !== undefined) secrets.set(c.secretOut, res.stdout)
      return c.secretOut !== undefined ? '' : res.stdout
    } catch (err) {
      // A reboot takes the session down with it: no exit status (the connection dropped, or hung until the timeout)
      // is what success looks like. Whether it rebooted is for the program's waits to prove (a new boot id); an exit
      // code, or no connection at all, is still a failure.
      if (c.disconnects && !ch.signal?.aborted && err instanceof RemoteCommandError && err.exitCode_ === null) return ''
      throw err
    }
  }
  return ch.kubectl.mutate(c.why, c.args, { ...(c.stdin !== undefined ? { stdin: c.stdin } : {}), ...(c.timeoutMs ? { timeoutMs: c.timeoutMs } : {}), ...(ch.signal ? { signal: ch.signal } : {}) })
}

/**
 * A step whose commands lose their transport (an SSH connection that drops, an API server that does not answer:
 * RemoteCommandError.transient) is tried again for as long as the outage budget allows (transport/outage.ts: an
 * apiserver restarting behind its load balancer during a control-plane upgrade is a blip to ride out, not a failure to
 * roll back). Every attempt starts with verify, so an effect the lost attempt made is found and not made twice;
 * otherwise the step runs again from its first command, as `resume` would after a crash — steps are idempotent by
 * contract. A command that answered (an exit code, a 4xx) is never retried here.
 */
export async function runProgram(program: StepProgram, ch: ProgramChannels, waitCtx: Omit<WaitContext, 'before'>): Promise<ProgramOutcome> {
  const clock = ch.clock ?? { now: Date.now, sleep }
  const lost: string[] = []
  let ranBefore = false
  // When the transport was first lost: the budget counts from there.
  let lostSince: number | undefined
  for (let attempt = 1; ; attempt++) {
    try {
      const out = await runProgramOnce(program, ch, waitCtx)
      return lost.length === 0 ? out : { changed: out.changed || ranBefore, evidence: [...lost, ...out.evidence] }
    } catch (err) {
      if (!(err instanceof TransportLost)) throw err
      lostSince ??= clock.now()
      const delayMs = OUTAGE_RETRY_DELAYS_MS[attempt - 1] ?? OUTAGE_RETRY_DELAYS_MS.at(-1)!
      const lostFor = clock.now() - lostSince
      if (ch.signal?.aborted || lostFor + delayMs > OUTAGE_BUDGET_MS) {
        throw new StepFailure(err.message, [...lost, ...err.evidence, `gave up after ${attempt} attempt${attempt === 1 ? '' : 's'} whose transport failed, ${formatDuration(lostFor)} after it was first lost (a lost transport is ridden out for ${formatDuration(OUTAGE_BUDGET_MS)})`])
      }
      ranBefore ||= err.ran
      lost.push(...err.evidence.map((e) => `attempt ${attempt}: ${e}`), `attempt ${attempt}: the transport failed (${err.message.split('\n')[0]}); verifying and trying again`)
      ch.onRetry?.({ attempt: attempt + 1, error: err.message.split('\n')[0]!, delayMs })
      await clock.sleep(delayMs, ch.signal)
    }
  }
}

/** An attempt cut short by its transport, not answered by its commands: runProgram verifies and tries again. */
class TransportLost extends StepFailure {
  constructor(message: string, evidence: string[], readonly ran: boolean) {
    super(message, evidence)
  }
}

const isTransient = (err: unknown): boolean => err instanceof RemoteCommandError && err.transient

/** What cut a command off, in one line: kubectl's last word on stderr, else the connection's own error. */
function lostBecause(err: RemoteCommandError): string {
  const said = err.stderrTail.split('\n').at(-1)?.trim()
  if (said) return said
  const cause = err.cause instanceof Error ? err.cause.message : ''
  return `the SSH connection to ${err.node} (${err.host}) was lost${cause ? ` (${cause})` : ''}: the command may or may not have completed`
}

async function runProgramOnce(program: StepProgram, ch: ProgramChannels, waitCtx: Omit<WaitContext, 'before'>): Promise<ProgramOutcome> {
  // The command's own answer tells whether it changed anything: no read first (each is a kubectl process).
  const reports = !ch.dryRun && !ch.force ? program.reports : undefined
  const before = ch.dryRun && ch.stateAhead ? { all: false, evidence: ['not verified: an earlier write to this node was only recorded'], unreadable: false }
    : ch.force ? { all: false, evidence: [`not verified first: ${ch.force}`], unreadable: false }
      : reports ? { all: false, evidence: [], unreadable: false }
        : await verify(program.verify, ch)
  if (before.all) return { changed: false, evidence: before.evidence }
  // A reboot's wait needs the boot id from before the run.
  const needsBoot = (program.wait ?? []).some((w: Wait) => w.kind === 'ssh-back' && w.newBoot)
  const bootBefore = needsBoot && ch.target && !ch.dryRun ? await readBootId(ch).catch(() => undefined) : undefined
  const ran: string[] = []
  // Secrets one command makes for another (a join token), this step only.
  const secrets = new Map<string, string>()
  let answer = ''
  for (const c of program.run) {
    ran.push(`ran: ${describeCommand(c)}${c.on === 'node' && c.at ? ` (on the ${c.at.replaceAll('-', ' ')} node)` : ''}`)
    try {
      answer = await runCommand(c, ch, secrets)
    } catch (err) {
      if (ch.signal?.aborted) throw err
      const evidence = [...before.evidence, ...ran, `failed: ${tailLines((err as Error).message, 6)}`]
      if (isTransient(err)) throw new TransportLost(`${c.why}: ${lostBecause(err as RemoteCommandError)}`, evidence, true)
      throw new StepFailure(`${c.why}: ${(err as Error).message}`, evidence)
    }
  }
  if (ch.dryRun) return { changed: true, evidence: [...before.evidence, ...ran.map((r) => r.replace(/^ran:/, 'would run:'))] }
  if (reports && (program.wait ?? []).length === 0) {
    const said = `it answered: ${answer.trim().split('\n').at(-1) ?? ''}`
    if (new RegExp(reports.unchanged, 'm').test(answer)) return { changed: false, evidence: [...ran, said] }
    if (new RegExp(reports.changed, 'm').test(answer)) return { changed: true, evidence: [...ran, said] }
  }
  const waited: string[] = []
  // One boot record across the waits: the ssh-back wait learns the new boot id, the Ready wait then asks the Node for it.
  const boot = { ...(bootBefore ? { before: bootBefore } : {}) }
  for (const w of program.wait ?? []) waited.push(await runWait(w, { ...waitCtx, boot, readCheck: async (c) => judge(c, await observe(c.read, ch), ch) }))
  // A forced step says why it ran without looking first.
  const why = ch.force ? before.evidence : []
  if (program.verify.length === 0) return { changed: true, evidence: [...why, ...ran, ...waited] }
  const after = await verify(program.verify, ch)
  if (!after.all && after.unreadable) {
    // The commands answered, but the check after them could not be read (the API or the connection failed): whether
    // the effect is there is unknown, not "no".
    throw new TransportLost('the commands succeeded but their effect could not be read', [...ran, ...waited, ...after.evidence.map((e) => `after: ${e}`)], true)
  }
  if (!after.all) {
    throw new StepFailure('the commands succeeded but the effect is not there', [...before.evidence.map((e) => `before: ${e}`), ...ran, ...waited, ...after.evidence.map((e) => `after: ${e}`)])
  }
  return { changed: true, evidence: [...why, ...ran, ...waited, ...after.evidence] }
}

export const BOOT_ID = ['cat', '/proc/sys/kernel/random/boot_id'] as const

export async function readBootId(ch: Pick<ProgramChannels, 'ssh' | 'target' | 'signal'>): Promise<string> {
  const r = await ch.ssh.read(ch.target!, BOOT_ID, { timeoutMs: 10_000, ...(ch.signal ? { signal: ch.signal } : {}) })
  return r.stdout.trim()
}
