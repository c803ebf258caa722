import { UsageError } from '../errors.js'
import type { FleetFacts } from '../facts/types.js'
import type { LoadedPlan } from '../plan/load.js'
import type { ClusterSpec } from '../plan/schema.js'
import { GATE_LISTS, resolveGates, type ResolvedGate } from '../planner/gates.js'
import type { GateReport } from '../report/gate-report.js'
import type { KubectlClient } from '../transport/kubectl/client.js'
import type { Transport } from '../transport/types.js'
import { GATE_IDS, gateById } from './catalog.js'
import { gateContexts } from './context.js'
import { runGates, type GateRun } from './run.js'

export interface CheckPlanOptions {
  transport: Transport
  env: NodeJS.ProcessEnv
  clusters?: string[]
  /** Only these gate ids (any catalog gate: the plan's parameters when it lists the gate, else the defaults). */
  gates?: string[]
  facts?: FleetFacts
  kubectlFor?: (cluster: ClusterSpec, loaded: LoadedPlan) => KubectlClient
  log?: (m: string) => void
  signal?: AbortSignal
  /** Overall limit per cluster (`--deadline`): what has not answered by then is cancelled and reported unknown. */
  deadlineMs?: number
  onResult?: (r: GateRun) => void
}

/**
 * The pre-gates of a plan, once each, on its clusters: what `kupgrade check` and `plan --live` report. Skipped gates
 * are carried along with their reasons so every output format can show them.
 */
export async function checkPlan(loaded: LoadedPlan, o: CheckPlanOptions): Promise<GateReport> {
  const started = Date.now()
  const resolved = resolveGates(loaded.plan.spec.gates)
  const unknownClusters = (o.clusters ?? []).filter((c) => !loaded.plan.spec.clusters.some((s) => s.name === c))
  if (unknownClusters.length) throw new UsageError(`unknown cluster ${unknownClusters.join(', ')} in --cluster`, `the plan's clusters: ${loaded.plan.spec.clusters.map((c) => c.name).join(', ')}`)
  let gates: ResolvedGate[] = resolved.pre
  let skipped = resolved.skipped.filter((s) => s.lists.includes('pre')).map(({ gate, reason }) => ({ gate, reason }))
  if (o.gates?.length) {
    const bad = o.gates.filter((g) => !gateById(g))
    if (bad.length) throw new UsageError(`unknown gate ${bad.join(', ')} in --gate`, `gates: ${GATE_IDS.join(', ')}`)
    const anywhere = GATE_LISTS.flatMap((l) => resolved[l])
    gates = o.gates.flatMap((id) => {
      const listed = resolved.pre.filter((g) => g.id === id)
      if (listed.length) return listed
      const elsewhere = anywhere.find((g) => g.id === id)
      return [elsewhere ?? { id, params: gateById(id)!.params.parse({}) as Record<string, unknown>, stepParams: { gate: id }, label: id }]
    })
    skipped = skipped.filter((s) => !o.gates!.includes(s.gate))
  }
  const ctxs = gateContexts(loaded, o.clusters, { transport: o.transport, env: o.env, ...(o.facts ? { facts: o.facts } : {}), ...(o.kubectlFor ? { kubectlFor: o.kubectlFor } : {}), ...(o.log ? { log: o.log } : {}), ...(o.signal ? { signal: o.signal } : {}) })
  // One deadline per cluster: its gates share one signal, so a slow API server costs one cluster at most --deadline.
  const timers: NodeJS.Timeout[] = []
  if (o.deadlineMs !== undefined) {
    for (const c of ctxs) {
      const limit = new AbortController()
      timers.push(setTimeout(() => limit.abort(new DeadlineExceeded(c.cluster, o.deadlineMs!)), o.deadlineMs))
      c.signal = c.signal ? AbortSignal.any([c.signal, limit.signal]) : limit.signal
    }
  }
  let results: GateRun[]
  try {
    results = await runGates(ctxs, gates, { ...(o.onResult ? { onResult: o.onResult } : {}) })
  } finally {
    for (const t of timers) clearTimeout(t)
  }
  return {
    checkedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    clusters: ctxs.map((c) => ({ name: c.cluster, distribution: c.distribution, results: results.filter((r) => r.cluster === c.cluster), skipped, nodes: c.nodes.map((n) => ({ name: n.name, host: n.target.host })) })),
  }
}

/** Why a cluster's gates stopped: named once per gate that was still waiting, with the limit that ran out. */
export class DeadlineExceeded extends Error {
  constructor(readonly cluster: string, readonly ms: number) {
    super(`cluster ${cluster}: no answer within the --deadline of ${ms / 1000}s`)
  }
}
