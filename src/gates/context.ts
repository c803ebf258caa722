import { KupgradeError } from '../errors.js'
import { defaultKubectl } from '../facts/gather.js'
import { toPlannerFacts } from '../facts/live.js'
import { nodeTarget } from '../facts/targets.js'
import type { ClusterFacts, FleetFacts } from '../facts/types.js'
import type { LoadedPlan } from '../plan/load.js'
import type { ClusterSpec } from '../plan/schema.js'
import { buildExecutionPlan } from '../planner/build.js'
import { drainGroups } from '../planner/drains.js'
import { releaseFetches, repoSwitches } from '../planner/fetches.js'
import type { ExecutionPlan } from '../planner/types.js'
import type { KubectlClient } from '../transport/kubectl/client.js'
import type { Transport } from '../transport/types.js'
import type { GateContext } from './types.js'
import { join } from 'node:path'

export interface GateContextOptions {
  /** SSH (or a recorder around it); the caller owns and closes it. */
  transport: Transport
  env: NodeJS.ProcessEnv
  /** Facts already read (plan --live): handed to gates so they do not re-read versions and disks. */
  facts?: FleetFacts
  kubectlFor?: (cluster: ClusterSpec, loaded: LoadedPlan) => KubectlClient
  log?: (message: string) => void
  signal?: AbortSignal
  now?: () => Date
}

/** The default serviceCIDR per distribution (facts §4.5): k3s 10.43.0.0/16, k0s and kubeadm 10.96.0.0/12. */
export const defaultServiceCIDR = (distribution: string): string => (distribution === 'k3s' ? '10.43.0.0/16' : '10.96.0.0/12')

/**
 * A cluster-scope GateContext for each cluster of a loaded plan: its nodes with their SSH targets, a kubectl for its
 * kubeconfig/context, the plan's API endpoint and Service CIDR. `forNode` narrows one to a node for node gates.
 */
export function gateContexts(loaded: LoadedPlan, clusters: string[] | undefined, o: GateContextOptions): GateContext[] {
  const wanted = clusters?.length ? loaded.plan.spec.clusters.filter((c) => clusters.includes(c.name)) : loaded.plan.spec.clusters
  return wanted.map((c) => gateContext(loaded, c, o, o.facts?.clusters.find((f) => f.name === c.name)))
}

export function gateContext(loaded: LoadedPlan, c: ClusterSpec, o: GateContextOptions, facts?: ClusterFacts): GateContext {
  const kubectl = o.kubectlFor ? o.kubectlFor(c, loaded) : defaultKubectl(c, loaded, o.env, join(loaded.dir, '.kupgrade'), o.log)
  return {
    cluster: c.name,
    distribution: c.distribution,
    scope: 'cluster',
    apiEndpoint: c.apiEndpoint,
    serviceCIDR: c.serviceCIDR ?? defaultServiceCIDR(c.distribution),
    nodes: c.nodes.map((n) => ({ name: n.name, role: n.role, target: nodeTarget(c, n, loaded.dir) })),
    ...(loaded.plan.spec.target.kubernetes ? { expectedVersion: loaded.plan.spec.target.kubernetes } : {}),
    ...plannedReads(loaded, c.name, o.facts),
    ssh: o.transport,
    kubectl: facts?.apiUnreachable ? unanswering(kubectl, c.name, facts.error ?? 'no answer') : kubectl,
    ...(facts ? { facts, nodeFacts: Object.fromEntries(facts.nodes.map((n) => [n.name, n])), unreachable: unreachableNodes(facts) } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    now: o.now ?? (() => new Date()),
    env: o.env,
    ...(o.log ? { log: o.log } : {}),
  }
}

/** The plan's steps, planned once per loaded plan (or per live facts) and only when a gate asks what nodes will fetch. */
const planned = new WeakMap<object, ExecutionPlan>()

/**
 * What the cluster's planned steps will fetch, switch and drain together, planned when a gate first asks; with live
 * facts (`check`, `plan --live`) as `apply` plans: a node already at the target fetches and drains nothing.
 */
function plannedReads(loaded: LoadedPlan, cluster: string, facts?: FleetFacts): Pick<GateContext, 'releaseFetches' | 'repoSwitches' | 'drainGroups'> {
  const clusterPlan = () => {
    const key = facts ?? loaded
    let plan = planned.get(key)
    if (!plan) planned.set(key, (plan = facts ? buildExecutionPlan(loaded.plan, { facts: toPlannerFacts(facts) }) : (loaded.expanded ?? buildExecutionPlan(loaded.plan))))
    return plan.stages.flatMap((s) => s.clusters).find((x) => x.name === cluster)
  }
  return {
    releaseFetches: () => { const c = clusterPlan(); return c ? releaseFetches(c) : [] },
    repoSwitches: () => { const c = clusterPlan(); return c ? repoSwitches(c) : [] },
    drainGroups: () => { const c = clusterPlan(); return c ? drainGroups(c) : [] },
  }
}

/**
 * The kubectl of a cluster whose API these facts got no answer from (ClusterFacts.apiUnreachable): every call fails at
 * once with what the facts saw, where each gate's kubectl would have failed the same way, a process (~100 ms of CPU)
 * and its retries at a time: 9 s for `plan --live` of five clusters without a kubeconfig.
 */
function unanswering(k: KubectlClient, cluster: string, why: string): KubectlClient {
  // Its first line is the gates' summary; the facts' error follows in their evidence.
  const fail = () => Promise.reject(new KupgradeError(`no answer from the API of ${cluster} when its facts were read moments ago\n${why}`))
  return Object.assign(Object.create(k) as KubectlClient, { run: fail, watch: fail })
}

/** Nodes these facts could not reach over SSH at all, with the error: a check that read them moments ago stops there. */
const unreachableNodes = (facts: ClusterFacts): ReadonlyMap<string, string> =>
  new Map(facts.nodes.filter((n) => n.unreachable).map((n) => [n.name, n.error ?? 'unreachable']))

export const forNode = (ctx: GateContext, node: string, expectedVersion?: string): GateContext => ({
  ...ctx,
  scope: 'node',
  node,
  ...(expectedVersion ? { expectedVersion } : {}),
})

/** The nodes a gate looks at: the one node of a node-scope context, else all of them. */
export const nodesInScope = (ctx: GateContext) => (ctx.node ? ctx.nodes.filter((n) => n.name === ctx.node) : ctx.nodes)

/** The nodes in scope that are Kubernetes Nodes: a machine whose facts say it runs no kubelet (a k0s controller
 *  without --enable-worker) has no Node, kube-proxy or pods to judge. Without facts every planned node counts. */
export const kubeNodesInScope = (ctx: GateContext) => nodesInScope(ctx).filter((n) => ctx.nodeFacts?.[n.name]?.kubernetesNode !== false)
