import { readFileSync } from 'node:fs'
import { ExitCode, KupgradeError } from '../errors.js'
import { compareKubeVersions, parseKubeVersion, type Distribution, type KubeVersion } from './versions.js'

/**
 * Which Kubernetes releases exist, per distribution: the newest patch release of each minor, and the patches a
 * distribution never shipped. It decides the intermediate hop of a plan that crosses several minors (the latest patch
 * of each skipped minor, as the skew policy recommends) and whether a target was released at all. A patch up to the
 * newest listed one is taken as released unless `skipped` names it: upstream cuts every patch in sequence, but k3s
 * left out the ones with upstream regressions (1.24.5, 1.25.1) and some .0 releases, and k0s skips many (it never
 * shipped 1.32.9 or 1.33.5).
 *
 * Checked 2026-12-01 against the git tags of (snapshot dates in brackets):
 *   kubeadm  kubernetes/apiserver `kubernetes-1.x.y` tags, one per upstream release [2026-07-23]
 *            (the same versions as https://dl.k8s.io/release/stable-1.<minor>.txt; pkgs.k8s.io packages are `<version>-1.1`)
 *   k3s      k3s-io/k3s-upgrade tags, cut for every k3s release [2026-04-27]
 *   k0s      k0sproject/k0s release tags [2026-08-21]
 * (kubernetes/website data/releases/eol.yaml still says 1.29.14 is 1.29's final patch; 1.29.15 was released after EOL.)
 * How to refresh (then bump `refreshed`):
 *   kubeadm  curl -fsSL https://dl.k8s.io/release/stable-1.<minor>.txt
 *   k3s      gh api 'repos/k3s-io/k3s/releases?per_page=100' --paginate -q '.[] | select(.prerelease|not) | .tag_name'
 *   k0s      gh api 'repos/k0sproject/k0s/releases?per_page=100' --paginate -q '.[] | select(.prerelease|not) | .tag_name'
 * and keep, per minor, the highest version (k3s/k0s: highest revision of that patch) and the patches below it that
 * have no release.
 *
 * Newer releases than this list, or an air-gapped mirror with its own: set KUPGRADE_RELEASES to a JSON file of the
 * same shape ({ "k3s": { "1.35": "v1.35.1+k3s1" }, ... }; entries override and extend this list), or list the
 * versions in the plan's spec.target.releases.
 */
export interface ReleaseList {
  /** When the list was last checked against the sources above (YYYY-MM-DD). */
  refreshed: string
  /** Per distribution, minor (`1.30`) → newest patch release in the distribution's own spelling. */
  latest: Record<Distribution, Record<string, string>>
  /** Per distribution, minor → patch numbers below the newest that the distribution never released. */
  skipped?: Partial<Record<Distribution, Record<string, number[]>>>
}

export const SHIPPED_RELEASES: ReleaseList = {
  refreshed: '2026-12-01',
  latest: {
    kubeadm: {
      '1.24': 'v1.24.17', '1.25': 'v1.25.16', '1.26': 'v1.26.15', '1.27': 'v1.27.16', '1.28': 'v1.28.15', '1.29': 'v1.29.15',
      '1.30': 'v1.30.14', '1.31': 'v1.31.14', '1.32': 'v1.32.13', '1.33': 'v1.33.13', '1.34': 'v1.34.10', '1.35': 'v1.35.7',
      '1.36': 'v1.36.3',
    },
    k3s: {
      '1.24': 'v1.24.17+k3s1', '1.25': 'v1.25.16+k3s4', '1.26': 'v1.26.15+k3s1', '1.27': 'v1.27.16+k3s1', '1.28': 'v1.28.15+k3s1',
      '1.29': 'v1.29.15+k3s1', '1.30': 'v1.30.14+k3s2', '1.31': 'v1.31.14+k3s1', '1.32': 'v1.32.13+k3s1', '1.33': 'v1.33.12+k3s1',
      '1.34': 'v1.34.8+k3s1', '1.35': 'v1.35.5+k3s1', '1.36': 'v1.36.1+k3s1',
    },
    k0s: {
      '1.24': 'v1.24.17+k0s.0', '1.25': 'v1.25.16+k0s.0', '1.26': 'v1.26.15+k0s.0', '1.27': 'v1.27.16+k0s.0', '1.28': 'v1.28.15+k0s.0',
      '1.29': 'v1.29.15+k0s.0', '1.30': 'v1.30.14+k0s.0', '1.31': 'v1.31.14+k0s.0', '1.32': 'v1.32.13+k0s.0', '1.33': 'v1.33.13+k0s.1',
      '1.34': 'v1.34.10+k0s.0', '1.35': 'v1.35.7+k0s.0', '1.36': 'v1.36.3+k0s.2',
    },
  },
  skipped: {
    k3s: { '1.24': [0, 5], '1.25': [1], '1.27': [0], '1.28': [0], '1.34': [0] },
    k0s: {
      '1.24': [0, 1, 5, 13], '1.25': [0, 1, 9], '1.27': [0], '1.28': [0, 1], '1.29': [0, 12], '1.30': [8], '1.31': [0, 4],
      '1.32': [0, 9], '1.33': [0, 5], '1.34': [0], '1.35': [0], '1.36': [0],
    },
  },
}

/** A release list extended by more versions: each is the newest of its minor if it is newer than what is listed. */
export function withReleases(base: ReleaseList, dist: Distribution, versions: readonly string[]): ReleaseList {
  const latest = { ...base.latest, [dist]: { ...base.latest[dist] } }
  const skipped = { ...base.skipped, [dist]: { ...base.skipped?.[dist] } }
  for (const text of versions) {
    const v = parseKubeVersion(text)
    if (!v || v.pre) continue
    const key = `${v.major}.${v.minor}`
    // Listed by the user (a mirror, a newer list): released, whatever the shipped list says it skipped.
    if (skipped[dist]![key]?.includes(v.patch)) skipped[dist]![key] = skipped[dist]![key]!.filter((p) => p !== v.patch)
    const known = latest[dist][key] ? parseKubeVersion(latest[dist][key]!) : undefined
    if (!known || compareKubeVersions(v, known) > 0) latest[dist][key] = text.trim()
  }
  return { ...base, latest, skipped }
}

let cached: { env: string | undefined; list: ReleaseList } | undefined

/** The shipped list, extended by the file KUPGRADE_RELEASES names. A broken file is an error, never silently ignored. */
export function defaultReleases(env: NodeJS.ProcessEnv = process.env): ReleaseList {
  const file = env.KUPGRADE_RELEASES
  if (cached && cached.env === file) return cached.list
  let list = SHIPPED_RELEASES
  if (file) {
    let raw: unknown
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'))
    } catch (err) {
      throw new KupgradeError(`KUPGRADE_RELEASES=${file}: cannot read a release list (${(err as Error).message})`, { exitCode: ExitCode.invalid, hint: 'point KUPGRADE_RELEASES at a JSON file such as {"k3s": {"1.35": "v1.35.1+k3s1"}}, or unset it' })
    }
    for (const dist of ['kubeadm', 'k3s', 'k0s'] as const) {
      const entries = (raw as Record<string, unknown> | null)?.[dist]
      if (entries === undefined) continue
      if (entries === null || typeof entries !== 'object' || Array.isArray(entries) || Object.values(entries).some((v) => typeof v !== 'string' || !parseKubeVersion(v))) {
        throw new KupgradeError(`KUPGRADE_RELEASES=${file}: "${dist}" must map minors to versions, e.g. {"1.35": "${dist === 'k3s' ? 'v1.35.1+k3s1' : dist === 'k0s' ? 'v1.35.1+k0s.0' : 'v1.35.1'}"}`, { exitCode: ExitCode.invalid })
      }
      list = withReleases(list, dist, Object.values(entries as Record<string, string>))
    }
  }
  cached = { env: file, list }
  return list
}

/** The newest release of `major.minor` for a distribution, parsed; undefined when the list does not know the minor. */
export function latestPatch(list: ReleaseList, dist: Distribution, major: number, minor: number): KubeVersion | undefined {
  const text = list.latest[dist][`${major}.${minor}`]
  return text ? parseKubeVersion(text) : undefined
}

export type ReleaseStatus = { released: true } | { released: false; reason: string }

/**
 * Whether `v` was released for the distribution according to the list: its minor is listed, its patch (k3s/k0s:
 * patch and revision) is not past the newest listed one, and the distribution did not skip that patch.
 */
export function releaseStatus(list: ReleaseList, dist: Distribution, v: KubeVersion): ReleaseStatus {
  if (v.pre) return { released: false, reason: `${v.raw} is a pre-release` }
  const latest = latestPatch(list, dist, v.major, v.minor)
  const where = `the release list (refreshed ${list.refreshed})`
  if (!latest) return { released: false, reason: `${where} has no ${dist} release of ${v.major}.${v.minor}` }
  const core = (x: KubeVersion) => ({ ...x, revision: undefined })
  const byCore = compareKubeVersions(core(v), core(latest))
  if (byCore > 0 || (byCore === 0 && v.revision !== undefined && latest.revision !== undefined && v.revision > latest.revision)) {
    return { released: false, reason: `${where} knows ${dist} ${v.major}.${v.minor} up to ${latest.raw}` }
  }
  if (list.skipped?.[dist]?.[`${v.major}.${v.minor}`]?.includes(v.patch)) {
    return { released: false, reason: `${dist} never released ${v.major}.${v.minor}.${v.patch} (${where} knows ${dist} ${v.major}.${v.minor} up to ${latest.raw})` }
  }
  return { released: true }
}
