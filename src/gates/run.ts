import { failureReason } from '../errors.js'
import { gateById } from './catalog.js'
import { GATE_REGISTRY } from './registry.js'
import type { GateContext, GateResult, GateStatus } from './types.js'
import { waitForGate, type WaitOptions } from './wait.js'

/** A gate as the planner resolved it (planner/gates.ts ResolvedGate has this shape). */
export interface GateToRun {
  id: string
  params: Record<string, unknown>
  label: string
}

export interface GateRun extends GateResult {
  cluster: string
  node?: string
  gate: string
  label: string
  attempts: number
  durationMs: number
}

export interface RunGatesOptions {
  /** Per-gate wait (see wait.ts). Omitted: one check each (check, plan --live). */
  wait?: WaitOptions
  /** Gates run side by side within a cluster; each gate's own reads are bounded by the SSH pool. Default 4. */
  concurrency?: number
  onResult?: (r: GateRun) => void
}

/**
 * Runs each resolved gate against each context (one per cluster, or per node for node gates) and returns every
 * result; a gate that throws becomes `unknown` with the error as evidence, never an exception that hides the others.
 */
export async function runGates(contexts: GateContext[] | (() => Promise<GateContext[]>), gates: GateToRun[], o: RunGatesOptions = {}): Promise<GateRun[]> {
  const ctxs = typeof contexts === 'function' ? await contexts() : contexts
  const jobs = ctxs.flatMap((ctx) => gates.map((g) => ({ ctx, g })))
  const out: GateRun[] = new Array(jobs.length)
  let next = 0
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++
      const { ctx, g } = jobs[i]!
      const started = Date.now()
      const r = await waitForGate(() => checkOnce(ctx, g), { ...o.wait, ...(ctx.signal ? { signal: ctx.signal } : {}) })
      out[i] = { cluster: ctx.cluster, ...(ctx.node ? { node: ctx.node } : {}), gate: g.id, label: g.label, ...r, durationMs: Date.now() - started }
      o.onResult?.(out[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min((o.concurrency ?? 4) * Math.max(1, ctxs.length), jobs.length)) }, worker))
  return out
}

export async function checkOnce(ctx: GateContext, g: GateToRun): Promise<GateResult> {
  const def = gateById(g.id)
  const gate = GATE_REGISTRY[g.id]
  const incident = def?.incident ?? 'unknown'
  if (!def || !gate) return { status: 'unknown', summary: `gate ${g.id} has no implementation in this build`, evidence: [], incident, hint: 'upgrade kupgrade, or skip the gate with a reason' }
  try {
    const params = def.params.parse(g.params) as Record<string, unknown>
    if (!ctx.signal) return await gate.check(ctx, params)
    // A gate whose reads ignore the signal must still not hold the caller past its deadline: race it.
    return await untilAborted(gate.check(ctx, params), ctx.signal)
  } catch (err) {
    const e = err as { message?: string; hint?: string }
    // The evidence is one line, what the command printed included: a report escapes a newline to a literal \n.
    return { status: 'unknown', summary: `could not check: ${firstLine(e.message ?? String(err))}`, evidence: [{ source: `gate ${g.id}`, observed: failureReason(err) }], incident, ...(e.hint ? { hint: e.hint } : {}) }
  }
}

/**
 * The check's outcome, or the signal's reason once it aborts (at once if it already has). The listener goes when the
 * check ends: a run's signal sees every check of every gate, and each left one behind (a leak, and Node's
 * MaxListenersExceededWarning on the user's terminal after ten).
 */
function untilAborted<T>(check: Promise<T>, signal: AbortSignal): Promise<T> {
  const reason = () => (signal.reason instanceof Error ? signal.reason : new Error('cancelled'))
  if (signal.aborted) {
    check.catch(() => undefined)
    return Promise.reject(reason())
  }
  return new Promise<T>((resolve, reject) => {
    const fail = () => reject(reason())
    signal.addEventListener('abort', fail, { once: true })
    check.then(resolve, reject).finally(() => signal.removeEventListener('abort', fail))
  })
}

const firstLine = (s: string) => s.split('\n')[0]!.slice(0, 300)

/** fail and unknown block; warn does not. */
export const blocks = (s: GateStatus): boolean => s === 'fail' || s === 'unknown'

export const worstStatus = (rs: { status: GateStatus }[]): GateStatus =>
  rs.some((r) => r.status === 'fail') ? 'fail' : rs.some((r) => r.status === 'unknown') ? 'unknown' : rs.some((r) => r.status === 'warn') ? 'warn' : 'pass'
