import { compareKubeVersions, parseKubeVersion, type KubeVersion } from '../../plan/versions.js'
import type { ComponentInstance, SkewComponent, SkewPolicy, SkewState, SkewViolation } from './types.js'

/**
 * The Kubernetes version skew policy (kubernetes/website content/en/releases/version-skew-policy.md; facts reference
 * §1), as a pure function of component versions. Skew is counted in minors: patches never matter.
 *
 * Two editions of the policy exist. Clusters whose newest kube-apiserver is 1.28 or later follow the current one:
 * kubelet and kube-proxy up to 3 minors older than the apiserver (2 when the component itself is older than 1.25),
 * kube-proxy within ±3 minors of its node's kubelet (±2 below 1.25). Before 1.28: kubelet and kube-proxy up to 2
 * older, and kube-proxy the same minor as its node's kubelet. The rest is common to both: HA apiservers within one
 * minor, nothing newer than the oldest apiserver it talks to, controller-manager/scheduler/cloud-controller-manager at
 * most one minor older, kubectl within ±1 of every apiserver.
 */

interface Parsed extends ComponentInstance {
  v: KubeVersion
}
interface Range {
  oldest: KubeVersion
  newest: KubeVersion
  /** The apiservers behind the range, for messages: `v1.31 (cp-2)`. */
  members: Parsed[]
}

/** Minors on one axis, so distances across a (hypothetical) major change are large rather than negative. */
const rank = (v: KubeVersion): number => v.major * 100_000 + v.minor
export const showMinor = (v: KubeVersion): string => `v${v.major}.${v.minor}`
const where = (c: { node?: string }): string => (c.node ? ` on ${c.node}` : '')
const minors = (n: number): string => `${n} minor${n === 1 ? '' : 's'}`

/** The current edition of the policy (n-3) applies from kube-apiserver 1.28 on. */
export const currentEdition = (newestApiserver: KubeVersion): boolean => rank(newestApiserver) >= rank({ major: 1, minor: 28 } as KubeVersion)

/** How many minors a kubelet or kube-proxy of version `v` may trail an apiserver whose newest instance is `newest`. */
export function maxNodeSkew(v: KubeVersion, newest: KubeVersion): number {
  return currentEdition(newest) && rank(v) >= rank({ major: 1, minor: 25 } as KubeVersion) ? 3 : 2
}

/** How far kube-proxy may be from its node's kubelet, either way (0: must match). */
export function maxProxyKubeletSkew(proxy: KubeVersion, newestApiserver: KubeVersion): number {
  if (!currentEdition(newestApiserver)) return 0
  return rank(proxy) >= rank({ major: 1, minor: 25 } as KubeVersion) ? 3 : 2
}

function rangeOf(members: Parsed[]): Range {
  const sorted = [...members].sort((a, b) => compareKubeVersions(a.v, b.v))
  return { oldest: sorted[0]!.v, newest: sorted[sorted.length - 1]!.v, members: sorted }
}

const describeRange = (r: Range): string => {
  const seen = [...new Set(r.members.map((m) => `${showMinor(m.v)}${where(m)}`))]
  return r.members.length === 1 ? `kube-apiserver ${r.members[0]!.v.raw}${where(r.members[0]!)}` : `kube-apiservers ${seen.join(', ')}`
}

// The planner's walk evaluates the same few version strings thousands of times.
const memo = new Map<string, KubeVersion | undefined>()
function parseCached(text: string): KubeVersion | undefined {
  if (memo.has(text)) return memo.get(text)
  if (memo.size > 10_000) memo.clear()
  const v = parseKubeVersion(text)
  memo.set(text, v)
  return v
}

function parseAll(components: ComponentInstance[], out: SkewViolation[]): Parsed[] {
  const parsed: Parsed[] = []
  for (const c of components) {
    const v = parseCached(c.version)
    if (v) parsed.push({ ...c, v })
    else out.push({ rule: 'unreadable-version', severity: 'unknown', component: c.component, ...(c.node ? { node: c.node } : {}), version: c.version, message: `${c.component}${where(c)} reports ${JSON.stringify(c.version)}, which is not a Kubernetes version: its skew cannot be checked` })
  }
  return parsed
}

/** The apiservers a component talks to: its own node's when `talksTo: local` and there is one, else all of them. */
function talkedTo(c: ComponentInstance, apiservers: Parsed[], all: Range): Range {
  if (c.talksTo === 'local' && c.node) {
    const local = apiservers.filter((a) => a.node === c.node)
    if (local.length > 0) return rangeOf(local)
  }
  return all
}

const violation = (c: Parsed, rule: SkewViolation['rule'], severity: SkewViolation['severity'], message: string): SkewViolation => ({
  rule, severity, component: c.component, ...(c.node ? { node: c.node } : {}), version: c.v.raw, message,
})

/** The steady-state policy: every rule that must hold at any moment, including mid-upgrade. */
export function evaluateSkew(state: SkewState): SkewViolation[] {
  const out: SkewViolation[] = []
  const parsed = parseAll(state.components, out)
  const apiservers = parsed.filter((c) => c.component === 'kube-apiserver')
  if (apiservers.length === 0) return out
  const all = rangeOf(apiservers)
  if (rank(all.newest) - rank(all.oldest) > 1) {
    const oldest = all.members[0]!
    out.push(violation(oldest, 'apiserver-ha-skew', 'error', `kube-apiserver instances span ${showMinor(all.oldest)} to ${showMinor(all.newest)} (${describeRange(all)}): the newest and oldest must be within one minor`))
  }
  const kubelets = new Map<string, Parsed>()
  for (const c of parsed) if (c.component === 'kubelet' && c.node) kubelets.set(c.node, c)

  for (const c of parsed) {
    switch (c.component) {
      case 'kube-apiserver':
        break
      case 'kubelet':
      case 'kube-proxy': {
        const r = talkedTo(c, apiservers, all)
        const nodeRule = againstApiservers(c, r)
        out.push(...nodeRule)
        if (c.component === 'kube-proxy') {
          const kubelet = c.node ? kubelets.get(c.node) : undefined
          if (kubelet) out.push(...proxyAgainstKubelet(c, kubelet, all, state.distribution === 'k0s'))
        }
        // k0s supports only adjacent minors between its releases in one cluster (k0s docs/version-skew-policy.md).
        if (state.distribution === 'k0s' && c.component === 'kubelet' && !nodeRule.some((v) => v.severity === 'error')) {
          const behind = rank(r.newest) - rank(c.v)
          if (behind > 1) out.push(violation(c, 'k0s-worker-skew', 'error', `kubelet ${c.v.raw}${where(c)} is ${minors(behind)} older than ${describeRange(r)}: k0s supports workers at most one minor older than the controllers`))
        }
        break
      }
      case 'kube-controller-manager':
      case 'kube-scheduler':
      case 'cloud-controller-manager': {
        const r = talkedTo(c, apiservers, all)
        if (rank(c.v) > rank(r.oldest)) {
          out.push(violation(c, 'control-plane-component-newer-than-apiserver', 'error', `${c.component} ${c.v.raw}${where(c)} is newer than ${r.members.length > 1 ? `the oldest of ${describeRange(r)}` : describeRange(r)}: it must not be newer than any kube-apiserver it talks to`))
        } else if (rank(r.newest) - rank(c.v) > 1) {
          out.push(violation(c, 'control-plane-component-too-old', 'error', `${c.component} ${c.v.raw}${where(c)} is ${minors(rank(r.newest) - rank(c.v))} older than ${describeRange(r)}: at most one minor older is supported`))
        }
        break
      }
      case 'kubectl': {
        const far = all.members.filter((a) => Math.abs(rank(a.v) - rank(c.v)) > 1)
        if (far.length > 0) {
          out.push(violation(c, 'kubectl-skew', 'error', `kubectl ${c.v.raw} is more than one minor from ${far.map((a) => `kube-apiserver ${showMinor(a.v)}${where(a)}`).join(', ')}: kubectl is supported within one minor (older or newer) of every kube-apiserver`))
        }
        break
      }
    }
  }
  return out
}

function againstApiservers(c: Parsed, r: Range): SkewViolation[] {
  const name = c.component
  if (rank(c.v) > rank(r.oldest)) {
    const narrowed = rank(c.v) <= rank(r.newest)
    return [violation(c, name === 'kubelet' ? 'kubelet-newer-than-apiserver' : 'kube-proxy-newer-than-apiserver', 'error',
      `${name} ${c.v.raw}${where(c)} is newer than ${narrowed ? `the oldest of ${describeRange(r)} (mixed apiservers narrow the range)` : describeRange(r)}: ${name} must not be newer than kube-apiserver`)]
  }
  const behind = rank(r.newest) - rank(c.v)
  const limit = maxNodeSkew(c.v, r.newest)
  if (behind > limit) {
    return [violation(c, name === 'kubelet' ? 'kubelet-too-old' : 'kube-proxy-too-old', 'error',
      `${name} ${c.v.raw}${where(c)} is ${minors(behind)} older than ${describeRange(r)}: at most ${limit} ${limit === 2 && currentEdition(r.newest) ? `(${name} older than v1.25) ` : ''}allowed`)]
  }
  if (behind === limit) {
    return [violation(c, name === 'kubelet' ? 'kubelet-blocks-control-plane-upgrade' : 'kube-proxy-blocks-control-plane-upgrade', 'warning',
      `${name} ${c.v.raw}${where(c)} is ${minors(behind)} behind ${describeRange(r)}, the most allowed: it must be upgraded before the control plane can be upgraded`)]
  }
  return []
}

function proxyAgainstKubelet(proxy: Parsed, kubelet: Parsed, all: Range, k0s: boolean): SkewViolation[] {
  const d = rank(proxy.v) - rank(kubelet.v)
  const limit = maxProxyKubeletSkew(proxy.v, all.newest)
  if (Math.abs(d) > limit) {
    const rule = limit === 0
      ? `before v1.28 kube-proxy must be the same minor as the kubelet on its node`
      : `kube-proxy may be at most ${limit} minors older or newer than the kubelet on its node`
    return [violation(proxy, 'kube-proxy-vs-kubelet', 'error', `kube-proxy ${proxy.v.raw}${where(proxy)} is ${minors(Math.abs(d))} ${d > 0 ? 'newer' : 'older'} than kubelet ${kubelet.v.raw}: ${rule}`)]
  }
  if (k0s && d !== 0) {
    return [violation(proxy, 'k0s-kube-proxy-matches-kubelet', 'error', `kube-proxy ${proxy.v.raw}${where(proxy)} is not the minor of kubelet ${kubelet.v.raw}: k0s ships them together and requires the same minor`)]
  }
  return []
}

export interface ApiserverUpgrade {
  /** The node whose kube-apiserver moves; absent: every apiserver of the cluster (a single-instance cluster). */
  node?: string
  /** Nodes whose kube-apiserver does not move whatever `node` says: ones the plan does not list. */
  staying?: ReadonlySet<string>
  to: string
  policy: SkewPolicy
  /** The move is `kubeadm upgrade apply`, which also refuses kubelets more than one minor older than the target. */
  kubeadmApply?: boolean
}

/**
 * The prerequisites of moving one kube-apiserver to N (the policy's "Supported component upgrade order"): no minor
 * skipped, no downgrade, every apiserver at N-1 or N, controller-manager/scheduler/cloud-controller-manager at N-1 or
 * newer, kubelets at N-2 or newer (conservative; the upstream text) or within the steady-state skew of N (permissive),
 * kube-proxy within the steady-state skew of N; with kubeadm also kubeadm's own kubelet check.
 */
export function checkApiserverUpgrade(state: SkewState, up: ApiserverUpgrade): SkewViolation[] {
  const out: SkewViolation[] = []
  const to = parseKubeVersion(up.to)
  const parsed = parseAll(state.components, out)
  if (!to) {
    out.push({ rule: 'unreadable-version', severity: 'unknown', component: 'kube-apiserver', ...(up.node ? { node: up.node } : {}), version: up.to, message: `target ${JSON.stringify(up.to)} is not a Kubernetes version` })
    return out
  }
  const N = showMinor(to)
  const apiservers = parsed.filter((c) => c.component === 'kube-apiserver')
  const moving = apiservers.filter((a) => (up.node === undefined || a.node === up.node) && !(a.node !== undefined && up.staying?.has(a.node)))
  for (const a of moving) {
    if (compareKubeVersions(to, a.v) < 0) {
      out.push(violation(a, 'apiserver-downgrade', 'error', `kube-apiserver ${a.v.raw}${where(a)} would move down to ${to.raw}: downgrades are not supported (restore a backup instead)`))
    } else if (rank(to) - rank(a.v) > 1) {
      out.push(violation(a, 'apiserver-skipped-minor', 'error', `kube-apiserver ${a.v.raw}${where(a)} would jump to ${to.raw}, skipping ${minors(rank(to) - rank(a.v) - 1)}: kube-apiserver must not skip minor versions, even in single-instance clusters`))
    }
  }
  for (const a of apiservers) {
    if (moving.includes(a)) continue
    const d = rank(to) - rank(a.v)
    if (d !== 0 && d !== 1) {
      out.push(violation(a, 'apiserver-ha-skew', 'error', `before a kube-apiserver moves to ${N}, every kube-apiserver must be at ${showMinor({ ...to, minor: to.minor - 1 })} or ${N}; the one${where(a)} is at ${a.v.raw}`))
    }
  }
  const movingNodes = new Set(moving.map((a) => a.node))
  const oneBelow = showMinor({ ...to, minor: to.minor - 1 })
  const tooOldKubeadm: Parsed[] = []
  for (const c of parsed) {
    const behind = rank(to) - rank(c.v)
    switch (c.component) {
      case 'kube-controller-manager':
      case 'kube-scheduler':
      case 'cloud-controller-manager': {
        const talksToMoving = c.talksTo !== 'local' || up.node === undefined || movingNodes.has(c.node) || !apiservers.some((a) => a.node === c.node)
        if (talksToMoving && behind > 1) {
          out.push(violation(c, 'control-plane-component-too-old', 'error', `${c.component} ${c.v.raw}${where(c)} must be at ${oneBelow} before the kube-apiserver it talks to moves to ${N} (at most one minor older)`))
        }
        break
      }
      case 'kubelet': {
        const limit = up.policy === 'conservative' ? 2 : maxNodeSkew(c.v, to)
        if (behind > limit) {
          out.push(violation(c, 'kubelet-too-old-for-apiserver-upgrade', 'error', `kubelet ${c.v.raw}${where(c)} must be at ${showMinor({ ...to, minor: to.minor - limit })} or newer before kube-apiserver moves to ${N} (${up.policy} policy: kubelets at most ${limit} minors behind the new version); upgrade it first`))
        }
        if (up.kubeadmApply && behind > 1) tooOldKubeadm.push(c)
        break
      }
      case 'kube-proxy': {
        const limit = maxNodeSkew(c.v, to)
        if (behind > limit) {
          out.push(violation(c, 'kube-proxy-too-old', 'error', `kube-proxy ${c.v.raw}${where(c)} must be at ${showMinor({ ...to, minor: to.minor - limit })} or newer before kube-apiserver moves to ${N}; upgrade it first`))
        }
        break
      }
    }
  }
  if (tooOldKubeadm.length > 0) {
    const versions = [...new Set(tooOldKubeadm.map((k) => k.v.raw))]
    for (const k of tooOldKubeadm) {
      out.push(violation(k, 'kubeadm-kubelet-too-old', 'error', `kubeadm upgrade apply ${to.raw} refuses kubelets more than one minor older than the target ("There are kubelets in this cluster that are too old that have these versions [${versions.join(' ')}]"): kubelet ${k.v.raw}${where(k)} must be at ${oneBelow} or newer`))
    }
  }
  return out
}

export const isError = (v: SkewViolation): boolean => v.severity === 'error'

/**
 * Which minors of `component` the policy accepts against the given apiservers (for messages and the doc's examples).
 * For kube-apiserver: the minors the other instances may run, the given ones holding the newest.
 */
export function supportedMinors(component: SkewComponent, apiserverVersions: string[], opts: { distribution?: SkewState['distribution'] } = {}): string[] {
  const api = apiserverVersions.map((v) => parseKubeVersion(v)).filter((v): v is KubeVersion => v !== undefined)
  if (api.length === 0) return []
  const newest = api.reduce((a, b) => (rank(b) > rank(a) ? b : a))
  const out: string[] = []
  const last = component === 'kube-apiserver' ? newest.minor : newest.minor + 2
  for (let minor = newest.minor - 6; minor <= last; minor++) {
    if (minor < 0) continue
    const version = `v${newest.major}.${minor}.0`
    const components: ComponentInstance[] = api.map((v, i) => ({ component: 'kube-apiserver', version: v.raw, node: `apiserver-${i + 1}` }))
    components.push({ component, version, ...(component === 'kubectl' ? {} : { node: 'subject' }) })
    const errors = evaluateSkew({ ...(opts.distribution ? { distribution: opts.distribution } : {}), components })
      .filter((v) => isError(v) && (component === 'kube-apiserver' ? v.rule === 'apiserver-ha-skew' : v.node === (component === 'kubectl' ? undefined : 'subject') && v.component === component))
    if (errors.length === 0) out.push(`${newest.major}.${minor}`)
  }
  return out
}
