import { planOsUpgrade } from '../drivers/os/index.js'
import { driverFor, titleFor } from '../drivers/registry.js'
import { driverNodeFacts, driverNodeFactsKey, type ClusterInstall, type ControlPlaneNode, type DriverNodeFacts, type NodeRole, type RebuildVersion, type StepTemplate } from '../drivers/types.js'
import type { ClusterSpec, PlanDocument, StageSpec } from '../plan/schema.js'
import { compareKubeVersions, coreOf, parseKubeVersion, resolveDistributionVersion, versionBefore, type Distribution } from '../plan/versions.js'
import { isDnsSubdomain } from '../plan/names.js'
import { parseDuration } from '../util/duration.js'
import { workerBatches } from './batches.js'
import { resolveGates, type GateLists, type ResolvedGate } from './gates.js'
import { planHops, type Hop } from './hops.js'
import {
  EXECUTION_PLAN_SCHEMA_VERSION, type ClusterPlan, type ClusterRestore, type ExecutionPlan, type HookPoint, type PlannerFacts, type PlannerNodeFacts, type RebuildPath, type RollbackPath, type StagePlan, type Step,
  type StepParamsByAction, type UndoSpec,
} from './types.js'

export interface BuildOptions {
  facts?: PlannerFacts
  /** Validation warnings to carry into the plan output. */
  warnings?: string[]
}

/**
 * The one place that decides order. Pure: the same plan (and facts) always gives byte-identical steps, and what
 * `kupgrade plan` prints is, step for step, what `apply` runs.
 *
 * Per stage: approval → hooks → clusters (lock → pre-gates → per hop: backup → control-plane nodes one at a time →
 * worker batches, canary first → post-gates → unlock) → soak before the next stage.
 */
export function buildExecutionPlan(plan: PlanDocument, options: BuildOptions = {}): ExecutionPlan {
  const spec = plan.spec
  const gates = resolveGates(spec.gates)
  const byName = new Map(spec.clusters.map((c) => [c.name, c]))
  const warnings = [...(options.warnings ?? [])]
  const stages: StagePlan[] = spec.stages.map((stage, si) => {
    const isLast = si === spec.stages.length - 1
    const clusters = stage.clusters.map((name) => planCluster(plan, stage, byName.get(name)!, gates, options.facts, warnings))
    const { before, after, onFailureHooks } = stageLevelSteps(plan, stage, isLast)
    if (isLast && parseDuration(stage.soak)! > 0) warnings.push(`stage ${stage.name}: soak ${stage.soak} is ignored on the last stage (no later stage waits for it)`)
    return { name: stage.name, approval: stage.approval, soak: stage.soak, parallelClusters: stage.parallelClusters, clusters, before, after, onFailureHooks }
  })
  if (spec.target.os) {
    for (const c of stages.flatMap((st) => st.clusters)) {
      const kept = new Set(c.steps.filter((s) => s.action === 'os-upgrade' && s.skip !== undefined).map((s) => s.node!))
      if (kept.size > 0) warnings.push(`cluster ${c.name}: ${kept.size} node${kept.size === 1 ? ' is' : 's are'} already at the Kubernetes target and skipped whole, the OS upgrade with ${kept.size === 1 ? 'it' : 'them'} (${[...kept].slice(0, 4).join(', ')}${kept.size > 4 ? ', …' : ''}): kupgrade cannot tell whether their packages are current. To upgrade their OS, apply a plan with target.os and no target.kubernetes`)
    }
  }
  const steps: Step[] = []
  // A loop, not push(...c.steps): spreading a 10,000-node cluster's steps passes each as an argument and overflows
  // the stack (RangeError), so a plan that validates could not be planned.
  for (const stage of stages) {
    for (const s of stage.before) steps.push(s)
    for (const c of stage.clusters) for (const s of c.steps) steps.push(s)
    for (const s of stage.after) steps.push(s)
  }
  return {
    apiVersion: 'kupgrade.dev/v1alpha1',
    kind: 'ExecutionPlan',
    schemaVersion: EXECUTION_PLAN_SCHEMA_VERSION,
    plan: plan.metadata.name,
    target: { kubernetes: spec.target.kubernetes, ...(spec.target.os ? { os: spec.target.os } : {}) },
    stages,
    warnings,
    steps,
  }
}

function stageLevelSteps(plan: PlanDocument, stage: StageSpec, isLast: boolean): { before: Step[]; after: Step[]; onFailureHooks: Step[] } {
  const base = { stage: stage.name, phase: 'stage' as const }
  const steps: Step[] = []
  const after: Step[] = []
  if (stage.approval === 'required') {
    steps.push(step(base, { id: `${stage.name}/approval`, action: 'approval', mutates: false, title: `wait for approval of stage ${stage.name} (kupgrade apply --approve ${stage.name})`, params: { stage: stage.name } }))
  }
  steps.push(...hookSteps(plan.spec.hooks, 'beforeStage', base, `${stage.name}/hook/before-stage`))
  after.push(...hookSteps(plan.spec.hooks, 'afterStage', base, `${stage.name}/hook/after-stage`))
  if (!isLast && parseDuration(stage.soak)! > 0) {
    after.push(step(base, { id: `${stage.name}/soak`, action: 'soak', mutates: false, title: `soak ${stage.soak}: re-check the post-gates of ${stage.clusters.join(', ')} before the next stage`, params: { duration: stage.soak, clusters: stage.clusters } }))
  }
  return { before: steps, after, onFailureHooks: hookSteps(plan.spec.hooks, 'onFailure', base, `${stage.name}/hook/on-failure`) }
}

type StepBase = Omit<Step, 'id' | 'title' | 'action' | 'mutates' | 'undo' | 'params'>
/** One step's own fields; `params` typed by `action`. */
type StepOwn = { [A in keyof StepParamsByAction]: { id: string; title: string; action: A; mutates: boolean; undo?: UndoSpec; params: StepParamsByAction[A] } }[keyof StepParamsByAction]
const LEASE = 'kube-system/kupgrade-lock'

/**
 * Every step is made here, with its keys in reading order and absent ones left out, so the JSON output can print
 * steps as they are (a 2,000-node plan has tens of thousands; copying each to reorder it cost a tenth of `plan`).
 */
function step(base: StepBase, own: StepOwn): Step {
  const s = { id: own.id, title: own.title, action: own.action, phase: base.phase, stage: base.stage } as Step
  if (base.cluster !== undefined) s.cluster = base.cluster
  if (base.hop !== undefined) s.hop = base.hop
  if (base.node !== undefined) s.node = base.node
  if (base.role !== undefined) s.role = base.role
  if (base.batch !== undefined) s.batch = base.batch
  s.mutates = own.mutates
  if (own.undo !== undefined) s.undo = own.undo
  if (base.skip !== undefined) s.skip = base.skip
  s.params = own.params
  return s
}

/** The plan's hooks at one point, each a step; the plan's hook timeout, when it sets one, goes with each. */
function hookSteps(hooks: PlanDocument['spec']['hooks'], point: HookPoint, base: StepBase, prefix: string): Step[] {
  const timeout = hooks.timeout
  return (hooks[point] ?? []).map((hook, i) => step(base, { id: `${prefix}/${i + 1}`, action: 'hook', mutates: false, title: `hook ${point}: ${hook}${timeout ? ` (timeout ${timeout})` : ''}`, params: { hook, point, ...(timeout ? { timeout } : {}) } }))
}

function planCluster(plan: PlanDocument, stage: StageSpec, cluster: ClusterSpec, gates: GateLists, facts: PlannerFacts | undefined, warnings: string[]): ClusterPlan {
  const spec = plan.spec
  const dist = cluster.distribution as Distribution
  const driver = driverFor(dist)
  const result = planHops(dist, cluster.from, spec.target)
  if (!result.ok) throw new Error(`cluster ${cluster.name}: ${result.message} (validation should have refused it)`)
  const hops = result.hops
  const cps = cluster.nodes.filter((n) => n.role === 'control-plane')
  const workers = cluster.nodes.filter((n) => n.role === 'worker')
  const batches = workerBatches(workers.map((w) => w.name), spec.strategy.workers.maxUnavailable, spec.strategy.workers.canary)
  const prefix = `${stage.name}/${cluster.name}`
  const base = { stage: stage.name, cluster: cluster.name }
  const steps: Step[] = []
  const nodeFacts = facts?.clusters[cluster.name]?.nodes
  const titleFacts = (node: string): DriverNodeFacts | undefined => driverNodeFacts(nodeFacts?.[node])
  const install = installOf(cluster)
  const rebuild: RebuildPath[] = []
  const restore: ClusterRestore[] = []

  steps.push(step({ ...base, phase: 'preflight' }, { id: `${prefix}/lock`, action: 'lock', mutates: true, title: `acquire the run lock (Lease ${LEASE})`, undo: { action: 'unlock', params: { lease: LEASE } }, params: { lease: LEASE } }))
  steps.push(...hookSteps(spec.hooks, 'beforeCluster', { ...base, phase: 'preflight' }, `${prefix}/hook/before-cluster`))
  steps.push(...gateSteps(gates.pre, { ...base, phase: 'preflight' }, `${prefix}/pre`))

  // An OS-only plan is one pass with no Kubernetes hop.
  const passes: (Hop | undefined)[] = hops.length > 0 ? hops : spec.target.os ? [undefined] : []
  passes.forEach((hop, pi) => {
    const hopId = hop ? `hop${hop.index}` : 'os'
    const hopBase = { ...base, ...(hop ? { hop: hop.index } : {}) }
    const shared = passShared(hop, gates)
    const upToDate = (node: string): string | undefined => {
      const fact = nodeFacts?.[node]
      // No kubelet there (k0s controller without a worker): the version its service runs (k0s status), not the binary on
      // disk (replaced, not yet restarted, it runs the old one).
      if (fact?.kubernetesNode === false && !fact.serviceActive) return undefined
      const seen = fact?.kubernetesNode === false ? fact.runningVersion : fact?.kubeletVersion
      if (!hop || !seen || !fact) return undefined
      const have = parseKubeVersion(seen)
      const want = parseKubeVersion(hop.to.kubelet)
      if (!have || !want || compareKubeVersions(have, want) < 0) return undefined
      // A revision-only hop (k0s v1.30.4+k0s.0 → +k0s.1) cannot be judged from a kubelet that reports a bare
      // `+k0s`: it says v1.30.4+k0s before and after. Only the installed distribution version can tell; without
      // it the node is upgraded (replacing a binary with itself is harmless, skipping an upgrade is not).
      const from = parseKubeVersion(hop.from)
      const release = parseKubeVersion(hop.to.release)
      if (from && release && release.revision !== undefined && have.revision === undefined && coreOf(from) === coreOf(release)) {
        const installed = fact.installedVersion ? parseKubeVersion(fact.installedVersion) : undefined
        return installed?.revision !== undefined && compareKubeVersions(installed, release) >= 0 ? `already at ${fact.installedVersion}` : undefined
      }
      // With an OS target too, the node is skipped whole: whether its packages are current cannot be read from facts.
      return spec.target.os ? `already at ${seen}; its OS packages are left as they are` : `already at ${seen}`
    }
    // A node whose distribution binary is already past the hop's start, its kubelet not yet at the end: the hop was
    // begun there outside this run (kubeadm by hand, a job cut off before its journal could be resumed). Its backup
    // can only keep what is there, so the kept copy is checked against that version, and the plan says what a
    // rollback of it then means.
    const begun = (node: string): string | undefined => {
      const installed = nodeFacts?.[node]?.installedVersion
      if (!hop || !installed || upToDate(node)) return undefined
      const have = parseKubeVersion(installed)
      const from = parseKubeVersion(hop.from)
      const to = parseKubeVersion(hop.to.release)
      if (!have || !from || !to || compareKubeVersions(have, from) <= 0 || compareKubeVersions(have, to) > 0) return undefined
      const f = nodeFacts?.[node]
      const runs = f?.kubernetesNode === false ? `${driver.name} runs ${f.runningVersion ?? (f.serviceActive ? 'an older version' : 'nothing (stopped)')}` : `its kubelet runs ${f?.kubeletVersion ?? 'an older version'}`
      warnings.push(`cluster ${cluster.name}: ${node} already has ${driver.name} ${installed} installed while ${runs}: the hop to ${hop.to.release} was begun on it outside this run. kupgrade finishes it, but its backup keeps the node as found (${driver.name} ${installed}), so a rollback cannot put the files of ${hop.from} back on it`)
      return installed
    }
    if (hop && cps.length > 0) {
      const allDone = cluster.nodes.every((n) => upToDate(n.name))
      // A control plane that already moved past the hop's start (a run cut off, a hop begun by hand) cannot be backed
      // up as it was before the hop any more: the backup found in place, if any, is the pre-hop one.
      const from = parseKubeVersion(hop.from)
      const moved = cps.some((n) => {
        const have = parseKubeVersion(nodeFacts?.[n.name]?.installedVersion ?? nodeFacts?.[n.name]?.kubeletVersion ?? '')
        return upToDate(n.name) !== undefined || (have !== undefined && from !== undefined && compareKubeVersions(have, from) > 0)
      })
      for (const t of driver.planBackup(hop)) {
        steps.push(templateStep(t, { ...hopBase, phase: 'backup', node: cps[0]!.name, role: 'control-plane', ...(allDone ? { skip: 'every node already at the target' } : {}) }, `${prefix}/${hopId}/backup`, dist, { fresh: !moved, node: titleFacts(cps[0]!.name) }))
      }
    }
    const cpBase = { ...hopBase, phase: 'control-plane' as const }
    cps.forEach((node, i) => {
      nodeSteps(steps, {
        plan, hop, dist, install, gates, node: node.name, role: 'control-plane', first: i === 0, last: i === cps.length - 1, osPass: pi === 0,
        kubernetesNode: nodeFacts?.[node.name]?.kubernetesNode !== false, foundAt: begun(node.name), facts: titleFacts(node.name),
        base: cpBase, prefix: `${prefix}/${hopId}/${node.name}`, skip: upToDate(node.name), shared,
      })
    })
    batches.forEach((batch, bi) => {
      const batchBase = { ...hopBase, phase: 'workers' as const, batch: bi + 1 }
      for (const name of batch) {
        nodeSteps(steps, {
          plan, hop, dist, install, gates, node: name, role: 'worker', first: false, last: false, osPass: pi === 0, kubernetesNode: true, foundAt: begun(name), facts: titleFacts(name),
          base: batchBase, prefix: `${prefix}/${hopId}/${name}`, skip: upToDate(name), shared,
        })
      }
    })
    if (hop && spec.strategy.onFailure === 'rebuild') {
      const rebuilds = rebuildShared(hop, dist, shared.waitReady.timeout)
      cps.forEach((node, i) => rebuild.push(rebuildPath({ hop, dist, install, version: spec.strategy.rebuild.version, node: node.name, role: 'control-plane', first: i === 0, last: i === cps.length - 1, controlPlanes: cps.length, kubernetesNode: nodeFacts?.[node.name]?.kubernetesNode !== false, base: cpBase, prefix: `${prefix}/${hopId}/${node.name}/rebuild`, shared: rebuilds, facts: titleFacts(node.name) })))
      batches.forEach((batch, bi) => {
        const batchBase = { ...hopBase, phase: 'workers' as const, batch: bi + 1 }
        for (const name of batch) rebuild.push(rebuildPath({ hop, dist, install, version: spec.strategy.rebuild.version, node: name, role: 'worker', first: false, last: false, controlPlanes: cps.length, kubernetesNode: true, base: batchBase, prefix: `${prefix}/${hopId}/${name}/rebuild`, shared: rebuilds, facts: titleFacts(name) }))
      })
    }
    if (hop) {
      const r = clusterRestore({ hop, dist, servers: cps.map((n) => ({ name: n.name, host: n.host })), withNode: (name) => nodeFacts?.[name]?.kubernetesNode !== false, base: { ...hopBase, phase: 'control-plane' }, prefix: `${prefix}/${hopId}/restore`, readyTimeout: shared.waitReady.timeout, facts: titleFacts })
      if (r) restore.push(r)
    }
    steps.push(...gateSteps(gates.post, { ...hopBase, phase: 'postflight' }, `${prefix}/${hopId}/post`))
  })

  steps.push(...hookSteps(spec.hooks, 'afterCluster', { ...base, phase: 'postflight' }, `${prefix}/hook/after-cluster`))
  steps.push(step({ ...base, phase: 'postflight' }, { id: `${prefix}/unlock`, action: 'unlock', mutates: true, title: 'release the run lock', params: { lease: LEASE } }))

  const last = hops[hops.length - 1]
  return {
    name: cluster.name,
    distribution: cluster.distribution,
    from: cluster.from,
    ...(last ? { to: last.to.release } : {}),
    hops,
    controlPlane: cps.map((n) => n.name),
    batches,
    canary: spec.strategy.workers.canary > 0 && workers.length > 0,
    gates: {
      pre: gates.pre.map((g) => g.label), post: gates.post.map((g) => g.label),
      beforeNode: gates.beforeNode.map((g) => g.label), afterNode: gates.afterNode.map((g) => g.label),
      skipped: gates.skipped.map((g) => ({ gate: g.gate, reason: g.reason })),
    },
    onFailure: spec.strategy.onFailure,
    maxFailedNodes: spec.strategy.maxFailedNodes,
    rollback: [
      ...cps.map((n, i): RollbackPath => ({ node: n.name, ...driver.rollbackPath({ role: 'control-plane', firstControlPlane: i === 0, lastControlPlane: i === cps.length - 1 }) })),
      ...workers.map((n): RollbackPath => ({ node: n.name, ...driver.rollbackPath({ role: 'worker', firstControlPlane: false, lastControlPlane: false }) })),
    ],
    ...(spec.strategy.onFailure === 'rebuild' ? { rebuild } : {}),
    ...(restore.length > 0 ? { restore } : {}),
    steps,
  }
}

function gateSteps(list: ResolvedGate[], base: StepBase, prefix: string): Step[] {
  return gateOwns(list).map((g) => step(base, { id: `${prefix}${g.suffix}`, action: 'gate', mutates: false, title: g.title, params: g.params }))
}

/**
 * A gate list's id suffixes (a gate listed twice gets `-2`), titles and params: the same for every node, so made once
 * per list (the planner's lists live as long as one build), not once per node.
 */
const gateOwnsByList = new WeakMap<ResolvedGate[], { suffix: string; title: string; params: StepParamsByAction['gate'] }[]>()
function gateOwns(list: ResolvedGate[]) {
  let owns = gateOwnsByList.get(list)
  if (owns === undefined) {
    const seen = new Map<string, number>()
    owns = list.map((g) => {
      const n = (seen.get(g.id) ?? 0) + 1
      seen.set(g.id, n)
      return { suffix: `/gate/${g.id}${n > 1 ? `-${n}` : ''}`, title: `gate ${g.label}`, params: g.stepParams as StepParamsByAction['gate'] }
    })
    gateOwnsByList.set(list, owns)
  }
  return owns
}

/**
 * A driver's step: its title is rendered from the program that will run (drivers/registry.ts `titleFor`). Driver
 * titles depend on the action, params and role only, never the node, so a big fleet renders each once.
 */
const titles = new Map<string, string>()
/** A template's params as a cache key; templates are shared by the nodes of a role (nodeSteps), so this runs rarely. */
const paramsKeys = new WeakMap<object, string>()
const paramsKey = (params: object): string => {
  let k = paramsKeys.get(params)
  if (k === undefined) paramsKeys.set(params, (k = JSON.stringify(params)))
  return k
}
/**
 * Titles by params object first: the steps of a pass share their params objects (templates, gates, kubectl params),
 * so most steps find their title by identity, without building a key from the params' JSON (a few hundred characters
 * for a driver step, tens of thousands of times in a 2,000-node plan). A miss falls back to the caches by content.
 * `variant`: what else the title depends on (the step's role, whether it is fresh).
 */
const titlesByParams = new WeakMap<object, Map<string, string>>()
function sharedTitle(params: object, dist: Distribution, action: string, variant: string | undefined, render: () => string): string {
  let byStep = titlesByParams.get(params)
  if (byStep === undefined) titlesByParams.set(params, (byStep = new Map()))
  const key = `${dist}\0${action}\0${variant ?? ''}`
  let title = byStep.get(key)
  if (title === undefined) byStep.set(key, (title = render()))
  return title
}

/**
 * The title with the node's facts; where those make the program refuse (kubeadm packages on Flatcar, which the
 * executor then reports as the step's failure), the title without them, so that the plan still prints.
 */
function liveTitle(s: Step, dist: Distribution, node: DriverNodeFacts | undefined): string {
  if (node === undefined) return titleFor(s, dist)
  try {
    return titleFor(s, dist, node)
  } catch {
    return titleFor(s, dist)
  }
}

/**
 * `fresh` (Step.fresh) is set before the title is rendered: a fresh backup's program does more (it prunes). `node`:
 * the node's live facts, so that the title shows the commands that will run there (its package manager's).
 */
function templateStep(t: StepTemplate, base: StepBase, id: string, dist: Distribution, o: { fresh?: boolean; node?: DriverNodeFacts | undefined } = {}): Step {
  const s = step(base, { id, title: '', action: t.action, mutates: true, ...(t.undo ? { undo: t.undo } : {}), params: t.params } as StepOwn)
  // Node files kept before a node's upgrade are always the node's own of this moment; the hop's backup as the caller says.
  const fresh = o.fresh === true || t.action === 'backup-files'
  if (fresh) s.fresh = true
  const variant = `${base.role ?? ''}\0${fresh}\0${driverNodeFactsKey(o.node)}`
  s.title = sharedTitle(t.params, dist, t.action, variant, () => {
    const key = `${dist}\0${t.action}\0${variant}\0${paramsKey(t.params)}`
    let title = titles.get(key)
    if (title === undefined) {
      title = liveTitle(s, dist, o.node)
      if (titles.size > 10_000) titles.clear()
      titles.set(key, title)
    }
    return title
  })
  return s
}

/**
 * A kubectl step's title (cordon, drain, uncordon, wait-ready) varies by node only in the node's name: it is rendered
 * once per action and params with a stand-in name, and each node's name put in (rendering the program per node was a
 * third of a 2,000-node build). Only for DNS-1123 names — every validated plan's — which print unquoted, as the
 * stand-in does; any other name is rendered directly. `dnsName`: the caller already tested the node's name.
 */
const NODE_STANDIN = 'kupgrade-node-standin'
const nodeTitles = new Map<string, string>()
function nodeTitle(s: Step, dist: Distribution, dnsName?: boolean): string {
  if (s.node === undefined || !(dnsName ?? isDnsSubdomain(s.node))) return titleFor(s, dist)
  const title = sharedTitle(s.params, dist, s.action, s.role, () => {
    const key = `${dist}\0${s.action}\0${s.role ?? ''}\0${paramsKey(s.params)}`
    let t = nodeTitles.get(key)
    if (t === undefined) {
      t = titleFor({ ...s, node: NODE_STANDIN } as Step, dist)
      if (nodeTitles.size > 10_000) nodeTitles.clear()
      nodeTitles.set(key, t)
    }
    return t
  })
  return title.replaceAll(NODE_STANDIN, s.node)
}

/** Where a k3s/k0s cluster's binaries come from: its `install` settings, else the distribution's installer. */
function installOf(cluster: ClusterSpec): ClusterInstall {
  const i = cluster.install
  const apiEndpoint = cluster.apiEndpoint
  if (i?.mirror) return { source: { kind: 'mirror', base: i.mirror }, apiEndpoint }
  if (i?.path) return { source: { kind: 'path', dir: i.path }, apiEndpoint }
  return { source: { kind: 'installer' }, apiEndpoint }
}

/**
 * What every node of one pass (a hop, or the OS-only pass) shares, made once per pass: a 2,000-node plan would
 * otherwise make each of these per node. Steps share these objects as they share templates and the plan's drain
 * options (nothing changes a step's params after planning).
 */
interface PassShared {
  /**
   * The driver's templates of the pass by role and position: every worker of a hop gets the same steps, so a
   * 2,000-node plan asks the driver a handful of times, not once per node (templates hold no node).
   */
  templates: Map<string, StepTemplate[]>
  /** The params of cordon and uncordon (none), of wait-ready, and cordon's and drain's undo. */
  none: StepParamsByAction['cordon']
  waitReady: StepParamsByAction['wait-ready']
  uncordon: UndoSpec
}

function passShared(hop: Hop | undefined, gates: GateLists): PassShared {
  const readyTimeout = String(gates.afterNode.find((g) => g.id === 'nodes-ready')?.params.timeout ?? '5m')
  return {
    templates: new Map(),
    none: {},
    waitReady: { timeout: readyTimeout, ...(hop ? { kubelet: hop.to.kubelet } : {}) },
    uncordon: { action: 'uncordon', params: {} },
  }
}

interface NodeStepInput {
  plan: PlanDocument
  hop: Hop | undefined
  dist: Distribution
  install: ClusterInstall
  gates: GateLists
  node: string
  role: NodeRole
  first: boolean
  last: boolean
  osPass: boolean
  /** false: no kubelet runs there (k0s controller without --enable-worker), so no Node to cordon, drain or wait for. */
  kubernetesNode: boolean
  /** The node's live facts its driver steps' titles are rendered with. */
  facts: DriverNodeFacts | undefined
  /** The distribution version the node already has installed, when its hop was begun outside this run. */
  foundAt?: string | undefined
  base: Omit<StepBase, 'node' | 'role'>
  prefix: string
  skip?: string
  shared: PassShared
}

/** One node, one hop, appended to `steps`: gates → cordon → drain → OS → distribution → wait Ready → gates → uncordon (brief §5). */
function nodeSteps(steps: Step[], i: NodeStepInput): void {
  const spec = i.plan.spec
  const base: StepBase = { ...i.base, node: i.node, role: i.role, ...(i.skip ? { skip: i.skip } : {}) }
  const { none, uncordon } = i.shared
  const dnsName = isDnsSubdomain(i.node)
  // kubectl steps (cordon, drain, uncordon, wait-ready) print the command that runs, as driver steps do.
  const kubectl = (own: StepOwn): void => {
    const s = step(base, own)
    s.title = nodeTitle(s, i.dist, dnsName)
    steps.push(s)
  }
  for (const s of gateSteps(i.gates.beforeNode, base, `${i.prefix}/before`)) steps.push(s)
  for (const s of hookSteps(spec.hooks, 'beforeNode', base, `${i.prefix}/hook/before-node`)) steps.push(s)
  // A machine without a kubelet has no Node: nothing to cordon, drain, wait Ready for or uncordon. Its driver steps
  // wait for its own service (k0s status) instead.
  const node = i.kubernetesNode
  if (node) kubectl({ id: `${i.prefix}/cordon`, action: 'cordon', mutates: true, title: '', undo: uncordon, params: none })
  if (node) kubectl({ id: `${i.prefix}/drain`, action: 'drain', mutates: true, title: '', undo: uncordon, params: spec.strategy.drain })
  const key = `${i.role}\0${i.first}\0${i.last}\0${i.osPass}\0${i.foundAt ?? ''}`
  let actions = i.shared.templates.get(key)
  if (actions === undefined) {
    actions = []
    if (i.osPass && spec.target.os) actions.push(...planOsUpgrade(spec.target.os, REBOOT_TIMEOUT))
    if (i.hop) actions.push(...driverFor(i.dist).planNodeUpgrade(i.hop, { role: i.role, firstControlPlane: i.first, lastControlPlane: i.last, ...(i.foundAt ? { foundAt: i.foundAt } : {}) }, i.install))
    i.shared.templates.set(key, actions)
  }
  const counts = new Map<string, number>()
  for (const t of actions) {
    const n = (counts.get(t.action) ?? 0) + 1
    counts.set(t.action, n)
    steps.push(templateStep(t, base, `${i.prefix}/${t.action}${n > 1 ? `-${n}` : ''}`, i.dist, { node: i.facts }))
  }
  if (node) kubectl({ id: `${i.prefix}/wait-ready`, action: 'wait-ready', mutates: false, title: '', params: i.shared.waitReady })
  // nodes-ready and kube-proxy-sync judge a Node and its kube-proxy: a machine without a kubelet has neither and is
  // judged by its driver's start-service check instead.
  for (const s of gateSteps(node ? i.gates.afterNode : i.gates.afterNode.filter((g) => g.id !== 'nodes-ready' && g.id !== 'kube-proxy-sync'), base, `${i.prefix}/after`)) steps.push(s)
  if (node) kubectl({ id: `${i.prefix}/uncordon`, action: 'uncordon', mutates: true, title: '', params: none })
  for (const s of hookSteps(spec.hooks, 'afterNode', base, `${i.prefix}/hook/after-node`)) steps.push(s)
}

/**
 * onFailure: rebuild of one node run: the driver's reset → `kubectl delete node` → the driver's reinstall and rejoin
 * at the version the node ran before the hop (or, for a worker, the hop's target: strategy.rebuild.version) → wait
 * Ready at that version → uncordon (a rejoined Node starts schedulable; the step says so rather than assuming it). Planned up front so `plan` shows it; run only on failure.
 */
function rebuildPath(i: { hop: Hop; dist: Distribution; install: ClusterInstall; version: RebuildVersion; node: string; role: NodeRole; first: boolean; last: boolean; controlPlanes: number; kubernetesNode: boolean; base: Omit<StepBase, 'node' | 'role'>; prefix: string; shared: RebuildShared; facts: DriverNodeFacts | undefined }): RebuildPath {
  const ids = { node: i.node, hop: i.hop.index }
  const key = `${i.role}\0${i.first}\0${i.last}`
  let r = i.shared.templates.get(key)
  if (r === undefined) {
    r = driverFor(i.dist).planRebuild(i.hop, { role: i.role, firstControlPlane: i.first, lastControlPlane: i.last, controlPlanes: i.controlPlanes }, i.install, i.version)
    i.shared.templates.set(key, r)
  }
  if ('procedure' in r) return { ...ids, automatic: false, detail: r.procedure }
  const base: StepBase = { ...i.base, node: i.node, role: i.role }
  const dnsName = isDnsSubdomain(i.node)
  const kubectlStep = (own: StepOwn): Step => {
    const s = step(base, own)
    s.title = nodeTitle(s, i.dist, dnsName)
    return s
  }
  const { reset, rejoin } = r
  const { none } = i.shared
  const waitReady = r.readyAt === undefined ? i.shared.waitReady : { timeout: i.shared.waitReady.timeout, kubelet: r.readyAt }
  const steps: Step[] = [
    ...reset.map((t, n) => templateStep(t, base, `${i.prefix}/${n + 1}-${t.action}`, i.dist, { node: i.facts })),
    kubectlStep({ id: `${i.prefix}/delete-node`, action: 'delete-node', mutates: true, title: '', params: none }),
    ...rejoin.map((t, n) => templateStep(t, base, `${i.prefix}/${reset.length + n + 1}-${t.action}`, i.dist, { node: i.facts })),
    // A machine with no kubelet (a k0s controller without --enable-worker) has no Node to wait for or uncordon: its
    // rejoin's own waits and verify (the service active, running at the version, listed as an etcd member) are the proof.
    ...(i.kubernetesNode
      ? [
          kubectlStep({ id: `${i.prefix}/wait-ready`, action: 'wait-ready', mutates: false, title: '', params: waitReady }),
          kubectlStep({ id: `${i.prefix}/uncordon`, action: 'uncordon', mutates: true, title: '', params: none }),
        ]
      : []),
  ]
  return { ...ids, automatic: true, detail: r.detail, steps }
}

/**
 * The hop's control plane back from the pre-hop snapshot on every control-plane node at once (ClusterRestore), where
 * the driver plans one; then each of them Ready at the version it ran before the hop. Planned for every hop so that
 * `plan` shows it and `kupgrade rollback` can run it too; run only when a moved control-plane node is rolled back.
 */
function clusterRestore(i: { hop: Hop; dist: Distribution; servers: ControlPlaneNode[]; withNode: (name: string) => boolean; base: Omit<StepBase, 'node' | 'role'>; prefix: string; readyTimeout: string; facts: (node: string) => DriverNodeFacts | undefined }): ClusterRestore | undefined {
  const r = driverFor(i.dist).planClusterRestore?.(i.hop, i.servers)
  if (!r) return undefined
  const { waitReady } = rebuildShared(i.hop, i.dist, i.readyTimeout)
  const steps = r.steps.map(({ controlPlane, template }, n) => {
    const node = i.servers[controlPlane]!.name
    return templateStep(template, { ...i.base, node, role: 'control-plane' }, `${i.prefix}/${n + 1}-${node}-${template.action}`, i.dist, { node: i.facts(node) })
  })
  // A controller without a kubelet (k0s) has no Node to wait for: its restore step's own waits and verify (the service
  // active, running the old version, listed as an etcd member) are the proof.
  for (const { name: node } of i.servers.filter((n) => i.withNode(n.name))) {
    const s = step({ ...i.base, node, role: 'control-plane' }, { id: `${i.prefix}/${node}-wait-ready`, action: 'wait-ready', mutates: false, title: '', params: waitReady })
    s.title = nodeTitle(s, i.dist, isDnsSubdomain(node))
    steps.push(s)
  }
  return { hop: i.hop.index, automatic: true, detail: r.detail, steps }
}

/**
 * What the rebuild paths of one hop share, as PassShared is for its steps: the driver's rebuild by role and position
 * (the same for every worker), and the params of their kubectl steps, among them wait-ready at the version the node
 * ran before the hop.
 */
interface RebuildShared {
  templates: Map<string, ReturnType<ReturnType<typeof driverFor>['planRebuild']>>
  none: StepParamsByAction['delete-node']
  waitReady: StepParamsByAction['wait-ready'] & { kubelet: string }
}

function rebuildShared(hop: Hop, dist: Distribution, readyTimeout: string): RebuildShared {
  return { templates: new Map(), none: {}, waitReady: { timeout: readyTimeout, kubelet: versionBefore(dist, hop.from).kubelet } }
}

/** How long a node may take to come back after a reboot (SSH with a new boot id, then Ready). */
const REBOOT_TIMEOUT = '10m'
