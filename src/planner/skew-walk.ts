import { readFileSync } from 'node:fs'
import { formatProblem, PlanError, type Problem } from '../errors.js'
import { checkApiserverUpgrade, evaluateSkew } from '../gates/skew/policy.js'
import type { ComponentInstance, SkewPolicy, SkewRule, SkewState, SkewViolation } from '../gates/skew/types.js'
import type { LoadedPlan } from '../plan/load.js'
import { Locator } from '../plan/locate.js'
import type { PlanDocument } from '../plan/schema.js'
import { compareKubeVersions, parseKubeVersion, type Distribution, type KubeVersion } from '../plan/versions.js'
import { buildExecutionPlan } from './build.js'
import { resolveGates } from './gates.js'
import type { ClusterPlan, ExecutionPlan, PlannerFacts, Step } from './types.js'

/**
 * The version-skew policy on every intermediate state of a plan. The planner knows each component's version after
 * each step, so this walks a cluster's steps in order, moves the versions a step changes, and checks the state after
 * it (and, before a kube-apiserver moves, the policy's upgrade-order prerequisites). A plan whose order would break
 * the policy at some step is refused, naming the step and the rule.
 *
 * Steps are read only through fields every step kind keeps: id, action, node, role, hop, cluster, skip. What a step
 * changes, per distribution (facts reference §3):
 * - k3s: the restart (or start, after a stop) of a node's service moves everything on it (servers: apiserver, controller-manager, scheduler,
 *   kubelet, the embedded kube-proxy; agents: kubelet and kube-proxy).
 * - k0s: the restart of a controller moves its control plane; of a worker, its kubelet; kube-proxy is a DaemonSet
 *   the controllers roll out once the last one runs the new version.
 * - kubeadm: the first control-plane node's upgrade-control-plane is `kubeadm upgrade apply`, the others' `kubeadm
 *   upgrade node`; each moves that node's static pods; the kubelet moves at its restart; the kube-proxy DaemonSet
 *   moves with the last control-plane node from 1.28 on (with `apply` before, facts §0.5).
 * Kubelets (and k3s's kube-proxy) on control-plane nodes talk to their own apiserver (k3s servers; kubeadm's
 * documented order, where the first node's kubelet is upgraded before the other apiservers); workers go through the
 * VIP to any apiserver, so mixed apiservers narrow their range.
 *
 * kube-proxy against its node's kubelet is checked when a pass ends rather than at every step where kube-proxy is a
 * DaemonSet (kubeadm, k0s): the DaemonSet follows the control plane and kubelets catch up node by node, an interval no
 * order of steps can avoid.
 */

export interface SkewRefusal {
  cluster: string
  step: string
  rule: SkewRule
  node?: string
  message: string
  /** warning: a breach the distribution's own tool causes and no order of steps avoids (kubeadm before 1.28). */
  severity: 'error' | 'warning'
}

type Versions = { apiserver?: string; controlPlane?: string; kubelet: string; proxy: string }

/** Rules checked only at the end of a pass when kube-proxy is a DaemonSet. */
const DAEMONSET_INTERVAL: ReadonlySet<SkewRule> = new Set(['kube-proxy-vs-kubelet', 'k0s-kube-proxy-matches-kubelet'])

export function walkClusterSkew(cluster: ClusterPlan, nodes: { name: string; role: 'control-plane' | 'worker' }[], opts: { policy: SkewPolicy; facts?: PlannerFacts }): SkewRefusal[] {
  const dist = cluster.distribution as Distribution
  const daemonSetProxy = dist !== 'k3s'
  const nodeFacts = opts.facts?.clusters[cluster.name]?.nodes
  const from = cluster.from
  const state = new Map<string, Versions>()
  const cps = new Set(nodes.filter((n) => n.role === 'control-plane').map((n) => n.name))
  for (const n of nodes) {
    const kubelet = nodeFacts?.[n.name]?.kubeletVersion ?? from
    // A control-plane node whose kubelet already moved (a run that stopped part-way) moved its control plane first.
    const cp = cps.has(n.name) ? (newer(kubelet, from) ? kubelet : from) : undefined
    state.set(n.name, { ...(cp ? { apiserver: cp, controlPlane: cp } : {}), kubelet, proxy: daemonSetProxy ? from : kubelet })
  }

  const refusals: SkewRefusal[] = []
  const seen = new Set<string>()
  const refuse = (step: string, vs: SkewViolation[], inherent?: (v: SkewViolation) => string | undefined) => {
    for (const v of vs) {
      if (v.severity !== 'error') continue
      const key = `${v.rule}|${v.node ?? ''}`
      if (seen.has(key)) continue
      seen.add(key)
      const why = inherent?.(v)
      refusals.push({ cluster: cluster.name, step, rule: v.rule, ...(v.node ? { node: v.node } : {}), message: why ? `${v.message} (${why})` : v.message, severity: why ? 'warning' : 'error' })
    }
  }
  // Workers in the same versions are one case for the policy: one stands for all, so a 2,000-node plan stays cheap.
  const classes = new Map<string, Set<string>>()
  const keyOf = (v: Versions) => `${v.kubelet}|${v.proxy}`
  const regroup = () => {
    classes.clear()
    for (const [name, v] of state) if (!cps.has(name)) classes.set(keyOf(v), (classes.get(keyOf(v)) ?? new Set()).add(name))
  }
  /** Whether the state may differ from the last one evaluated: a class appeared or vanished, or a control plane moved. */
  let dirty = true
  const moveWorker = (name: string, v: Versions, change: () => void) => {
    const before = classes.get(keyOf(v))
    before?.delete(name)
    if (before?.size === 0) {
      classes.delete(keyOf(v))
      dirty = true
    }
    change()
    const after = classes.get(keyOf(v))
    if (after) after.add(name)
    else {
      classes.set(keyOf(v), new Set([name]))
      dirty = true
    }
  }
  regroup()
  const snapshot = (): SkewState => toState(dist, state, cps, classes)
  // kubeadm before 1.28 rolls the kube-proxy DaemonSet at `upgrade apply`, while the other apiservers are still one
  // minor older: a breach kubeadm itself makes (it moved the addons after the last control-plane node in 1.28).
  let proxyAheadOfApiservers = false
  const inherent = (v: SkewViolation) =>
    proxyAheadOfApiservers && v.rule === 'kube-proxy-newer-than-apiserver' ? 'kubeadm before 1.28 upgrades the kube-proxy DaemonSet at upgrade apply, before the other control-plane nodes; no order of steps avoids it' : undefined
  // The verdict depends only on the control-plane nodes' versions and the set of worker classes: a worker joining a
  // class that already exists changes neither, so a state seen before is not evaluated again.
  const evaluated = new Set<string>()
  const check = (step: string, atPassEnd: boolean) => {
    if (!dirty && !atPassEnd) return
    dirty = false
    let signature = `${atPassEnd}|${proxyAheadOfApiservers}`
    for (const n of cps) {
      const v = state.get(n)!
      signature += `|${v.apiserver}/${v.kubelet}/${v.proxy}`
    }
    signature += `|${[...classes.keys()].sort().join(',')}`
    if (evaluated.has(signature)) return
    evaluated.add(signature)
    const vs = evaluateSkew(snapshot())
    refuse(step, daemonSetProxy && !atPassEnd ? vs.filter((v) => !DAEMONSET_INTERVAL.has(v.rule)) : vs, inherent)
  }

  // What already breaks the policy before any step (live facts) is the live version-skew gate's to report, not a
  // step's: it is noted so that only what a step newly breaks is attributed to that step.
  for (const v of evaluateSkew(snapshot())) seen.add(`${v.rule}|${v.node ?? ''}`)
  const byHop = new Map<number, Step[]>()
  for (const s of cluster.steps) {
    if (s.hop === undefined || s.node === undefined) continue
    const list = byHop.get(s.hop)
    if (list) list.push(s)
    else byHop.set(s.hop, [s])
  }

  for (const hop of cluster.hops) {
    const steps = byHop.get(hop.index) ?? []
    const movers = moversOf(dist, steps)
    const lastCpMove = [...movers].reverse().find((m) => m.kind === 'control-plane')
    const firstCpMove = movers.find((m) => m.kind === 'control-plane')
    const to = hop.to
    for (const m of movers) {
      const node = state.get(m.step.node!)
      if (!node) continue
      if (m.kind === 'control-plane' || cps.has(m.step.node!)) dirty = true
      if (m.kind === 'control-plane') {
        if (m.step.skip === undefined) {
          refuse(m.step.id, checkApiserverUpgrade(snapshot(), { node: m.step.node!, to: to.release, policy: opts.policy, kubeadmApply: dist === 'kubeadm' && m === firstCpMove }))
        }
        node.apiserver = atLeast(node.apiserver, to.release)
        node.controlPlane = atLeast(node.controlPlane, to.release)
        if (dist === 'k3s') Object.assign(node, { kubelet: atLeast(node.kubelet, to.kubelet), proxy: atLeast(node.proxy, to.kubelet) })
        if (dist === 'k0s' && m.alsoKubelet) node.kubelet = atLeast(node.kubelet, to.kubelet)
        // The kube-proxy DaemonSet follows the control plane: kubeadm ≥ 1.28 and k0s after the last node, kubeadm < 1.28 at apply.
        const proxyNow = dist === 'kubeadm' && minorOf(to.kubernetes) < 28 ? m === firstCpMove : m === lastCpMove
        if (daemonSetProxy && proxyNow) {
          for (const v of state.values()) v.proxy = atLeast(v.proxy, to.kubelet)
          regroup()
          proxyAheadOfApiservers = dist === 'kubeadm' && m !== lastCpMove
        }
      } else if (cps.has(m.step.node!)) {
        node.kubelet = atLeast(node.kubelet, to.kubelet)
        if (!daemonSetProxy) node.proxy = atLeast(node.proxy, to.kubelet)
      } else {
        moveWorker(m.step.node!, node, () => {
          node.kubelet = atLeast(node.kubelet, to.kubelet)
          if (!daemonSetProxy) node.proxy = atLeast(node.proxy, to.kubelet)
        })
      }
      check(m.step.id, false)
    }
    const end = steps[steps.length - 1]
    if (end) check(end.id, true)
    proxyAheadOfApiservers = false
  }
  return refusals
}

interface Move {
  step: Step
  kind: 'control-plane' | 'kubelet'
  /** k0s controllers that also run a worker move their kubelet at the same restart. */
  alsoKubelet?: boolean
}

/** The steps of one hop that change a version, in order (see the module comment). */
function moversOf(dist: Distribution, steps: Step[]): Move[] {
  const out: Move[] = []
  const restarted = new Set<string>()
  for (const s of steps) {
    const node = s.node!
    if (dist === 'kubeadm') {
      if (s.action === 'upgrade-control-plane' && s.role === 'control-plane') out.push({ step: s, kind: 'control-plane' })
      else if (s.action === 'restart' && !restarted.has(node)) {
        restarted.add(node)
        out.push({ step: s, kind: 'kubelet' })
      }
    } else if ((s.action === 'restart' || s.action === 'start-service') && !restarted.has(node)) {
      restarted.add(node)
      out.push({ step: s, kind: s.role === 'control-plane' ? 'control-plane' : 'kubelet', ...(dist === 'k0s' && s.role === 'control-plane' ? { alsoKubelet: true } : {}) })
    }
  }
  return out
}

function toState(dist: Distribution, state: Map<string, Versions>, cps: Set<string>, classes: Map<string, Set<string>>): SkewState {
  const components: ComponentInstance[] = []
  const add = (node: string, v: Versions, cp: boolean) => {
    if (v.apiserver) components.push({ component: 'kube-apiserver', version: v.apiserver, node })
    if (v.controlPlane) {
      components.push({ component: 'kube-controller-manager', version: v.controlPlane, node, talksTo: 'local' })
      components.push({ component: 'kube-scheduler', version: v.controlPlane, node, talksTo: 'local' })
    }
    components.push({ component: 'kubelet', version: v.kubelet, node, talksTo: cp ? 'local' : 'any' })
    components.push({ component: 'kube-proxy', version: v.proxy, node, talksTo: cp && dist === 'k3s' ? 'local' : 'any' })
  }
  for (const node of cps) add(node, state.get(node)!, true)
  for (const members of classes.values()) {
    const node = members.values().next().value as string
    add(node, state.get(node)!, false)
  }
  return { distribution: dist, components }
}

/**
 * Versions as the walk meets them: a handful of distinct strings, asked about once or more per node and step, so each
 * is parsed once (a bounded cache, as titles are in build.ts).
 */
const parsed = new Map<string, KubeVersion | undefined>()
const parse = (text: string): KubeVersion | undefined => {
  if (parsed.has(text)) return parsed.get(text)
  if (parsed.size > 10_000) parsed.clear()
  const v = parseKubeVersion(text)
  parsed.set(text, v)
  return v
}
const newer = (a: string, b: string): boolean => {
  const x = parse(a)
  const y = parse(b)
  return x !== undefined && y !== undefined && compareKubeVersions(x, y) > 0
}
/** A step never moves a component down: a node already past the hop (a skipped step) keeps its version. */
function atLeast(current: string | undefined, to: string): string {
  return current !== undefined && newer(current, to) ? current : to
}
const minorOf = (v: string): number => parse(v)?.minor ?? 0

/**
 * The plan's version-skew policy parameter: the first version-skew gate listed with one. Undefined when the plan
 * leaves the gate out of every list (turned off on purpose): then the walk does not run either.
 */
export function skewPolicyOf(plan: PlanDocument): SkewPolicy | undefined {
  const gates = resolveGates(plan.spec.gates)
  for (const list of [gates.pre, gates.post, gates.beforeNode, gates.afterNode]) {
    const g = list.find((x) => x.id === 'version-skew')
    if (g) return (g.params.policy as SkewPolicy | undefined) ?? 'conservative'
  }
  return undefined
}

export function walkPlanSkew(exec: ExecutionPlan, plan: PlanDocument, facts?: PlannerFacts): SkewRefusal[] {
  const policy = skewPolicyOf(plan)
  if (!policy) return []
  const out: SkewRefusal[] = []
  for (const stage of exec.stages) {
    for (const c of stage.clusters) {
      const spec = plan.spec.clusters.find((x) => x.name === c.name)
      if (!spec || c.hops.length === 0) continue
      out.push(...walkClusterSkew(c, spec.nodes, { policy, ...(facts ? { facts } : {}) }))
    }
  }
  return out
}

/** The walk as validation problems, each located at its cluster's name in the plan file. */
export function planSkewProblems(plan: PlanDocument, file: string, locator: Locator, facts?: PlannerFacts, exec?: ExecutionPlan): Problem[] {
  return planSkewWalk(plan, file, locator, facts, exec).problems
}

/** The walk's problems and the expansion it walked (built here unless given), so a caller can reuse it. */
export function planSkewWalk(plan: PlanDocument, file: string, locator: Locator, facts?: PlannerFacts, exec?: ExecutionPlan): { problems: Problem[]; expanded: ExecutionPlan } {
  const built = exec ?? buildExecutionPlan(plan, facts ? { facts } : {})
  return { expanded: built, problems: skewProblems(built, plan, file, locator, facts) }
}

function skewProblems(built: ExecutionPlan, plan: PlanDocument, file: string, locator: Locator, facts?: PlannerFacts): Problem[] {
  return walkPlanSkew(built, plan, facts).map((r) => {
    const ci = plan.spec.clusters.findIndex((c) => c.name === r.cluster)
    return {
      file,
      ...locator.at(['spec', 'clusters', ci, 'name']),
      message: `cluster ${r.cluster}: step ${r.step} would break the version skew policy (${r.rule}): ${r.message}`,
      severity: r.severity,
    }
  })
}

/** `plan --live`: the walk on the live versions; a refusal is exit 2 located in the plan file, warnings go to stderr. */
export function refuseLiveSkew(loaded: LoadedPlan, facts: PlannerFacts, exec: ExecutionPlan, stderr: { write(s: string): unknown }): void {
  let source = ''
  try {
    source = readFileSync(loaded.file, 'utf8')
  } catch {
    // Read a moment ago by loadPlan; if it vanished since, the problems are still reported, at line 1.
  }
  const found = planSkewProblems(loaded.plan, loaded.file, Locator.lazy(source), facts, exec)
  for (const w of found.filter((p) => p.severity === 'warning')) stderr.write(`${formatProblem(w)}\n`)
  const errors = found.filter((p) => p.severity !== 'warning')
  if (errors.length > 0) throw new PlanError(errors)
}
