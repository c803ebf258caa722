import { createHash } from 'node:crypto'
import { driverFor } from '../../drivers/registry.js'
import { parseKubeVersion, resolveDistributionVersion } from '../../plan/versions.js'
import type { NodeArch, NodeDistribution } from './types.js'

/**
 * Release strings as each distribution prints them (facts §2): k3s `v1.29.2+k3s1`, k0s `v1.29.2+k0s.0`, kubeadm
 * `v1.29.2`. The lab accepts plain versions and gives them the first distribution revision.
 */
export function releaseForm(dist: NodeDistribution, version: string): string {
  const v = parseKubeVersion(version)
  if (!v) throw new Error(`lab node: not a Kubernetes version: ${version}`)
  return resolveDistributionVersion(dist, v).release
}

/** An 8-hex "git commit" that is stable per release, for `k3s --version` and build info. */
export const commitOf = (release: string): string => createHash('sha1').update(release).digest('hex').slice(0, 8)

/** The binary files a distribution release consists of on a node, with their installed paths (facts §7). */
export function binariesOf(dist: NodeDistribution): { name: string; path: string }[] {
  if (dist === 'k3s') return [{ name: 'k3s', path: 'usr/local/bin/k3s' }]
  if (dist === 'k0s') return [{ name: 'k0s', path: 'usr/local/bin/k0s' }]
  return [
    { name: 'kubeadm', path: 'usr/bin/kubeadm' },
    { name: 'kubelet', path: 'usr/bin/kubelet' },
    { name: 'kubectl', path: 'usr/bin/kubectl' },
  ]
}

/** The binary whose version is the node's "installed version" (what the service runs after a restart). */
export const mainBinaryOf = (dist: NodeDistribution): { name: string; path: string } =>
  dist === 'kubeadm' ? { name: 'kubelet', path: 'usr/bin/kubelet' } : binariesOf(dist)[0]!

/** The systemd unit of the node's Kubernetes service (facts §7): the one the distribution's driver restarts. */
export const unitOf = (dist: NodeDistribution, role: 'control-plane' | 'worker'): string => driverFor(dist).serviceName(role)

/** `LAB_VERSION='…'` is how a stand-in binary carries its version; reading it back is how the lab knows what is
 *  installed: the file on disk is the truth, as on a real node. */
export function versionInBinary(text: string): string | undefined {
  return /^LAB_VERSION='([^']*)'$/m.exec(text)?.[1]
}

/** What `uname -m` says on a machine of each architecture the lab models. */
export const UNAME_MACHINE: Record<NodeArch, string> = { amd64: 'x86_64', arm64: 'aarch64', arm: 'armv7l' }

/** `LAB_BINARY_ARCH='…'`: the architecture a stand-in binary was built for (absent: amd64, the lab's older files). */
export function archInBinary(text: string): NodeArch {
  return (/^LAB_BINARY_ARCH='([^']*)'$/m.exec(text)?.[1] as NodeArch | undefined) ?? 'amd64'
}
