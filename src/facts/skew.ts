import { compareKubeVersions, parseKubeVersion, type Distribution, type KubeVersion } from '../plan/versions.js'
import type { ClusterFacts, NodeFacts } from './types.js'

/**
 * Version-skew markers for the live state (Kubernetes version-skew policy, facts §1.2): kubelet and kube-proxy never
 * newer than the oldest apiserver and at most 3 minors older than the newest (2 when the component is older than
 * 1.25); kube-proxy within ±3 minors of its node's kubelet (k0s: the same minor). Three minors behind is legal but
 * blocks the next control-plane upgrade, so it is a warning.
 */
export interface SkewMarker {
  node: string
  component: 'kubelet' | 'kube-proxy'
  severity: 'error' | 'warning'
  /** Short, for a table cell. */
  short: string
  message: string
}

const maxOlder = (v: KubeVersion) => (v.major === 1 && v.minor < 25 ? 2 : 3)
const show = (v: KubeVersion) => `v${v.major}.${v.minor}`

export function apiserverRange(c: ClusterFacts): { oldest: KubeVersion; newest: KubeVersion } | undefined {
  const vs = c.apiserverVersions.map((a) => parseKubeVersion(a.version)).filter((v): v is KubeVersion => v !== undefined)
  if (vs.length === 0) return undefined
  const sorted = [...vs].sort(compareKubeVersions)
  return { oldest: sorted[0]!, newest: sorted[sorted.length - 1]! }
}

function againstApiserver(node: string, component: SkewMarker['component'], v: KubeVersion, r: { oldest: KubeVersion; newest: KubeVersion }): SkewMarker[] {
  const name = component === 'kubelet' ? 'kubelet' : 'proxy'
  if (v.major !== r.oldest.major || v.minor > r.oldest.minor) {
    return [{ node, component, severity: 'error', short: `${name}>apiserver`, message: `${component} ${v.raw} on ${node} is newer than apiserver ${show(r.oldest)}` }]
  }
  const behind = r.newest.minor - v.minor
  if (behind > maxOlder(v)) {
    return [{ node, component, severity: 'error', short: `${name} -${behind}`, message: `${component} ${v.raw} on ${node} is ${behind} minors behind apiserver ${show(r.newest)} (at most ${maxOlder(v)} allowed)` }]
  }
  if (behind === maxOlder(v)) {
    return [{ node, component, severity: 'warning', short: `${name} -${behind}`, message: `${component} ${v.raw} on ${node} is ${behind} minors behind apiserver ${show(r.newest)}: it must be upgraded before the control plane can move` }]
  }
  return []
}

export function nodeSkew(c: ClusterFacts, n: NodeFacts): SkewMarker[] {
  const r = apiserverRange(c)
  const kubelet = n.kubeletVersion ? parseKubeVersion(n.kubeletVersion) : undefined
  const proxy = n.kubeProxyVersion ? parseKubeVersion(n.kubeProxyVersion) : undefined
  const out: SkewMarker[] = []
  if (r && kubelet) out.push(...againstApiserver(n.name, 'kubelet', kubelet, r))
  if (r && proxy) out.push(...againstApiserver(n.name, 'kube-proxy', proxy, r))
  if (kubelet && proxy) out.push(...proxyVsKubelet(c.distribution, n.name, proxy, kubelet))
  return out
}

function proxyVsKubelet(dist: Distribution, node: string, proxy: KubeVersion, kubelet: KubeVersion): SkewMarker[] {
  const d = proxy.minor - kubelet.minor
  if (dist === 'k0s' && d !== 0) {
    return [{ node, component: 'kube-proxy', severity: 'error', short: `proxy≠kubelet`, message: `kube-proxy ${proxy.raw} on ${node} is not the kubelet's minor ${show(kubelet)} (k0s requires them to match)` }]
  }
  const limit = proxy.minor < 25 ? 2 : 3
  if (Math.abs(d) > limit) {
    return [{ node, component: 'kube-proxy', severity: 'error', short: `proxy${d > 0 ? '+' : ''}${d} vs kubelet`, message: `kube-proxy ${proxy.raw} on ${node} is ${Math.abs(d)} minors from kubelet ${kubelet.raw} (at most ${limit})` }]
  }
  return []
}

/** The plan's `from` against the live apiserver: a plan written for another version must not be applied blindly. */
/**
 * How the live control plane compares with the plan's `from` and target. The plan's hops were computed from `from`,
 * so a cluster that is older than `from`, or already past the target, would get the wrong steps: that blocks, unless
 * the cluster sets `allowFromMismatch`. A cluster between `from` and the target is a run that stopped part-way; its
 * done nodes are skipped.
 */
export function fromDisagreement(c: ClusterFacts): { kind: 'same' | 'partial' | 'mismatch'; message: string } | undefined {
  const from = parseKubeVersion(c.from)
  const live = apiserverRange(c)
  if (!from || !live) return undefined
  const seen = [...new Set(c.apiserverVersions.map((a) => a.version))].join(', ')
  const to = c.target ? parseKubeVersion(c.target) : undefined
  if (compareKubeVersions(live.oldest, from) === 0 && compareKubeVersions(live.newest, from) === 0) {
    return { kind: 'same', message: `cluster ${c.name} runs ${seen}, as the plan says` }
  }
  if (compareKubeVersions(live.oldest, from) >= 0 && to && compareKubeVersions(live.newest, to) <= 0) {
    return { kind: 'partial', message: `cluster ${c.name}: the plan says from ${c.from}, the API servers report ${seen}: an upgrade already under way; nodes at the target are skipped` }
  }
  return {
    kind: 'mismatch',
    message: `cluster ${c.name}: the plan says from ${c.from}, but the API servers report ${seen}; the plan's hops were computed from \`from\`, so update it (or set allowFromMismatch: true on the cluster to go ahead anyway)`,
  }
}
