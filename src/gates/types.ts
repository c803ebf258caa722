import type { ClusterFacts, NodeFacts } from '../facts/types.js'
import type { ReleaseFetch, RepoSwitch } from '../planner/fetches.js'
import type { KubectlClient } from '../transport/kubectl/client.js'
import type { NodeTarget, Transport } from '../transport/types.js'
import type { GateScope } from './catalog.js'

/**
 * The contract every gate implements and every caller (`check`, `plan --live`, `apply`) runs through. A gate is
 * read-only: it reads through the transports it is handed and never writes, probe pods aside (created and always
 * deleted). Polling, timeouts and `stableFor` belong to the caller's wait loop, never to a gate.
 */

export type GateStatus = 'pass' | 'warn' | 'fail' | 'unknown'

/** One observation behind a verdict: where it was read (`node prod-w-1: curl https://10.96.0.1/readyz`) and what. */
export interface GateEvidence {
  source: string
  observed: string
  /**
   * How the gate judged this observation, where it judges each (verdict): a report may fold those that held under a
   * failure into a count, so that what failed is not lost among them.
   */
  status?: GateStatus
}

export interface GateResult {
  status: GateStatus
  /** One line for people: what holds or what is wrong. */
  summary: string
  evidence: GateEvidence[]
  /** What to do about a warn, fail or unknown. */
  hint?: string
  /** The incident file (`../shared/incidents/<id>.txt`) this gate exists to stop. */
  incident: string
}

/** What a gate may read. `node` is set for node-scoped checks (before/after one node); absent for a cluster check. */
export interface GateContext {
  cluster: string
  distribution: 'k0s' | 'k3s' | 'kubeadm'
  scope: GateScope
  node?: string
  /** The plan's API endpoint (VIP) and Service CIDR for this cluster. */
  apiEndpoint?: string
  serviceCIDR?: string
  /** Every node of the cluster in the plan, with how to reach it. */
  nodes: { name: string; role: 'control-plane' | 'worker'; target: NodeTarget }[]
  /**
   * At a node's point during `apply`: the other nodes of its batch the run has under way (cordoned, draining,
   * restarting, rebooting) or that failed and wait for their rollback. Their own after-node gates judge them: a gate
   * that reads the whole cluster leaves what runs on them out, or one node's reboot would fail its batch peers.
   */
  inFlight?: readonly string[]
  /** The Kubernetes version the cluster is expected to be at (node gates: the node's expected kubelet version). */
  expectedVersion?: string
  /**
   * A hop is under way and stopped part-way (the post-gates after a rollback or rebuild): nodes whose kubelet is below
   * `to` are waiting for it, and what the upgrade itself does to them meanwhile is no fault (k0s: the controllers
   * already run the new kube-proxy on every node).
   */
  hopInProgress?: { to: string }
  /** The releases each node's planned steps will fetch (k3s, k0s; a rebuild's too), worked out when first asked. */
  releaseFetches?: () => readonly ReleaseFetch[]
  /** The package repository switches each node's planned steps will make (kubeadm; a rebuild's too). */
  repoSwitches?: () => readonly RepoSwitch[]
  /** The nodes the planned steps drain together: each control-plane node alone, each worker batch at once. */
  drainGroups?: () => readonly (readonly string[])[]
  ssh: Transport
  kubectl: KubectlClient
  /** Facts read for this check, when the caller already has them (gates re-read what they need otherwise). */
  facts?: ClusterFacts
  nodeFacts?: Record<string, NodeFacts>
  /**
   * A one-shot check (`check`, `plan --live`): the nodes its facts, read moments before, could not reach over SSH at
   * all, with the error. Their reads report it instead of repeating the connection's retries for every gate. A run's
   * gates never get it: a node unreachable when the run read its facts (mid-reboot, say) may answer by then.
   */
  unreachable?: ReadonlyMap<string, string>
  signal?: AbortSignal
  now: () => Date
  /** The runner's environment (custom `command` gates on the runner; kubectl already carries its own). */
  env?: NodeJS.ProcessEnv
  /** --verbose trace. */
  log?: (message: string) => void
}

export interface Gate<P = Record<string, unknown>> {
  /** The catalog id; the registry test proves registry, catalog, JSON Schema and README agree. */
  readonly id: string
  check(ctx: GateContext, params: P): Promise<GateResult>
}
