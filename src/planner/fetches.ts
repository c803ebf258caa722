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

/** A node whose steps point its Kubernetes package repository at another minor (kubeadm's switch-repo, facts §3.3). */
export interface RepoSwitch {
  node: string
  minor: string
}

/** A planned cluster never changes: what it fetches is read off it once. */
const known = new WeakMap<object, { fetches: readonly ReleaseFetch[]; switches: readonly RepoSwitch[] }>()

/**
 * Every release each node of a cluster may fetch, read off the planned steps themselves (the upgrade's and each
 * rebuild's), so what is checked before a run is exactly what the run would fetch; one per node and release.
 */
export const releaseFetches = (c: Pick<ClusterPlan, 'steps' | 'rebuild'>): readonly ReleaseFetch[] => readOff(c).fetches

/** Every repository switch of each node's planned steps (the upgrade's and each rebuild's), one per node and minor. */
export const repoSwitches = (c: Pick<ClusterPlan, 'steps' | 'rebuild'>): readonly RepoSwitch[] => readOff(c).switches

function readOff(c: Pick<ClusterPlan, 'steps' | 'rebuild'>): { fetches: readonly ReleaseFetch[]; switches: readonly RepoSwitch[] } {
  const seen = known.get(c)
  if (seen) return seen
  const fetches = new Map<string, ReleaseFetch>()
  const switches = new Map<string, RepoSwitch>()
  const add = (steps: ClusterPlan['steps'], rebuild: boolean): void => {
    for (const s of steps) {
      // A step planned as skipped (its node already at the target, read live) fetches nothing.
      if (!s.node || s.skip !== undefined) continue
      // The upgrade's own come first: a rebuild that reinstalls the same release adds nothing.
      const mark = rebuild ? { rebuild: true as const } : {}
      if (s.action === 'replace-binary') {
        const key = `${s.node}\0${s.params.release}`
        if (!fetches.has(key)) fetches.set(key, { node: s.node, release: s.params.release, source: s.params.source, kept: s.params.kept, ...mark })
      } else if (s.action === 'switch-repo') {
        const key = `${s.node}\0${s.params.minor}`
        if (!switches.has(key)) switches.set(key, { node: s.node, minor: s.params.minor })
      }
    }
  }
  add(c.steps, false)
  for (const r of c.rebuild ?? []) if (r.automatic) add(r.steps, true)
  const out = { fetches: [...fetches.values()], switches: [...switches.values()] }
  known.set(c, out)
  return out
}
