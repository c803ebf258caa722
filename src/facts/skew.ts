import { compareKubeVersions, parseKubeVersion, type KubeVersion } from '../plan/versions.js'
import { evaluateSkew } from '../gates/skew/policy.js'
import { skewStateFromFacts } from '../gates/skew/from-facts.js'
import type { SkewViolation } from '../gates/skew/types.js'
import type { ClusterFacts, NodeFacts } from './types.js'

/**
 * Version-skew markers for the live state's table: the version-skew gate's own steady-state policy
 * (gates/skew/policy.ts) over the same facts, so the table and the gate never disagree about a node (a kubeadm
 * control-plane kubelet judged against its own apiserver, k0s's stricter rules, HA ranges). Three minors behind is legal
 * but blocks the next control-plane upgrade, so it is a warning.
 */
export interface SkewMarker {
  node: string
  component: 'kubelet' | 'kube-proxy'
  severity: 'error' | 'warning'
  /** Short, for a table cell. */
  short: string
  message: string
}

export function apiserverRange(c: ClusterFacts): { oldest: KubeVersion; newest: KubeVersion } | undefined {
  const vs = c.apiserverVersions.map((a) => parseKubeVersion(a.version)).filter((v): v is KubeVersion => v !== undefined)
  if (vs.length === 0) return undefined
  const sorted = [...vs].sort(compareKubeVersions)
  return { oldest: sorted[0]!, newest: sorted[sorted.length - 1]! }
}

/** Each cluster's violations, once for all its nodes (a 2,000-node table asks per node). */
const judged = new WeakMap<ClusterFacts, { nodes: NodeFacts[]; violations: SkewViolation[] }>()

function violationsOf(c: ClusterFacts, n: NodeFacts): SkewViolation[] {
  if (!c.nodes.includes(n)) return evaluateSkew(skewStateFromFacts({ ...c, nodes: [...c.nodes, n] }))
  let j = judged.get(c)
  if (!j || j.nodes !== c.nodes) judged.set(c, (j = { nodes: c.nodes, violations: evaluateSkew(skewStateFromFacts(c)) }))
  return j.violations
}

export function nodeSkew(c: ClusterFacts, n: NodeFacts): SkewMarker[] {
  const out: SkewMarker[] = []
  for (const v of violationsOf(c, n)) {
    if (v.node !== n.name || v.severity === 'unknown' || (v.component !== 'kubelet' && v.component !== 'kube-proxy')) continue
    out.push({ node: n.name, component: v.component, severity: v.severity, short: shortOf(v, c, n), message: v.message })
  }
  return out
}

/** The table cell for a violation: which way the component is off, and by how many minors. */
function shortOf(v: SkewViolation, c: ClusterFacts, n: NodeFacts): string {
  const name = v.component === 'kubelet' ? 'kubelet' : 'proxy'
  const own = parseKubeVersion(v.version)
  const newest = apiserverRange(c)?.newest
  switch (v.rule) {
    case 'kubelet-newer-than-apiserver':
    case 'kube-proxy-newer-than-apiserver':
      return `${name}>apiserver`
    case 'kube-proxy-vs-kubelet': {
      const kubelet = parseKubeVersion(n.kubeletVersion ?? '')
      const d = own && kubelet ? own.minor - kubelet.minor : 0
      return `proxy${d > 0 ? '+' : ''}${d} vs kubelet`
    }
    case 'k0s-kube-proxy-matches-kubelet':
      return 'proxy≠kubelet'
    default:
      return own && newest ? `${name} -${newest.minor - own.minor}` : `${name} skew`
  }
}

/** The plan's `from` against the live apiserver: a plan written for another version must not be applied blindly. */
/**
 * How the live control plane compares with the plan's `from` and target. The plan's hops were computed from `from`,
 * so a cluster that is older than `from`, or already past the target, would get the wrong steps: that blocks, unless
 * the cluster sets `allowFromMismatch`. A cluster between `from` and the target is a run that stopped part-way; its
 * done nodes are skipped.
 */
export function fromDisagreement(c: ClusterFacts): { kind: 'same' | 'at-target' | 'partial' | 'mismatch'; message: string } | undefined {
  const from = parseKubeVersion(c.from)
  const live = apiserverRange(c)
  if (!from || !live) return undefined
  const seen = [...new Set(c.apiserverVersions.map((a) => a.version))].join(', ')
  const to = c.target ? parseKubeVersion(c.target) : undefined
  if (compareKubeVersions(live.oldest, from) === 0 && compareKubeVersions(live.newest, from) === 0) {
    return { kind: 'same', message: `cluster ${c.name} runs ${seen}, as the plan says` }
  }
  // Finished (by an earlier run, or by hand): nothing to warn of, every node there is skipped.
  const kubeletsAt = (v: KubeVersion) => c.nodes.every((n) => { const k = parseKubeVersion(n.kubeletVersion ?? ''); return !n.kubeletVersion || (k !== undefined && compareKubeVersions(k, v) === 0) })
  if (to && compareKubeVersions(live.oldest, to) === 0 && compareKubeVersions(live.newest, to) === 0 && kubeletsAt(to)) {
    return { kind: 'at-target', message: `cluster ${c.name} already runs the target (${seen}; the plan says from ${c.from})` }
  }
  if (compareKubeVersions(live.oldest, from) >= 0 && to && compareKubeVersions(live.newest, to) <= 0) {
    return { kind: 'partial', message: `cluster ${c.name}: the plan says from ${c.from}, the API servers report ${seen}: an upgrade already under way; nodes at the target are skipped` }
  }
  return {
    kind: 'mismatch',
    message: `cluster ${c.name}: the plan says from ${c.from}, but the API servers report ${seen}; the plan's hops were computed from \`from\`, so update it (or set allowFromMismatch: true on the cluster to go ahead anyway)`,
  }
}
