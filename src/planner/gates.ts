import type { Problem } from '../errors.js'
import { CUSTOM_GATES, DEFAULT_GATES, gateById } from '../gates/catalog.js'

export interface ResolvedGate {
  id: string
  params: Record<string, unknown>
  /** `{ gate, ...params }`, built once and shared by every step that runs this gate. */
  stepParams: Readonly<Record<string, unknown>>
  /** `certificates (minValidity 30d)`: how plan output names it. */
  label: string
}

export type GateList = keyof typeof DEFAULT_GATES
export const GATE_LISTS = Object.keys(DEFAULT_GATES) as GateList[]

/** A default gate the plan turned off, and why: every output format shows these. */
export interface SkippedGate {
  gate: string
  reason: string
  /** The lists it would have run in. */
  lists: GateList[]
}

export type GateLists = Record<GateList, ResolvedGate[]> & { skipped: SkippedGate[] }

export interface PlanGates extends Partial<Record<GateList, unknown[] | undefined>> {
  skip?: { gate: string; reason: string }[] | undefined
}

const isCustom = (id: string) => (CUSTOM_GATES as readonly string[]).includes(id)

/**
 * The gates each point of the plan runs. Defaults cannot vanish by accident: a plan's list adds gates to the
 * defaults or re-parameterises one in place (same position), and only `gates.skip: [{ gate, reason }]` removes a
 * default. Custom gates (command, http, prometheus) may appear several times with different parameters.
 */
export function resolveGates(gates: PlanGates): GateLists {
  const skip = new Map((gates.skip ?? []).map((s) => [s.gate, s.reason]))
  const out = { skipped: [] } as unknown as GateLists
  for (const list of GATE_LISTS) {
    const resolved: ResolvedGate[] = DEFAULT_GATES[list].filter((id) => !skip.has(id)).map((id) => resolveOne(id, undefined))
    for (const entry of gates[list] ?? []) {
      const [id, raw] = typeof entry === 'string' ? [entry, undefined] : Object.entries(entry as Record<string, unknown>)[0]!
      if (skip.has(id) && !isCustom(id)) continue // semantics refuses listing and skipping one gate; the planner stays total
      const gate = resolveOne(id, raw)
      const at = isCustom(id) ? -1 : resolved.findIndex((g) => g.id === id)
      if (at >= 0) resolved[at] = gate
      else resolved.push(gate)
    }
    out[list] = resolved
  }
  for (const [gate, reason] of skip) {
    out.skipped.push({ gate, reason, lists: GATE_LISTS.filter((l) => (DEFAULT_GATES[l] as readonly string[]).includes(gate)) })
  }
  return out
}

function resolveOne(id: string, raw: unknown): ResolvedGate {
  const def = gateById(id)
  if (!def) throw new Error(`unknown gate ${id} reached the planner (validation should have refused it)`)
  const params = def.params.parse(raw ?? {}) as Record<string, unknown>
  const explicit = (raw ?? {}) as Record<string, unknown>
  const shown = Object.entries(explicit).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : String(v)}`)
  return { id, params, stepParams: Object.freeze({ gate: id, ...params }), label: shown.length ? `${id} (${shown.join(', ')})` : id }
}

/** The ids of the gates the plan runs before it changes a cluster. */
export const preGateIds = (gates: PlanGates): string[] => resolveGates(gates).pre.map((g) => g.id)

/**
 * A plan warning that a gate reports too (`Problem.alsoGate`), where that gate runs on that cluster: the gate's verdict
 * says it, with its evidence and hint, so a run or a check does not say it a second time in other words.
 */
export function saidByGate(w: Problem, runs: { gates: readonly string[]; clusters: readonly string[] }): boolean {
  return w.alsoGate !== undefined && runs.gates.includes(w.alsoGate.gate) && runs.clusters.includes(w.alsoGate.cluster)
}
