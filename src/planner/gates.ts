import { DEFAULT_GATES, gateById } from '../gates/catalog.js'

export interface ResolvedGate {
  id: string
  params: Record<string, unknown>
  /** `{ gate, ...params }`, built once and shared by every step that runs this gate. */
  stepParams: Readonly<Record<string, unknown>>
  /** `certificates (minValidity 30d)`: how plan output names it. */
  label: string
}

export type GateLists = Record<keyof typeof DEFAULT_GATES, ResolvedGate[]>

/** The plan's gate lists with catalog defaults filled in; a list the plan leaves out gets every built-in default. */
export function resolveGates(gates: Partial<Record<keyof typeof DEFAULT_GATES, unknown[] | undefined>>): GateLists {
  const out = {} as GateLists
  for (const list of Object.keys(DEFAULT_GATES) as (keyof typeof DEFAULT_GATES)[]) {
    const entries: unknown[] = gates[list] ?? [...DEFAULT_GATES[list]]
    out[list] = entries.map((entry) => {
      const [id, raw] = typeof entry === 'string' ? [entry, {}] : Object.entries(entry as Record<string, unknown>)[0]!
      const def = gateById(id)
      if (!def) throw new Error(`unknown gate ${id} reached the planner (validation should have refused it)`)
      const params = def.params.parse(raw ?? {}) as Record<string, unknown>
      const explicit = typeof entry === 'string' ? {} : ((raw ?? {}) as Record<string, unknown>)
      const shown = Object.entries(explicit).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : String(v)}`)
      return { id, params, stepParams: Object.freeze({ gate: id, ...params }), label: shown.length ? `${id} (${shown.join(', ')})` : id }
    })
  }
  return out
}
