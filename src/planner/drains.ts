import type { ClusterPlan } from './types.js'

/**
 * The nodes a cluster's plan drains together, read off its drain steps: a control-plane node alone, the nodes of a
 * worker batch at once (they are cordoned and drained side by side, so their pods need room on the nodes outside the
 * batch). A set drained in every hop is told once; a node whose steps are planned as skipped (already at the target)
 * drains nothing.
 */
export function drainGroups(c: Pick<ClusterPlan, 'steps'>): string[][] {
  const groups = new Map<string, string[]>()
  for (const s of c.steps) {
    if (s.action !== 'drain' || !s.node || s.skip !== undefined) continue
    const key = s.batch !== undefined ? `${s.hop ?? 0} batch ${s.batch}` : `${s.hop ?? 0} node ${s.node}`
    groups.set(key, [...(groups.get(key) ?? []), s.node])
  }
  const seen = new Set<string>()
  return [...groups.values()].filter((g) => {
    const key = [...g].sort().join(' ')
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}
