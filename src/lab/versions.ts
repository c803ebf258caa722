import { compareKubeVersions, parseKubeVersion, resolveDistributionVersion, type Distribution, type KubeVersion } from '../plan/versions.js'

/**
 * The lab's view of version strings: it stores plain Kubernetes versions (`v1.29.2`) and renders them in each
 * distribution's own format through the same resolution the planner uses (plan/versions.ts, facts reference §2), so
 * the lab and kupgrade can never disagree about what `v1.29.2` looks like on k3s, k0s or kubeadm.
 */
export type { Distribution }

const parsed = (plain: string): KubeVersion => {
  const v = parseKubeVersion(plain)
  if (!v) throw new Error(`lab: not a Kubernetes version: ${plain}`)
  return v
}

/** `v1.29.2+k3s1` / `1.29.2` / `v1.29.2+k0s.0` → `v1.29.2`; undefined for anything else, pre-releases included. */
export function plainVersion(text: string): string | undefined {
  const v = parseKubeVersion(text)
  return v && !v.pre ? `v${v.major}.${v.minor}.${v.patch}` : undefined
}

export const minorOf = (plain: string): number => parsed(plain).minor

/** What `/version` gitVersion and the Node's kubeletVersion show. */
export const kubeletVersion = (dist: Distribution, plain: string): string => resolveDistributionVersion(dist, parsed(plain)).kubelet

/** What the distribution's installer takes (`INSTALL_K3S_VERSION`, `K0S_VERSION`, `kubeadm upgrade apply`). */
export const releaseVersion = (dist: Distribution, plain: string): string => resolveDistributionVersion(dist, parsed(plain)).release

export const comparePlain = (a: string, b: string): number => compareKubeVersions(parsed(a), parsed(b))
