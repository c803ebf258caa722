import type { ClusterPlan, ExecutionPlan, Step } from '../planner/types.js'

/** Shared one-line descriptions, so text and markdown output say the same thing the same way. */
/** The hops as releases, or why there are none: the cluster is at the target, or the plan has no Kubernetes target. */
export const hopsText = (c: ClusterPlan, target: ExecutionPlan['target']): string =>
  c.hops.length > 0 ? c.hops.map((h) => h.to.release).join(' → ')
  : target.kubernetes !== undefined ? 'already at target'
  : target.os ? 'OS packages only'
  : 'none'

export const nodesText = (c: ClusterPlan): string => {
  const workers = c.batches.flat().length
  return `${c.controlPlane.length} control-plane, ${workers} worker${workers === 1 ? '' : 's'}`
}

export const batchesText = (c: ClusterPlan): string =>
  c.batches.length === 0 ? 'no workers' : c.batches.map((b) => b.length).join(' + ') + ` (${c.batches.length} batch${c.batches.length === 1 ? '' : 'es'})`

export const countSteps = (c: ClusterPlan): { total: number; mutating: number; skipped: number } => ({
  total: c.steps.length,
  mutating: c.steps.filter((s) => s.mutates && !s.skip).length,
  skipped: c.steps.filter((s) => s.skip).length,
})

/** A step's undo in a few words: the undo action and the version or target it returns to, or why there is none. */
export const undoText = (s: Step): string => {
  const u = s.undo
  if (!u) return ''
  if ('irreversible' in u) return `not undone: ${u.irreversible}`
  const p = u.params as Record<string, unknown>
  const to = p.release ?? p.version ?? p.minor
  return `${u.action}${typeof to === 'string' && to ? ` ${to}` : ''}`
}

/**
 * onFailure: rebuild, grouped: nodes whose rebuild is the same (same hop, same procedure) share one entry, and an
 * automatic one lists its steps as they would run on the first node of the group.
 */
export function rebuildGroups(c: ClusterPlan): { hop?: number; nodes: string[]; automatic: boolean; detail: string; steps: string[] }[] {
  const groups = new Map<string, { hop?: number; nodes: string[]; automatic: boolean; detail: string; steps: string[] }>()
  for (const r of c.rebuild ?? []) {
    const key = `${r.hop ?? ''}\0${r.automatic}\0${r.detail}`
    const g = groups.get(key)
    if (g) g.nodes.push(r.node)
    else groups.set(key, { ...(r.hop !== undefined ? { hop: r.hop } : {}), nodes: [r.node], automatic: r.automatic, detail: r.detail, steps: r.automatic ? r.steps.map((s) => s.title) : [] })
  }
  return [...groups.values()]
}
