/**
 * The lab's view of version strings: everything is stored as a plain Kubernetes version (`v1.29.2`) and rendered in
 * the distribution's own format where a real cluster would show it (facts reference §2): k3s `v1.29.2+k3s1`
 * everywhere, k0s `v1.29.2+k0s.0` for the release but a bare `v1.29.2+k0s` from the kubelet and apiserver, kubeadm plain.
 */
export type Distribution = 'k0s' | 'k3s' | 'kubeadm'

const PLAIN = /^v?(\d+)\.(\d+)\.(\d+)(?:\+(?:k3s\d+|k0s(?:\.\d+)?))?$/

/** `v1.29.2+k3s1` / `1.29.2` / `v1.29.2+k0s.0` → `v1.29.2`; undefined when not a release version. */
export function plainVersion(text: string): string | undefined {
  const m = PLAIN.exec(text.trim())
  return m ? `v${m[1]}.${m[2]}.${m[3]}` : undefined
}

export const minorOf = (plain: string): number => Number(plain.split('.')[1])

/** What `/version` gitVersion and the Node's kubeletVersion show. */
export function kubeletVersion(dist: Distribution, plain: string): string {
  if (dist === 'k3s') return `${plain}+k3s1`
  if (dist === 'k0s') return `${plain}+k0s`
  return plain
}

/** What the distribution's installer takes (`INSTALL_K3S_VERSION`, `K0S_VERSION`, `kubeadm upgrade apply`). */
export function releaseVersion(dist: Distribution, plain: string): string {
  if (dist === 'k3s') return `${plain}+k3s1`
  if (dist === 'k0s') return `${plain}+k0s.0`
  return plain
}

/** Numeric comparison of plain versions. */
export function comparePlain(a: string, b: string): number {
  const pa = a.slice(1).split('.').map(Number)
  const pb = b.slice(1).split('.').map(Number)
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return (pa[i] ?? 0) - (pb[i] ?? 0)
  return 0
}
