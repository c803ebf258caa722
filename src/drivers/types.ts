import type { PackageManager } from '../facts/types.js'
import type { Hop } from '../planner/hops.js'
import type { BinarySource, RollbackPath, Step, StepAction, UndoAction, UndoSpec } from '../planner/types.js'
import type { Distribution } from '../plan/versions.js'
import type { ActionProgram } from './program.js'

export type NodeRole = 'control-plane' | 'worker'

/** A step as a driver plans it: its action and typed params, and how it is undone. The planner adds the rest. */
export type StepTemplate = UndoAction & { undo?: UndoSpec }

export interface NodeContext {
  role: NodeRole
  /** The first control-plane node of the hop: kubeadm runs `upgrade apply` there, `upgrade node` elsewhere. */
  firstControlPlane: boolean
  /** The last control-plane node of the hop: kubeadm upgrades kube-proxy and CoreDNS only after it (facts §0.5). */
  lastControlPlane: boolean
  /** How many control-plane nodes the hop has (a rebuild: whether etcd keeps its quorum while this one is away). */
  controlPlanes?: number
  /**
   * The distribution version the node already has installed when the hop was begun on it outside this run (live
   * facts): its backup keeps that, and checks the kept copy against it rather than against the hop's `from`.
   */
  foundAt?: string
}

/** How a cluster gets its binaries (k3s, k0s); default the distribution's installer. */
export interface ClusterInstall {
  source: BinarySource
  /** The cluster's API VIP or load balancer (the plan's apiEndpoint): k3s's fixed registration address. */
  apiEndpoint: string
}

/**
 * What a program may depend on from the node's facts (facts/types.ts NodeFacts is a superset). Absent facts give a
 * program that decides on the node itself (e.g. which package manager answers), built from the same commands.
 */
export interface DriverNodeFacts {
  packageManager?: PackageManager
  /** false: the machine runs no kubelet (a k0s controller without --enable-worker), so it has no Node to wait for. */
  kubernetesNode?: false
  /** amd64, arm64, arm …: which release binary a mirror install fetches there (its program still asks `uname -m`). */
  arch?: string
}

/** The part of a node's facts (planner or executor) that programs read; undefined when none is known. */
export function driverNodeFacts(f: { packageManager?: string; kubernetesNode?: false; arch?: string } | undefined): DriverNodeFacts | undefined {
  const pm = f?.packageManager !== undefined && f.packageManager !== 'unknown' ? (f.packageManager as PackageManager) : undefined
  const node: DriverNodeFacts = { ...(pm ? { packageManager: pm } : {}), ...(f?.kubernetesNode === false ? { kubernetesNode: false as const } : {}), ...(f?.arch ? { arch: f.arch } : {}) }
  return Object.keys(node).length ? node : undefined
}

/** Every field of DriverNodeFacts, as a key: two nodes whose programs would differ never share a cached title. */
export const driverNodeFactsKey = (f: DriverNodeFacts | undefined): string => `${f?.packageManager ?? ''}\0${f?.kubernetesNode ?? ''}\0${f?.arch ?? ''}`

/** Whatever makes programs for some actions: a distribution driver, the OS module, the kubectl module. */
export interface ActionModule {
  readonly name: string
  /** Every action whose program this module makes (the registry routes by it; a test checks coverage). */
  readonly actions: readonly StepAction[]
  /** The commands of one of its `actions` (undo specs name actions too: restore-binary, downgrade-packages …). */
  programFor(step: Step, facts?: DriverNodeFacts): ActionProgram
}

/**
 * A distribution driver. It plans steps (pure: `plan` prints exactly what `apply` will do without touching a
 * cluster) and turns each of its steps into commands (`programFor`), from the step and the node's facts.
 */
export interface Driver extends ActionModule {
  readonly name: Distribution
  /** The systemd unit that runs Kubernetes on a node of this role. */
  serviceName(role: NodeRole): string
  /** Backup before a hop, taken on the first control-plane node. */
  planBackup(hop: Hop): StepTemplate[]
  /** The distribution upgrade of one node for one hop, in order, excluding cordon/drain/OS/wait (the planner's). */
  planNodeUpgrade(hop: Hop, node: NodeContext, install: ClusterInstall): StepTemplate[]
  /**
   * A read-only script that tells whether a node can get what one of its replace-binary steps will fetch (`release`
   * from `source`; `kept`: the step's backup folder), run on every node before the run changes anything (the
   * release-source gate). Prints `found <file>` lines; fails with the fetch's own message. Absent: the distribution
   * installs from packages.
   */
  releaseSourceCheck?(fetch: { release: string; source: BinarySource; kept: string }): string[]
  /**
   * A read-only script that tells whether a node's package repository is one its switch-repo steps can move from minor
   * to minor (kubeadm, pkgs.k8s.io), run with releaseSourceCheck's on the nodes that switch. Prints `found <file>: …`;
   * fails with a `kupgrade: ` line saying why not.
   */
  repositoryCheck?(packageManager?: PackageManager): string[]
  /** Which rollback applies to this node (shared/design/execution.md's table). */
  rollbackPath(node: NodeContext): Omit<RollbackPath, 'node'>
  /**
   * onFailure: rebuild of one node that failed during `hop`: the distribution's reset, then (after the planner's
   * `kubectl delete node`) the steps that reinstall the version it ran before the hop (a worker: the hop's target with
   * `version: 'target'`, where the distribution allows) and rejoin it; or, where that is not automatic, the procedure
   * the run stops with.
   */
  planRebuild(hop: Hop, node: NodeContext, install: ClusterInstall, version?: RebuildVersion): RebuildTemplates | { procedure: string }
  /**
   * Where a moved control plane comes back only as a whole (k3s or kubeadm with several control-plane nodes; the
   * nodes as the plan names them, so that kubeadm's etcd members can be named alike on each): the steps of that restore,
   * each on a control-plane node by its index in the hop's order, in the order they run. Absent, or undefined for
   * this count of control-plane nodes: no cluster-wide restore is planned (rollbackPath's detail says what applies).
   */
  planClusterRestore?(hop: Hop, controlPlanes: readonly ControlPlaneNode[]): ClusterRestoreTemplates | undefined
}

/** A control-plane node as the plan names it: what a restore of several needs to name each (kubeadm's etcd members). */
export interface ControlPlaneNode {
  name: string
  host: string
}

export interface ClusterRestoreTemplates {
  steps: { controlPlane: number; template: StepTemplate }[]
  /** One line for `plan`: what the restore does. */
  detail: string
}

/** spec.strategy.rebuild.version: what a rebuilt worker is reinstalled at (control-plane nodes: always `previous`). */
export type RebuildVersion = 'previous' | 'target'

export interface RebuildTemplates {
  reset: StepTemplate[]
  rejoin: StepTemplate[]
  /** One line for `plan`: what the rebuild does on this node. */
  detail: string
  /** The kubelet version the rebuilt node must be Ready at; default the one it ran before the hop. */
  readyAt?: string
}
