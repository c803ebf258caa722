import { readApiFacts } from '../../facts/api-facts.js'
import type { ClusterFacts, NodeFacts } from '../../facts/types.js'
import { unlistedNodes } from '../../facts/unlisted.js'
import { compareKubeVersions, parseKubeVersion, type KubeVersion } from '../../plan/versions.js'
import { checkApiserverUpgrade, evaluateSkew } from '../skew/policy.js'
import { skewEvidence, skewStateFromFacts } from '../skew/from-facts.js'
import type { SkewPolicy, SkewState, SkewViolation } from '../skew/types.js'
import type { Gate, GateContext, GateResult } from '../types.js'

/**
 * `version-skew` on the live cluster: the Kubernetes version skew policy (gates/skew/policy.ts) over the versions the
 * facts layer reads. Before the control plane moves (a target above the running apiservers), also the upgrade-order
 * prerequisites of the next minor under the plan's policy (conservative: kubelets ≥ N-2; permissive: N-3), and with
 * kubeadm the kubelet check `kubeadm upgrade apply` makes. A node-scoped check judges that node (and the apiservers).
 */
const INCIDENT = 'kubelet-kube-proxy-skew'

export const versionSkewGate: Gate<{ policy?: SkewPolicy }> = {
  id: 'version-skew',
  async check(ctx, params) {
    let facts: ClusterFacts
    try {
      facts = ctx.facts ?? (await readFacts(ctx))
    } catch (err) {
      return unknown(`could not read versions from the API: ${(err as Error).message}`, [{ source: 'kubectl', observed: (err as Error).message }])
    }
    const state = skewStateFromFacts(facts)
    const evidence = skewEvidence(facts, ctx.node)
    if (!state.components.some((c) => c.component === 'kube-apiserver' && parseKubeVersion(c.version))) {
      return unknown('no kube-apiserver version could be read: skew cannot be judged', evidence)
    }
    const found: SkewViolation[] = evaluateSkew(state).map((v) => transitional(v, facts, ctx))
    const next = nextControlPlaneVersion(facts, ctx)
    const unlisted = new Set(facts.unlistedNodes.map((n) => n.name))
    if (next && ctx.scope === 'cluster') {
      found.push(...checkApiserverUpgrade(state, { to: next, policy: params.policy ?? 'conservative', kubeadmApply: facts.distribution === 'kubeadm', staying: unlisted }))
      if (facts.distribution === 'k0s') found.push(...k0sProxyOutrunsUnlisted(facts, next))
      found.push(...controlPlaneLeftBehind(state, facts, next))
    }
    const relevant = (ctx.node ? found.filter((v) => v.node === undefined || v.node === ctx.node || v.component === 'kube-apiserver') : found)
      .map((v) => (v.node !== undefined && unlisted.has(v.node) ? { ...v, message: `${v.message} (${v.node} is not in the plan: this run does not upgrade it)` } : v))
    for (const v of relevant) evidence.push({ source: `${v.rule}${v.node ? ` (${v.node})` : ''}`, observed: v.message })
    const errors = relevant.filter((v) => v.severity === 'error')
    const unknowns = relevant.filter((v) => v.severity === 'unknown')
    const warnings = relevant.filter((v) => v.severity === 'warning')
    if (errors.length > 0) {
      return {
        status: 'fail',
        summary: `${errors.length} version skew violation${errors.length === 1 ? '' : 's'}: ${errors[0]!.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`,
        evidence,
        hint: unlistedHint(errors, facts.unlistedNodes) ?? 'bring the components named within the skew policy first (https://kubernetes.io/releases/version-skew-policy/): upgrade lagging kubelets/kube-proxy, or finish the control plane before the nodes',
        incident: INCIDENT,
      }
    }
    if (unknowns.length > 0) return unknown(unknowns.map((v) => v.message).join('; '), evidence)
    if (warnings.length > 0) {
      return { status: 'warn', summary: warnings[0]!.message, evidence, hint: 'upgrade the lagging nodes before the next control-plane upgrade', incident: INCIDENT }
    }
    const where = ctx.node ? `node ${ctx.node}` : `${facts.nodes.length} node${facts.nodes.length === 1 ? '' : 's'}${unlisted.size ? ` and ${unlisted.size} not in the plan` : ''}`
    return { status: 'pass', summary: `kubelet, kube-proxy and kube-apiserver versions within the skew policy (${where}${next ? `, ready for ${next}` : ''})`, evidence, incident: INCIDENT }
  },
}

/**
 * States k0s's own upgrade order makes and the rest of the hop ends, warnings rather than failures. Mid-hop, the
 * controllers already run the hop's kube-proxy on every node, so a worker still waiting for its turn has a kube-proxy
 * one minor above its kubelet until it is upgraded: a warning on such a node, never on one the hop has reached (or
 * skipped past).
 */
function transitional(v: SkewViolation, facts: ClusterFacts, ctx: GateContext): SkewViolation {
  // No hop ever reaches a node the plan does not list: its mismatch is no passing state.
  if (v.rule !== 'k0s-kube-proxy-matches-kubelet' || v.node === undefined || facts.unlistedNodes.some((n) => n.name === v.node)) return v
  const kubelet = parseKubeVersion(facts.nodes.find((n) => n.name === v.node)?.kubeletVersion ?? '')
  const proxy = parseKubeVersion(v.version)
  if (!kubelet || !proxy) return v
  const to = ctx.hopInProgress ? parseKubeVersion(ctx.hopInProgress.to) : undefined
  if (to && kubelet.minor === to.minor - 1 && proxy.minor === to.minor) {
    return { ...v, severity: 'warning', message: `${v.message} — until the hop to ${ctx.hopInProgress!.to} reaches it: k0s's controllers already run that kube-proxy on every node` }
  }
  // The other way round, on a controller that runs a kubelet (--enable-worker) and has just moved: k0s rolls its
  // kube-proxy DaemonSet out from its controllers, so on a controller of several it stays at the old minor until the
  // controllers have moved. Judged at that node's own after-gates only; the hop's post-gates hold the strict rule.
  const expected = ctx.scope === 'node' && ctx.node === v.node ? parseKubeVersion(ctx.expectedVersion ?? '') : undefined
  const controller = ctx.nodes.find((n) => n.name === v.node)?.role === 'control-plane' && ctx.nodes.filter((n) => n.role === 'control-plane').length > 1
  if (expected && controller && kubelet.minor === expected.minor && proxy.minor === expected.minor - 1) {
    return { ...v, severity: 'warning', message: `${v.message} — until every controller runs ${ctx.expectedVersion}: k0s moves its kube-proxy DaemonSet with its controllers` }
  }
  return v
}

/**
 * k0s's controllers roll their kube-proxy DaemonSet out to every node as they move, so a node the plan does not list
 * gets the next minor's kube-proxy while its kubelet stays where it is: a pair k0s does not allow. Caught before the
 * control plane moves, not by the post-gates once it has.
 */
function k0sProxyOutrunsUnlisted(facts: ClusterFacts, next: string): SkewViolation[] {
  const to = parseKubeVersion(next)
  const out: SkewViolation[] = []
  for (const n of facts.unlistedNodes) {
    const kubelet = parseKubeVersion(n.kubeletVersion ?? '')
    if (!to || !kubelet || kubelet.minor >= to.minor) continue
    out.push({
      rule: 'k0s-kube-proxy-matches-kubelet', severity: 'error', component: 'kube-proxy', node: n.name, version: next,
      message: `kube-proxy on ${n.name} moves to v${to.major}.${to.minor} with k0s's controllers while its kubelet stays at ${kubelet.raw}: k0s requires the same minor`,
    })
  }
  return out
}

/**
 * A control-plane node the plan does not list keeps its kube-apiserver where it is, while the run moves the kubelets
 * of the nodes it lists to `next`; workers and DaemonSet kube-proxies reach every apiserver through the API endpoint,
 * and none may be newer than an apiserver it reaches. The upgrade-order prerequisites allow an apiserver one minor
 * behind, so without this the control plane moved and the first worker's after-node gates stopped the run. With a
 * stacked etcd the etcd gate sees such a node too (a member no planned node accounts for); with an external datastore
 * (k3s on MySQL or PostgreSQL, kubeadm with external etcd) this is what does.
 */
function controlPlaneLeftBehind(state: SkewState, facts: ClusterFacts, next: string): SkewViolation[] {
  const to = parseKubeVersion(next)
  if (!to) return []
  const unlisted = new Set(facts.unlistedNodes.map((n) => n.name))
  const out: SkewViolation[] = []
  // A k0s controller with no Node shows only its lease: whatever its version, this run leaves it where it is.
  for (const n of facts.unlistedNodes) {
    if (!n.controllerLease) continue
    out.push({
      rule: 'kubelet-newer-than-apiserver', severity: 'error', component: 'kube-apiserver', node: n.name, version: 'unknown',
      message: `${n.name} runs a k0s controller (its lease ${n.controllerLease} is held) with no Node, so its version cannot be read through the API, and this run would leave its kube-apiserver where it is while it moves the kubelets to v${to.major}.${to.minor}`,
    })
  }
  for (const c of state.components) {
    if (c.component !== 'kube-apiserver' || c.node === undefined || !unlisted.has(c.node)) continue
    const v = parseKubeVersion(c.version)
    if (!v || v.major !== to.major || v.minor >= to.minor) continue
    out.push({
      rule: 'kubelet-newer-than-apiserver', severity: 'error', component: 'kube-apiserver', node: c.node, version: c.version,
      message: `kube-apiserver ${v.raw} on ${c.node} stays at v${v.major}.${v.minor} while this run moves the kubelets to v${to.major}.${to.minor}: no kubelet may be newer than a kube-apiserver it can reach`,
    })
  }
  return out
}

/** What to do when the nodes out of skew include ones the plan does not list (none: undefined). */
function unlistedHint(errors: SkewViolation[], unlisted: ClusterFacts['unlistedNodes']): string | undefined {
  const named = new Set(errors.map((v) => v.node))
  const nodes = unlisted.filter((n) => named.has(n.name))
  if (nodes.length === 0) return undefined
  const one = nodes.length === 1
  const it = one ? 'it' : 'them'
  // A k0s controller seen by its held lease runs: there is no Node object to delete, and a gone one's lease expires.
  const gone = nodes.every((n) => n.controllerLease) ? '' : `, or delete ${one ? 'its Node object' : 'their Node objects'} (kubectl delete node) if the machine is gone`
  return `${nodes.map((n) => n.name).join(', ')} ${one ? 'is' : 'are'} in the API but not in the plan, so this run leaves ${it} as ${one ? 'it is' : 'they are'}: upgrade ${it} first${gone ? ',' : ' or'} list ${it} in the cluster's nodes (plan --live then says whether the hops can take ${it} along)${gone}`
}

function unknown(summary: string, evidence: GateResult['evidence']): GateResult {
  return { status: 'unknown', summary, evidence, hint: 'check that kubectl reaches the cluster and that nodes report their versions', incident: INCIDENT }
}

/** The minor the control plane moves to next, when the target is above the running apiservers: target, or one minor up. */
function nextControlPlaneVersion(facts: ClusterFacts, ctx: GateContext): string | undefined {
  const targetText = facts.target ?? (ctx.scope === 'cluster' ? ctx.expectedVersion : undefined)
  const target = targetText ? parseKubeVersion(targetText) : undefined
  const running = facts.apiserverVersions.map((a) => parseKubeVersion(a.version)).filter((v): v is KubeVersion => v !== undefined)
  if (!target || running.length === 0) return undefined
  const newest = running.reduce((a, b) => (compareKubeVersions(b, a) > 0 ? b : a))
  if (target.major !== newest.major || target.minor <= newest.minor) return undefined
  return target.minor === newest.minor + 1 ? target.raw : `v${newest.major}.${newest.minor + 1}.0`
}

/** API-only facts when the caller has none: /version, Node status, kube-system pods (three kubectl calls). */
async function readFacts(ctx: GateContext): Promise<ClusterFacts> {
  const a = await readApiFacts(ctx.kubectl, ctx.distribution)
  const nodes: NodeFacts[] = ctx.nodes.map((n) => {
    const api = a.nodes.get(n.name)
    // k3s runs kube-proxy inside the k3s process, whose version the node's kubelet reports.
    const proxy = ctx.distribution === 'k3s' ? api?.kubeletVersion : a.kubeProxy.get(n.name)
    return {
      name: n.name, role: n.role, host: n.target.host,
      ...(api?.kubeletVersion ? { kubeletVersion: api.kubeletVersion } : {}),
      ...(proxy ? { kubeProxyVersion: proxy } : {}),
      kubeProxySource: proxy ? (ctx.distribution === 'k3s' ? 'k3s-process' : 'daemonset-pod') : 'none',
      roles: api?.roles ?? [], inApi: api !== undefined, disk: [], services: {},
    }
  })
  const apiserverVersions: ClusterFacts['apiserverVersions'] = [{ version: a.version, source: '/version' }, ...a.apiserverPods]
  // A k3s server's kubelet is the apiserver's own process: its version is that apiserver's.
  if (ctx.distribution === 'k3s') for (const n of nodes) if (n.role === 'control-plane' && n.kubeletVersion) apiserverVersions.push({ version: n.kubeletVersion, source: 'k3s server', node: n.name })
  const unlisted = unlistedNodes(ctx.distribution, a, new Set(ctx.nodes.map((n) => n.name)))
  return { name: ctx.cluster, distribution: ctx.distribution, from: '', ...(ctx.expectedVersion ? { target: ctx.expectedVersion } : {}), apiserverVersions, nodes, unlistedNodes: unlisted }
}
