import { sleep } from '../transport/backoff.js'
import type { GateEvidence, GateResult } from './types.js'

/**
 * The one wait loop for gates. Gates check once; the caller decides how long to keep asking: `check` and the
 * pre-gates of `plan --live` ask once (stableFor 1, timeout 0), `apply`'s post-gates poll until the result has held
 * for `stableFor` consecutive checks (kOps validates a cluster several times before it moves on).
 *
 * - pass and warn count as holding; fail and unknown do not (`unknown` is never a pass).
 * - A result that held and then broke has flapped: that is a fail at once, with both observations as evidence,
 *   because a gate that is green only some of the time is what upgrades break on.
 * - Before the first hold, a failing result is retried until `timeoutMs`; then the last observation is the answer.
 */
export interface WaitOptions {
  /** Consecutive holding checks needed. Post-gates default to 3. */
  stableFor?: number
  /** Time from one check's start to the next one's; grows by `backoff` up to `maxIntervalMs`. Default 2 s. */
  intervalMs?: number
  backoff?: number
  maxIntervalMs?: number
  /** Give up after this long without a stable result. 0: a single check (stableFor is then 1). */
  timeoutMs?: number
  /** Give up after this many checks without a stable result, however fast they were (a confirmation re-check). */
  maxChecks?: number
  signal?: AbortSignal
  /** Injected in tests. */
  now?: () => number
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  /** Each observation as it comes (progress output). */
  onObservation?: (r: GateResult, attempt: number) => void
}

export interface WaitedResult extends GateResult {
  attempts: number
  /** The run ended because the result flapped (held, then broke). */
  flapped?: boolean
}

export const POST_GATE_STABLE_FOR = 3

const holds = (r: GateResult) => r.status === 'pass' || r.status === 'warn'

export async function waitForGate(check: () => Promise<GateResult>, o: WaitOptions = {}): Promise<WaitedResult> {
  const now = o.now ?? Date.now
  const pause = o.sleep ?? sleep
  const timeoutMs = o.timeoutMs ?? 0
  const stableFor = timeoutMs === 0 ? 1 : Math.max(1, o.stableFor ?? POST_GATE_STABLE_FOR)
  const deadline = now() + timeoutMs
  let interval = o.intervalMs ?? 2_000
  let streak: GateResult[] = []
  let attempts = 0
  for (;;) {
    const began = now()
    const r = await check()
    attempts++
    o.onObservation?.(r, attempts)
    if (holds(r)) {
      streak.push(r)
      if (streak.length >= stableFor) return { ...pickWorst(streak), attempts }
    } else if (streak.length > 0) {
      return flapped(streak[streak.length - 1]!, r, attempts, streak.length)
    } else if (now() >= deadline || o.signal?.aborted || (o.maxChecks !== undefined && attempts >= o.maxChecks)) {
      return { ...r, attempts, summary: attempts > 1 ? `${r.summary} (still after ${attempts} checks)` : r.summary }
    }
    if (timeoutMs === 0) return { ...r, attempts }
    // Checks are an interval apart from start to start, as kOps validates on a ticker: the check's own time is part of
    // the interval, not added to it, so a streak of stableFor takes (stableFor - 1) intervals and one check. A check
    // slower than the interval is still followed by a quarter interval's rest, never by a check back to back.
    let rest = Math.max(interval - (now() - began), Math.round(interval / 4))
    // A streak in progress is not cut short by the deadline: the result is settling, not failing.
    if (streak.length === 0 && now() + rest > deadline) rest = Math.max(0, deadline - now())
    await pause(rest, o.signal)
    interval = Math.min(o.maxIntervalMs ?? 30_000, Math.round(interval * (o.backoff ?? 1.5)))
  }
}

/** A warn seen in the streak must not be hidden by later passes. */
function pickWorst(streak: GateResult[]): GateResult {
  return streak.find((r) => r.status === 'warn') ?? streak[streak.length - 1]!
}

function flapped(held: GateResult, broke: GateResult, attempts: number, streakLength: number): WaitedResult {
  const tag = (label: string, e: GateEvidence[]) => e.map((x) => ({ ...x, observed: `${label}: ${x.observed}` }))
  return {
    status: 'fail',
    summary: `flapping: ${held.status} for ${streakLength} check${streakLength === 1 ? '' : 's'} ("${held.summary}"), then ${broke.status} ("${broke.summary}")`,
    evidence: [...tag(`check ${attempts - 1} (${held.status})`, held.evidence), ...tag(`check ${attempts} (${broke.status})`, broke.evidence)],
    hint: broke.hint ?? 'the result changes between checks: find what flaps before going on',
    incident: broke.incident,
    attempts,
    flapped: true,
  }
}
