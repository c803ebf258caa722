import type { Node } from 'kubernetes-types/core/v1.js'
import type { Check, Wait } from '../drivers/program.js'
import { sleep } from '../transport/backoff.js'
import type { NodeTarget, Transport } from '../transport/types.js'
import type { KubectlChannel } from './kubectl-channel.js'
import { StepFailure } from './step-failure.js'

/**
 * The executor's waits (drivers say *what* to wait for; polling and timeouts live here). Each returns one line of
 * evidence, or throws a StepFailure with the last observation when its time is up.
 */
export interface WaitContext {
  ssh: Transport
  kubectl: KubectlChannel
  target?: NodeTarget
  signal?: AbortSignal
  /** Boot ids for `newBoot` waits: `before` read before the run, `after` what the `ssh-back` wait found. */
  boot?: { before?: string; after?: string }
  pollMs?: number
  /** Reads a step's check where it runs (its node, or the one its `at` names); the executor's one check reader. */
  readCheck?: (c: Check) => Promise<{ holds: boolean; observed: string }>
  /** Told every `heartbeatMs` while a wait goes on: what it waits for and what it last saw. */
  onWaiting?: (w: Waiting) => void
  heartbeatMs?: number
}

export interface Waiting {
  waitingFor: string
  observed: string
  elapsedMs: number
  timeoutMs: number
}

/**
 * How often a wait says it is still waiting: every 30 s, or four times over a shorter timeout (at most once a second).
 * A Ready wait may take its whole five minutes; a CI log that shows nothing for that long reads as a hung run, and what
 * the wait last saw (`Ready=False, kubelet v1.30.4`) is what the reader needs to decide whether to step in.
 */
export const HEARTBEAT_MS = 30_000
const heartbeatEvery = (timeoutMs: number): number => Math.min(HEARTBEAT_MS, Math.max(1_000, Math.floor(timeoutMs / 4)))

/**
 * One wait's clock and latest observation (`last`, what a timeout reports too), and its heartbeat while it goes on;
 * `stop` ends the heartbeat.
 */
function waitState(waitingFor: string, timeoutMs: number, c: Pick<WaitContext, 'onWaiting' | 'heartbeatMs'>) {
  const state = { started: Date.now(), last: 'not observed yet', stop: () => clearInterval(timer) }
  const timer = c.onWaiting ? setInterval(() => c.onWaiting!({ waitingFor, observed: state.last, elapsedMs: Date.now() - state.started, timeoutMs }), c.heartbeatMs ?? heartbeatEvery(timeoutMs)) : undefined
  timer?.unref()
  return state
}

export async function runWait(w: Wait, c: WaitContext): Promise<string> {
  switch (w.kind) {
    case 'node-ready':
      return waitNodeReady(c.kubectl, w.node, w.kubeletVersion, w.timeoutMs, { ...c, ...(w.newBoot ? { bootId: c.boot?.after ?? '' } : {}) })
    case 'service-active':
      return poll(`${w.service} active`, w.timeoutMs, c, async () => {
        const r = await c.ssh.read(c.target!, ['systemctl', 'is-active', w.service], { okExitCodes: [0, 3, 4], timeoutMs: 10_000 })
        return { ok: r.stdout.trim() === 'active', observed: `systemctl is-active ${w.service}: ${r.stdout.trim() || `exit ${r.exitCode}`}` }
      })
    case 'holds':
      return poll(w.check.describe, w.timeoutMs, c, async () => {
        if (!c.readCheck) throw new Error(`no check reader for the wait: ${w.check.describe}`)
        const r = await c.readCheck(w.check)
        return { ok: r.holds, observed: r.observed }
      })
    case 'ssh-back': {
      let sawDown = false
      const before = c.boot?.before
      return poll(w.newBoot ? 'SSH back after a reboot (new boot id)' : 'SSH back', w.timeoutMs, c, async () => {
        try {
          const r = await c.ssh.read(c.target!, ['cat', '/proc/sys/kernel/random/boot_id'], { timeoutMs: 5_000 })
          const id = r.stdout.trim()
          const fresh = !w.newBoot || (before !== undefined && id !== before) || (before === undefined && sawDown)
          if (fresh && c.boot) c.boot.after = id
          return { ok: fresh, observed: `boot id ${id}${before ? ` (before: ${before})` : ''}${sawDown ? ', was unreachable' : ''}` }
        } catch (err) {
          sawDown = true
          return { ok: false, observed: `unreachable: ${(err as Error).message.split('\n')[0]}` }
        }
      })
    }
  }
}

export function nodeReadiness(n: Node): { ready: boolean; version: string } {
  const cond = n.status?.conditions?.find((x) => x.type === 'Ready')
  return { ready: cond?.status === 'True', version: n.status?.nodeInfo?.kubeletVersion ?? '' }
}

/** Waits until the Node is Ready=True with the expected kubelet version (empty: any version) and, given `bootId`, that
 *  boot (its kubelet has posted status since the machine came back; '' = the new boot id is unknown: never). One watch
 *  follows the Node (a poll would start a kubectl every pollMs), polling only where kubectl cannot watch. */
export function waitNodeReady(kubectl: KubectlChannel, node: string, kubeletVersion: string | undefined, timeoutMs: number, c: Pick<WaitContext, 'signal' | 'pollMs' | 'onWaiting' | 'heartbeatMs'> & { bootId?: string }): Promise<string> {
  const boot = c.bootId !== undefined ? ` after boot ${c.bootId || '(unknown)'}` : ''
  const what = `${node} Ready${kubeletVersion ? ` with kubelet ${kubeletVersion}` : ''}${boot}`
  const w = waitState(what, timeoutMs, c)
  return kubectl.observe<Node, string>(['node', node], (seen) => {
    if (seen.obj) {
      const r = nodeReadiness(seen.obj)
      const bootId = seen.obj.status?.nodeInfo?.bootID ?? ''
      const booted = c.bootId === undefined || (c.bootId !== '' && bootId === c.bootId)
      w.last = `${node}: Ready=${r.ready ? 'True' : 'False'}, kubelet ${r.version || '?'}${c.bootId !== undefined ? `, boot id ${bootId || '?'}` : ''}`
      if (r.ready && booted && (!kubeletVersion || r.version === kubeletVersion)) return waited(what, w.started, w.last)
    } else w.last = seen.error.message.split('\n')[0]!
    if (Date.now() - w.started >= timeoutMs) throw timedOut(what, timeoutMs, w.last)
    return undefined
  }, { quietMs: 2_000, pollMs: c.pollMs ?? 250, ...(c.signal ? { signal: c.signal } : {}) }).finally(w.stop)
}

const waited = (what: string, started: number, observed: string) => `waited ${Math.round((Date.now() - started) / 100) / 10}s for ${what}: ${observed}`
const timedOut = (what: string, timeoutMs: number, last: string) => new StepFailure(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}`, [`last observed: ${last}`])

async function poll(what: string, timeoutMs: number, c: Pick<WaitContext, 'signal' | 'pollMs' | 'onWaiting' | 'heartbeatMs'>, probe: () => Promise<{ ok: boolean; observed: string }>): Promise<string> {
  const w = waitState(what, timeoutMs, c)
  try {
    for (;;) {
      try {
        const r = await probe()
        w.last = r.observed
        if (r.ok) return waited(what, w.started, r.observed)
      } catch (err) {
        if (c.signal?.aborted) throw err
        w.last = (err as Error).message.split('\n')[0]!
      }
      if (Date.now() - w.started >= timeoutMs) throw timedOut(what, timeoutMs, w.last)
      await sleep(c.pollMs ?? 250, c.signal)
    }
  } finally {
    w.stop()
  }
}
