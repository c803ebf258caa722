import { sleep } from '../transport/backoff.js'
import { OUTAGE_BUDGET_MS } from '../transport/outage.js'
import type { GateEvidence, GateResult } from './types.js'

/**
 * The one wait loop for gates. Gates check once; the caller decides how long to keep asking: `check` and the
 * pre-gates of `plan --live` ask once (stableFor 1, timeout 0), `apply`'s post-gates poll until the result has held
 * for `stableFor` consecutive checks (kOps validates a cluster several times before it moves on).
 *
 * - pass and warn count as holding; fail and unknown do not (`unknown` is never a pass).
 * - A result that held and then broke has flapped: that is a fail at once, with both observations as evidence,
 *   because a gate that is green only some of the time is what upgrades break on.
 * - A result that held and then could not look (`unknown`: the API server did not answer, a node's SSH dropped) has
 *   not flapped: nothing was seen to break. The streak starts again and checking goes on, for at least the outage
 *   budget from that first gap (transport/outage.ts) — an API blip while a control plane restarts must not roll back a
 *   node whose gates were holding. A gate that still cannot look then answers `unknown`.
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
  /** Checks that could not look after the result had held (not a flap): how many, and the first one's summary. */
  gaps?: { count: number; first: string }
}

export const POST_GATE_STABLE_FOR = 3

const holds = (r: GateResult) => r.status === 'pass' || r.status === 'warn'

export async function waitForGate(check: () => Promise<GateResult>, o: WaitOptions = {}): Promise<WaitedResult> {
  const now = o.now ?? Date.now
  const pause = o.sleep ?? sleep
  const timeoutMs = o.timeoutMs ?? 0
  const stableFor = timeoutMs === 0 ? 1 : Math.max(1, o.stableFor ?? POST_GATE_STABLE_FOR)
  let deadline = now() + timeoutMs
  const firstInterval = o.intervalMs ?? 2_000
  let interval = firstInterval
  let streak: GateResult[] = []
  let attempts = 0
  let gaps: WaitedResult['gaps']
  // What held before the view was lost: a fail seen after the gap is still a break of it.
  let heldBeforeGap: GateResult[] = []
  // The check that held last.
  let lastHeldAt = 0
  const told = (r: WaitedResult): WaitedResult => (gaps ? { ...r, gaps, summary: `${r.summary} (${gapText(gaps)})` } : r)
  for (;;) {
    const began = now()
    const r = await check()
    attempts++
    o.onObservation?.(r, attempts)
    const held = streak.length > 0 ? streak : heldBeforeGap
    if (holds(r)) {
      streak.push(r)
      lastHeldAt = attempts
      if (streak.length >= stableFor) return told({ ...pickWorst(streak), attempts })
    } else if (held.length > 0 && r.status !== 'unknown') {
      return told(flapped(held[held.length - 1]!, lastHeldAt, r, attempts, held.length))
    } else {
      if (held.length > 0) {
        // Held, then could not look: a gap, not a flap. The first gap gives the outage budget from now; later ones do
        // not extend it, so a gate that keeps losing its view still ends. Once the view is lost, checks start again at
        // the first interval, to see it come back soon.
        if (!gaps) deadline = Math.max(deadline, now() + OUTAGE_BUDGET_MS)
        gaps = { count: (gaps?.count ?? 0) + 1, first: gaps?.first ?? `check ${attempts}: ${r.summary}` }
        if (streak.length > 0) interval = firstInterval
        heldBeforeGap = held
        streak = []
      }
      if (now() >= deadline || o.signal?.aborted || (o.maxChecks !== undefined && attempts >= o.maxChecks)) {
        return told({ ...r, attempts, summary: attempts > 1 ? `${r.summary} (still after ${attempts} checks)` : r.summary })
      }
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

const gapText = (g: NonNullable<WaitedResult['gaps']>): string =>
  `could not look after it had held: ${g.first}${g.count > 1 ? `, and ${g.count - 1} check${g.count === 2 ? '' : 's'} more` : ''}`

/** A warn seen in the streak must not be hidden by later passes. */
function pickWorst(streak: GateResult[]): GateResult {
  return streak.find((r) => r.status === 'warn') ?? streak[streak.length - 1]!
}

function flapped(held: GateResult, heldAt: number, broke: GateResult, attempts: number, streakLength: number): WaitedResult {
  const tag = (label: string, e: GateEvidence[]) => e.map((x) => ({ ...x, observed: `${label}: ${x.observed}` }))
  return {
    status: 'fail',
    summary: `flapping: ${held.status} for ${streakLength} check${streakLength === 1 ? '' : 's'} ("${held.summary}"), then ${broke.status} ("${broke.summary}")`,
    evidence: [...tag(`check ${heldAt} (${held.status})`, held.evidence), ...tag(`check ${attempts} (${broke.status})`, broke.evidence)],
    hint: broke.hint ?? 'the result changes between checks: find what flaps before going on',
    incident: broke.incident,
    attempts,
    flapped: true,
  }
}
