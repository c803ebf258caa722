import { createRequire } from 'node:module'

// Only the two functions used, required directly: semver's index loads all of its ~50 modules (ranges, caches), a
// cost every `plan` and `validate` paid at start.
const require = createRequire(import.meta.url)
const semver = {
  valid: require('semver/functions/valid.js') as typeof import('semver/functions/valid.js'),
  compare: require('semver/functions/compare.js') as typeof import('semver/functions/compare.js'),
}

/**
 * Kubernetes and distribution version strings. semver alone is wrong here: it ignores build metadata
 * (`+k3s1` == `+k3s2`) and compares build identifiers as strings (`+k3s10` < `+k3s2`), and it reads Debian package
 * revisions (`1.30.4-1.1`) as pre-releases (facts reference §2.9). So the core is compared by semver and the
 * distribution revision numerically, here, in one place.
 */
export type Distribution = 'k0s' | 'k3s' | 'kubeadm'
export const DISTRIBUTIONS: readonly Distribution[] = ['k0s', 'k3s', 'kubeadm']

export interface KubeVersion {
  major: number
  minor: number
  patch: number
  /** Pre-release identifiers (`rc.1`), empty for releases. */
  pre: string
  /** Which distribution's build suffix the string carried, if any. */
  dist?: 'k3s' | 'k0s'
  /** `+k3s2` → 2, `+k0s.1` → 1; undefined when absent (kubelet on k0s reports a bare `+k0s`). */
  revision?: number
  raw: string
}

const VERSION = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+(k3s(\d+)|k0s(?:\.(\d+))?))?$/

export function parseKubeVersion(text: string): KubeVersion | undefined {
  const m = VERSION.exec(text.trim())
  if (!m) return undefined
  const [, major, minor, patch, pre, build, k3sRev, k0sRev] = m
  // semver throws (a crash, not a refusal) on numbers past 2^53 and on leading zeros; no release has either, and a
  // value that semver cannot order must never get as far as a comparison, from a plan or from a cluster.
  // Without a pre-release, numbers that pass numberFlaw are always valid semver: only a pre-release needs asking.
  if (numberFlaw([major!, minor!, patch!, k3sRev, k0sRev]) || (pre !== undefined && semver.valid(`${major}.${minor}.${patch}-${pre}`) === null)) return undefined
  const v: KubeVersion = { major: +major!, minor: +minor!, patch: +patch!, pre: pre ?? '', raw: text.trim() }
  if (build?.startsWith('k3s')) {
    v.dist = 'k3s'
    v.revision = Number(k3sRev)
  } else if (build?.startsWith('k0s')) {
    v.dist = 'k0s'
    if (k0sRev !== undefined) v.revision = Number(k0sRev)
  }
  return v
}

const numberFlaw = (parts: (string | undefined)[]): 'leading zeros' | 'too large' | undefined => {
  for (const p of parts) {
    if (p === undefined) continue
    if (/^0\d/.test(p)) return 'leading zeros'
    if (p.length > 15 || !Number.isSafeInteger(Number(p))) return 'too large'
  }
  return undefined
}

/**
 * Why a version written in a plan is refused, in a few words, when it matches the pattern but is not a version anyone
 * released: spaces around it (it would be echoed and sent to installers as written), a number with leading zeros, a
 * number too large to compare, a malformed pre-release. Undefined when it is fine or not version-shaped at all.
 */
export function versionFlaw(text: string): string | undefined {
  if (text !== text.trim() && VERSION.test(text.trim())) return 'it has spaces around it'
  const m = VERSION.exec(text)
  if (!m) return undefined
  const flaw = numberFlaw([m[1], m[2], m[3], m[7], m[8]])
  if (flaw === 'leading zeros') return 'a number in it has leading zeros'
  if (flaw === 'too large') return 'a number in it is too large to be a release'
  if (semver.valid(`${m[1]}.${m[2]}.${m[3]}${m[4] ? `-${m[4]}` : ''}`) === null) return `its pre-release part "${m[4]}" is malformed (dot-separated identifiers, numbers without leading zeros)`
  return undefined
}

/** Debian/RPM package versions from pkgs.k8s.io: `1.30.4-1.1` (upstream version + package revision). */
const PACKAGE_VERSION = /^(\d+)\.(\d+)\.(\d+)-(\d+(?:\.\d+)*)$/
export function parsePackageVersion(text: string): { core: string; revision: string } | undefined {
  const m = PACKAGE_VERSION.exec(text.trim())
  return m && !numberFlaw([m[1], m[2], m[3]]) ? { core: `${m[1]}.${m[2]}.${m[3]}`, revision: m[4]! } : undefined
}

export const coreOf = (v: KubeVersion): string => `${v.major}.${v.minor}.${v.patch}${v.pre ? `-${v.pre}` : ''}`
export const minorOf = (v: KubeVersion): string => `${v.major}.${v.minor}`

/** Orders by core version (pre-releases first), then by distribution revision when both sides carry one. */
export function compareKubeVersions(a: KubeVersion, b: KubeVersion): number {
  // Releases (no pre-release on either side) compare number by number, as semver does; pre-release identifiers have
  // semver's own rules, so those go to it (the skew walk compares thousands of releases per plan).
  const core = a.pre === '' && b.pre === ''
    ? Math.sign(a.major - b.major) || Math.sign(a.minor - b.minor) || Math.sign(a.patch - b.patch)
    : semver.compare(coreOf(a), coreOf(b))
  if (core !== 0) return core
  if (a.revision === undefined || b.revision === undefined) return 0
  return Math.sign(a.revision - b.revision)
}

/** Minor distance b - a within one major; NaN across majors (Kubernetes has never changed major). */
export const minorDistance = (a: KubeVersion, b: KubeVersion): number => (a.major === b.major ? b.minor - a.minor : NaN)

/** The exact strings a distribution uses for a Kubernetes version (facts reference §2). */
export interface DistributionVersion {
  /** Plain Kubernetes version, `v1.30.4`. */
  kubernetes: string
  /** What the distribution's installer takes: `v1.30.4+k3s1`, `v1.30.4+k0s.0`, `v1.30.4` (kubeadm upgrade apply). */
  release: string
  /** What the node's kubelet reports once upgraded: `v1.30.4+k3s1`, `v1.30.4+k0s`, `v1.30.4`. */
  kubelet: string
  /** kubeadm only: the pkgs.k8s.io package version, `1.30.4-1.1`. */
  package?: string
}

/** What a cluster's nodes ran before a hop, from the hop's `from` (taken as it is written where it is no version). */
export function versionBefore(dist: Distribution, from: string): DistributionVersion {
  const v = parseKubeVersion(from)
  return v ? resolveDistributionVersion(dist, v, from) : { kubernetes: from, release: from, kubelet: from }
}

export function resolveDistributionVersion(dist: Distribution, v: KubeVersion, explicit?: string): DistributionVersion {
  const core = coreOf(v)
  const kubernetes = `v${core}`
  switch (dist) {
    case 'k3s': {
      const release = explicit ?? (v.dist === 'k3s' ? `v${core}+k3s${v.revision}` : `v${core}+k3s1`)
      return { kubernetes, release, kubelet: release }
    }
    case 'k0s': {
      const release = explicit ?? (v.dist === 'k0s' && v.revision !== undefined ? `v${core}+k0s.${v.revision}` : `v${core}+k0s.0`)
      return { kubernetes, release, kubelet: `v${core}+k0s` }
    }
    case 'kubeadm':
      return { kubernetes, release: kubernetes, kubelet: kubernetes, package: explicit ?? `${core}-1.1` }
  }
}
