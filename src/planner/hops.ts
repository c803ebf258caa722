import {
  compareKubeVersions, coreOf, minorDistance, minorOf, parseKubeVersion, resolveDistributionVersion,
  type Distribution, type DistributionVersion, type KubeVersion,
} from '../plan/versions.js'
import { defaultReleases, latestPatch, withReleases, type ReleaseList } from '../plan/releases.js'

/**
 * A hop is one full pass over a cluster to one minor (or patch) version. Control planes may not skip minors
 * (facts reference §1.4, §1.5), so a target two minors ahead is two hops: through the plan's `via` version for the
 * skipped minor when it lists one, else through the latest patch of that minor the distribution released (the release
 * list, plan/releases.ts), as the skew policy recommends.
 */
export interface Hop {
  index: number
  from: string
  to: DistributionVersion
  kind: 'minor' | 'patch'
}

export interface TargetInput {
  kubernetes?: string
  via?: string[]
  /** Releases newer than the shipped list (or an air-gapped mirror's): plain for every distribution, or suffixed. */
  releases?: string[]
  k3s?: string
  k0s?: string
  kubeadm?: string
}

export type HopResult =
  | { ok: true; hops: Hop[] }
  | { ok: false; field: 'from' | 'kubernetes' | 'via' | 'distribution'; message: string }

/** Pure: the hops one cluster goes through from `from` to the plan's target. */
export function planHops(dist: Distribution, fromText: string, target: TargetInput, shipped: ReleaseList = defaultReleases()): HopResult {
  const from = parseKubeVersion(fromText)
  if (!from) return { ok: false, field: 'from', message: `"${fromText}" is not a Kubernetes version (expected e.g. v1.29.2 or v1.29.2+k3s1)` }
  if (from.dist && from.dist !== dist) return { ok: false, field: 'from', message: `"${fromText}" is a ${from.dist} version, but the cluster's distribution is ${dist}` }
  if (!target.kubernetes) return { ok: true, hops: [] }
  let to = parseKubeVersion(target.kubernetes)
  if (!to) return { ok: false, field: 'kubernetes', message: `"${target.kubernetes}" is not a Kubernetes version (expected e.g. v1.30.4)` }
  if (to.dist && to.dist !== dist) {
    return { ok: false, field: 'distribution', message: `target ${target.kubernetes} is a ${to.dist} release, but this cluster runs ${dist}: give a plain version (v${to.major}.${to.minor}.${to.patch}) and set spec.target.${to.dist} instead` }
  }
  // An explicit distribution release (target.k3s: v1.30.4+k3s2) is the real target: it decides whether a cluster at
  // v1.30.4+k3s1 still needs a hop, and refuses a revision downgrade. A mismatching one is reported by validation.
  const explicit = dist === 'k3s' ? target.k3s : dist === 'k0s' ? target.k0s : target.kubeadm
  const pinned = explicit !== undefined && dist !== 'kubeadm' ? parseKubeVersion(explicit) : undefined
  if (pinned && pinned.dist === dist && coreOf(pinned) === coreOf(to)) to = pinned
  const cmp = compareKubeVersions(from, to)
  if (cmp > 0) {
    return { ok: false, field: 'from', message: `downgrade: from ${fromText} is newer than the target ${to.raw}; downgrades are not supported (restore a backup instead)` }
  }
  if (cmp === 0 && (from.dist === undefined || to.dist === undefined || from.revision === to.revision)) return { ok: true, hops: [] }
  const distance = minorDistance(from, to)
  if (Number.isNaN(distance)) return { ok: false, field: 'kubernetes', message: `cannot upgrade across major versions (${fromText} → ${target.kubernetes})` }

  const via: KubeVersion[] = []
  for (const v of target.via ?? []) {
    const parsed = parseKubeVersion(v)
    if (parsed) via.push(parsed)
  }
  const releases = releaseListFor(shipped, dist, target.releases)
  const stops: KubeVersion[] = []
  const missing: string[] = []
  for (let minor = from.minor + 1; minor < to.minor; minor++) {
    const candidates = via.filter((v) => v.major === from.major && v.minor === minor).sort(compareKubeVersions)
    const stop = candidates[candidates.length - 1] ?? latestPatch(releases, dist, from.major, minor)
    if (stop) stops.push(stop)
    else missing.push(`${from.major}.${minor}`)
  }
  if (missing.length > 0) {
    const one = missing.length === 1
    return {
      ok: false,
      field: 'via',
      message: `${fromText} → ${target.kubernetes} skips ${one ? 'minor' : 'minors'} ${missing.join(', ')}, and the release list (refreshed ${releases.refreshed}) has no ${dist} release of ${one ? 'it' : 'them'}: control planes go one minor at a time, so list the latest patch of ${one ? 'it' : 'each'} in spec.target.via (e.g. via: [${missing.map((m) => `v${m}.0`).join(', ')}], with the newest patch released) or in spec.target.releases`,
    }
  }
  const path = [...stops, to]
  let previous = fromText
  const hops: Hop[] = path.map((v, i) => {
    const last = i === path.length - 1
    const resolved = resolveDistributionVersion(dist, v, last ? explicit : undefined)
    const hop: Hop = { index: i + 1, from: previous, to: resolved, kind: minorOf(v) === minorOf(i === 0 ? from : path[i - 1]!) ? 'patch' : 'minor' }
    previous = resolved.release
    return hop
  })
  return { ok: true, hops }
}

/** The shipped list extended by the plan's own `releases`: suffixed entries for their distribution, plain ones for all. */
export function releaseListFor(shipped: ReleaseList, dist: Distribution, extra: readonly string[] | undefined): ReleaseList {
  if (!extra || extra.length === 0) return shipped
  const mine = extra.filter((text) => {
    const v = parseKubeVersion(text)
    return v !== undefined && (v.dist === undefined || v.dist === dist)
  })
  return withReleases(shipped, dist, mine)
}
