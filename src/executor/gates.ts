import { checkOnce } from '../gates/run.js'
import type { GateContext } from '../gates/types.js'
import { waitForGate, type WaitedResult, type WaitOptions } from '../gates/wait.js'
import { parseDuration } from '../util/duration.js'

/**
 * How the executor runs a gate step: the same registry and single check as `check` and `plan --live`
 * (src/gates/run.ts), inside the one wait loop (src/gates/wait.ts). Only the wait differs by where the gate stands:
 * a gate before a change looks once (the state it guards is there or not); a gate after a change polls until it has
 * held `stableFor` checks in a row, because a node that just restarted settles for a while and a pass that then fails
 * is a flap, which is the failure itself.
 */
export type GateRunner = (gate: string, params: Record<string, unknown>, ctx: GateContext, wait: WaitOptions) => Promise<WaitedResult>

export const registryGateRunner: GateRunner = (gate, params, ctx, wait) =>
  waitForGate(() => checkOnce(ctx, { id: gate, params, label: gate }), { ...wait, ...(ctx.signal ? { signal: ctx.signal } : {}) })

/** `spec.gates.wait` of the plan, in milliseconds. */
export interface GateWaitPolicy {
  intervalMs: number
  stableFor: number
  timeoutMs: number
}

export const DEFAULT_GATE_WAIT: GateWaitPolicy = { intervalMs: 2_000, stableFor: 3, timeoutMs: 300_000 }

export function gateWaitPolicy(wait: { interval?: string; stableFor?: number; timeout?: string } | undefined): GateWaitPolicy {
  return {
    intervalMs: parseDuration(wait?.interval ?? '') ?? DEFAULT_GATE_WAIT.intervalMs,
    stableFor: wait?.stableFor ?? DEFAULT_GATE_WAIT.stableFor,
    timeoutMs: parseDuration(wait?.timeout ?? '') ?? DEFAULT_GATE_WAIT.timeoutMs,
  }
}

/**
 * The wait for one gate step. A gate that guards the state before a change (pre-gates, before-node gates, a soak's
 * re-checks) passes on its first pass; a failure there is confirmed by two more checks, one interval apart, before it
 * blocks, because one timed-out probe on a busy network must not stop a fleet's upgrade while a real fault persists
 * and still blocks. A gate that follows a change (after-node and post gates) follows the policy: it must hold
 * `stableFor` checks in a row. `nodes-ready` carries its own timeout: how long a node may take to come back. The
 * interval does not grow: "a fault is detected within one gate interval" (brief §6) must hold on the tenth check too.
 */
export function gateWait(afterChange: boolean, gate: string, params: Record<string, unknown>, policy: GateWaitPolicy): WaitOptions {
  if (!afterChange) return { timeoutMs: Number.POSITIVE_INFINITY, maxChecks: 3, stableFor: 1, intervalMs: policy.intervalMs, backoff: 1 }
  const own = gate === 'nodes-ready' && typeof params.timeout === 'string' ? parseDuration(params.timeout) : undefined
  return { timeoutMs: own ?? policy.timeoutMs, stableFor: policy.stableFor, intervalMs: policy.intervalMs, backoff: 1 }
}
