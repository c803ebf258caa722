import type { Hop } from './hops.js'

/** The format version of `kupgrade plan --format json`; bump on any incompatible change (docs/execution-plan.md). */
export const EXECUTION_PLAN_SCHEMA_VERSION = 1

export type Phase = 'stage' | 'preflight' | 'backup' | 'control-plane' | 'workers' | 'postflight'

export type StepAction =
  | 'approval' | 'lock' | 'unlock' | 'gate' | 'hook' | 'backup' | 'soak'
  | 'cordon' | 'drain' | 'os-upgrade' | 'reboot' | 'upgrade-package' | 'upgrade-control-plane' | 'replace-binary'
  | 'restart' | 'wait-ready' | 'uncordon'

/** The smallest unit that is executed, journaled, resumed and undone. `id` is the resume key and never changes. */
export interface Step {
  id: string
  title: string
  action: StepAction
  phase: Phase
  stage: string
  cluster?: string
  hop?: number
  node?: string
  role?: 'control-plane' | 'worker'
  /** Workers in the same batch of a hop are upgraded concurrently. */
  batch?: number
  /** Changes the cluster; a dry-run records these instead of running them. */
  mutates: boolean
  /** How the step is undone on rollback, when it can be. */
  undo?: string
  /** Set by live facts: why this step will not run (e.g. node already at the target). */
  skip?: string
  params?: Record<string, unknown>
}

export interface ClusterPlan {
  name: string
  distribution: string
  from: string
  to?: string
  hops: Hop[]
  controlPlane: string[]
  /** Worker batches of the first hop (the same for every hop). */
  batches: string[][]
  /** Gate labels per point; `skipped`: default gates the plan turned off, with the plan's reason. */
  gates: { pre: string[]; post: string[]; beforeNode: string[]; afterNode: string[]; skipped: { gate: string; reason: string }[] }
  onFailure: string
  maxFailedNodes: number
  steps: Step[]
}

export interface StagePlan {
  name: string
  approval: 'none' | 'required'
  soak: string
  parallelClusters: number
  clusters: ClusterPlan[]
  /** Stage-level steps before the clusters (approval, beforeStage hooks) … */
  before: Step[]
  /** … and after them (afterStage hooks, soak). */
  after: Step[]
}

export interface ExecutionPlan {
  apiVersion: 'kupgrade.dev/v1alpha1'
  kind: 'ExecutionPlan'
  schemaVersion: typeof EXECUTION_PLAN_SCHEMA_VERSION
  plan: string
  target: { kubernetes?: string; os?: { packages: unknown; reboot: string } }
  stages: StagePlan[]
  warnings: string[]
  /** Every step in execution order. */
  steps: Step[]
}

/**
 * What the planner needs from live facts (a subset of what facts gathering reads), keyed by cluster then node.
 * Absent facts mean "plan from the file alone" (offline `plan`). `installedVersion` is the distribution's own version
 * on the node (`k0s version`): the only way to tell a k0s revision-only upgrade is done, as its kubelet reports a bare
 * `+k0s`.
 */
export interface PlannerFacts {
  clusters: Record<string, { nodes: Record<string, { kubeletVersion?: string; installedVersion?: string } | undefined> } | undefined>
}
