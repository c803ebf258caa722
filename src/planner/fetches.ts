import type { BinarySource, ClusterPlan } from './types.js'

/** A release a node's steps will fetch (a replace-binary step): its upgrade's, or what a rebuild reinstalls. */
export interface ReleaseFetch {
  node: string
  release: string
  source: BinarySource
  /** The step's backup folder (where an earlier try of the hop kept what the fetch replaces). */
  kept: string
  /** Only a rebuild of the node (onFailure: rebuild) fetches it. */
  rebuild?: true
}

/** A planned cluster never changes: its fetches are read off it once. */
const known = new WeakMap<object, readonly ReleaseFetch[]>()

/**
 * Every release each node of a cluster may fetch, read off the planned steps themselves (the upgrade's and each
 * rebuild's), so what is checked before a run is exactly what the run would fetch; one per node and release.
 */
export function releaseFetches(c: Pick<ClusterPlan, 'steps' | 'rebuild'>): readonly ReleaseFetch[] {
  const seen = known.get(c)
  if (seen) return seen
  const out = new Map<string, ReleaseFetch>()
  const add = (steps: ClusterPlan['steps'], rebuild: boolean): void => {
    for (const s of steps) {
      // A step planned as skipped (its node already at the target, read live) fetches nothing.
      if (s.action !== 'replace-binary' || !s.node || s.skip !== undefined) continue
      const key = `${s.node}\0${s.params.release}`
      // The upgrade's own come first: a rebuild that reinstalls the same release adds nothing.
      if (!out.has(key)) out.set(key, { node: s.node, release: s.params.release, source: s.params.source, kept: s.params.kept, ...(rebuild ? { rebuild: true as const } : {}) })
    }
  }
  add(c.steps, false)
  for (const r of c.rebuild ?? []) if (r.automatic) add(r.steps, true)
  const fetches = [...out.values()]
  known.set(c, fetches)
  return fetches
}
