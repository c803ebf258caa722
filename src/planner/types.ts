import type { Hop } from './hops.js'

/**
 * The format version of `kupgrade plan --format json`; bump on any incompatible change (docs/execution-plan.md).
 * 2: steps are a union keyed by `action` with typed `params` (always present), `undo` is a spec
 * (`{ action, params }` or `{ irreversible }`), new node steps (backup-files, switch-repo, hold/unhold-packages,
 * stop/start-service), and clusters carry each node's rollback path.
 */
export const EXECUTION_PLAN_SCHEMA_VERSION = 2

export type Phase = 'stage' | 'preflight' | 'backup' | 'control-plane' | 'workers' | 'postflight'

export type PackageSelection = 'all' | 'security' | string[]
export type HookPoint = 'beforeStage' | 'afterStage' | 'beforeCluster' | 'afterCluster' | 'beforeNode' | 'afterNode' | 'onFailure'

/** Where a single-binary distribution's release comes from (k3s, k0s). */
export type BinarySource =
  /** The distribution's own installer (get.k3s.io with INSTALL_K3S_VERSION, get.k0s.sh with K0S_VERSION). */
  | { kind: 'installer' }
  /** A mirror laid out like the GitHub release (`<base>/<release>/k3s` + its checksum file), checksum verified. */
  | { kind: 'mirror'; base: string }
  /** A directory on the node laid out the same way (air-gapped sites), checksum verified. */
  | { kind: 'path'; dir: string }

/** The cluster backup before a hop, datastore-aware, on the first control-plane node. */
export type BackupParams =
  /** `k3s etcd-snapshot save` with embedded etcd, else a copy of the SQLite database and the server token. */
  | { kind: 'k3s'; dir: string; name: string }
  /** `k0s backup --save-path` (PKI, etcd or kine database, config, manifests). */
  | { kind: 'k0s'; dir: string }
  /** `etcdctl snapshot save` with the kubeadm etcd client certificate. */
  | { kind: 'kubeadm-etcd'; dir: string; file: string }

export interface DrainParams {
  /** Never forever: kubectl drain's own default --timeout=0s waits forever. */
  timeout: string
  gracePeriod?: string
  deleteEmptyDirData: boolean
  ignoreDaemonSets: boolean
  force: boolean
}

/** Each action's typed parameters. Node-scoped steps take the node from the step (`step.node`), not from params. */
export interface StepParamsByAction {
  // Executor-owned, no commands of their own:
  approval: { stage: string }
  /** `whileApiDown: 'defer'` (kupgrade restore only): an API that does not answer is what the restore is for; go on
   *  under the local lock and take the Lease as soon as the API answers. */
  lock: { lease: string; whileApiDown?: 'defer' }
  unlock: { lease: string }
  gate: Readonly<{ gate: string } & Record<string, unknown>>
  /** timeout: the plan's spec.hooks.timeout, when it sets one (else the executor's 10m). */
  hook: { hook: string; point: HookPoint; timeout?: string }
  soak: { duration: string; clusters: string[] }
  // Executor-owned, run as kubectl commands through programFor (drivers/kubectl):
  cordon: Record<string, never>
  drain: DrainParams
  'wait-ready': { timeout: string; kubelet?: string }
  uncordon: Record<string, never>
  /** onFailure: rebuild: the Node object goes, so the reset machine rejoins as a new Node (and k3s's node password
   *  secret goes with it, facts §3.1). */
  'delete-node': Record<string, never>
  // OS (drivers/os):
  'os-upgrade': { packages: PackageSelection }
  reboot: { policy: 'if-required' | 'always'; timeout: string }
  // Distribution drivers:
  backup: BackupParams
  /** Files kept on the node with their sha256 before they change: binaries, config, static pod manifests. */
  'backup-files': { dir: string; paths: string[]; release: string }
  /** pkgs.k8s.io serves one minor per repository: point the repository line at `minor` (kubeadm). */
  'switch-repo': { minor: string; from: string }
  'unhold-packages': { packages: string[] }
  'hold-packages': { packages: string[] }
  /** `version` is the plain Kubernetes version; `package` the explicit package version, if the plan pinned one. */
  'upgrade-package': { packages: string[]; version: string; package?: string }
  'upgrade-control-plane': { command: 'apply' | 'node'; version: string; last: boolean }
  /** `kept`: the `backup-files` directory of the same node and hop, where the previous binary (and k3s's unit) wait. */
  'replace-binary': { binary: string; release: string; service: string; source: BinarySource; kept: string }
  'stop-service': { service: string }
  'start-service': { service: string; release: string }
  restart: { service: string }
  /** onFailure: rebuild of a k0s controller: the step's node's etcd member removed through another controller (`k0s
   *  etcd leave --peer-address`, the address read from `k0s etcd member-list` by its member name, the node's name). */
  'leave-etcd': Record<string, never>
  /** onFailure: rebuild: the distribution's own reset (k3s-agent-uninstall.sh, kubeadm reset -f, k0s stop + reset);
   *  `service`: the unit that must be gone afterwards. `kept` (k3s): the hop's backup folder, where an air-gapped
   *  node's images archives go before the uninstall takes them (its reinstall then knows to fetch the release's). */
  'reset-node': { service: string; kept?: string }
  /** onFailure: rebuild: a fresh join token made on the first control-plane node, and the node joined with it
   *  (kubeadm: `kubeadm join`; k0s: the token into the node's token file, `k0s start`). */
  'join-node':
    | { kind: 'kubeadm' }
    /** A kubeadm control-plane node: the shared certificates uploaded under a fresh key on another control-plane node,
     *  then `kubeadm join --control-plane --certificate-key`. */
    | { kind: 'kubeadm-control-plane' }
    | { kind: 'k0s'; service: string; release: string }
    /** A k0s controller: a controller token made on another controller (`k0s token create --role=controller`). */
    | { kind: 'k0s-controller'; service: string; release: string }
    /** A k3s server rejoining embedded etcd: its unit set to join `server` (never --cluster-init) with the cluster's
     *  token, read from another server. */
    | { kind: 'k3s-server'; service: string; server: string }
  // Undo-only actions (what an `undo` spec names):
  'restore-binary': { binary: string; backup: string; release: string; service: string }
  /** A moved control plane back from the pre-hop backup: the kept binary and the datastore (k3s: the snapshot or
   *  SQLite copy named `name`; k0s: the `k0s backup` archive in `dir`/k0s-backup, restored on the reset controller;
   *  kubeadm: etcdutl snapshot restore and the kept static pod manifests). */
  'restore-datastore':
    | { kind: 'k3s'; dir: string; name: string; binary: string; backup: string; release: string; service: string }
    | { kind: 'k0s'; dir: string; binary: string; backup: string; release: string; service: string }
    /** kubeadm: the hop's etcd snapshot (`snapshot`) and the node's kept /etc/kubernetes. The only control-plane node
     *  as it is; of several, `member`: this member's name and peer URL, the same `initialCluster` and `token` on all of
     *  them (the static pods already stopped everywhere: `stop-control-plane`), the API awaited after the `last`. */
    | { kind: 'kubeadm'; dir: string; snapshot: string; release: string; member?: EtcdMemberRestore }
  /** A control-plane node beside the one restored from the backup, brought into the restored cluster. k3s: its kept
   *  binary back where it moved, its stale server/db moved aside, k3s started so that it rejoins (facts §3.1). k0s:
   *  its kept binary back where it moved, `k0s reset`, its unit back, a controller token from the restored (first)
   *  controller in its token file, `k0s start` (docs.k0sproject.io "Backup/Restore"). */
  'rejoin-datastore': { kind: 'k3s' | 'k0s'; dir: string; binary: string; backup: string; release: string; service: string }
  'downgrade-packages': { packages: string[]; version: string; minor: string }
  'restore-files': { dir: string; paths: string[] }
  /** kubeadm with several control-plane nodes, before anything of their restore stops: the hop's `snapshot` is on the
   *  node, intact (`snapshotFrom`: put there from the copy kept off that node, which took it), and the node's kept etcd
   *  manifest names it `member` at `peerURL`, as the restore will. */
  'prepare-etcd-restore': { kind: 'kubeadm'; dir: string; snapshot: string; release: string; member: string; peerURL: string; snapshotFrom?: string }
  /** kubeadm: the node's static control plane stopped (its manifests moved aside); after the `last`, the API is awaited
   *  down. */
  'stop-control-plane': { kind: 'kubeadm'; last: boolean }
}

/** One stacked etcd member restored from the cluster's snapshot (etcd "Disaster recovery": the same snapshot,
 *  --initial-cluster and --initial-cluster-token on every member, each with its own --name and peer URL). */
export interface EtcdMemberRestore {
  name: string
  peerURL: string
  initialCluster: string
  token: string
  last: boolean
}

export type StepAction = keyof StepParamsByAction

/** How a step is undone: another action with its params, run in the same step context (node, cluster) … */
export type UndoAction = { [A in StepAction]: { action: A; params: StepParamsByAction[A] } }[StepAction]
/** … or why it cannot be (an OS upgrade is rolled forward or the node rebuilt; the plan says so). */
export type UndoSpec = UndoAction | { irreversible: string }

interface StepCommon {
  id: string
  title: string
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
  /** How the step is undone on rollback; absent when there is nothing to undo. */
  undo?: UndoSpec
  /** Set by live facts: why this step will not run (e.g. node already at the target). */
  skip?: string
  /** Run even where verify finds the effect there already: `kupgrade restore` replaces a datastore the old version
   *  may already run on (verify still has to hold afterwards). */
  force?: true
  /**
   * A backup of the state of its moment, taken by the run itself: one an earlier run left in the same place (the
   * directory is named by the hop's version) is not taken as done; only a resume of the run that began it verifies it
   * first. Every `backup-files`; the hop's `backup` unless a control-plane node already moved past the hop's start
   * (a backup then would not be the pre-hop state: the one found in place, an earlier run's, is verified and kept).
   */
  fresh?: true
}

/** The smallest unit that is executed, journaled, resumed and undone. `id` is the resume key and never changes. */
export type Step = { [A in StepAction]: StepCommon & { action: A; params: StepParamsByAction[A] } }[StepAction]
export type StepOf<A extends StepAction> = Extract<Step, { action: A }>

/**
 * What rollback does for a node (shared/design/execution.md, "Rollback"): a worker gets its previous version back;
 * the first kubeadm control-plane node has kubeadm's own backup while `upgrade apply` runs; a control-plane node
 * after the control plane moved is restored from the pre-hop snapshot (no distribution supports a binary downgrade).
 */
export interface RollbackPath {
  node: string
  path: 'previous-version' | 'kubeadm-backup' | 'snapshot-restore'
  detail: string
}

/**
 * What onFailure: rebuild does for one node run (brief §5): reset the node, delete its Node, reinstall the version it
 * ran before the hop and rejoin, wait Ready at that version; then the hop's post-gates run again. `steps` are planned
 * like any other (typed, journaled, verify → run → verify) and run only when that node run fails; without them the
 * rebuild is not automatic for that node and `detail` is the procedure the run stops with.
 */
export type RebuildPath =
  | { node: string; hop?: number; automatic: true; detail: string; steps: Step[] }
  | { node: string; hop?: number; automatic: false; detail: string }

/**
 * The control plane of a hop back from the pre-hop snapshot on every control-plane node at once, where the
 * distribution needs that and kupgrade does it (k3s with several servers: stop them all, reset the first from the
 * snapshot, the others rejoin with an emptied datastore; kubeadm with several: every static pod stopped, every etcd
 * member restored from the first node's snapshot with one --initial-cluster). Run when a control-plane node whose distribution moved in
 * that hop is rolled back; planned up front so `plan` shows it. Without `steps` it is not automatic and `detail` is
 * the procedure the run stops with.
 */
export type ClusterRestore =
  | { hop: number; automatic: true; detail: string; steps: Step[] }
  | { hop: number; automatic: false; detail: string }

export interface ClusterPlan {
  name: string
  distribution: string
  from: string
  to?: string
  hops: Hop[]
  controlPlane: string[]
  /** Worker batches of the first hop (the same for every hop). */
  batches: string[][]
  /** The first batch is the canary (strategy.workers.canary): a batch of its own that goes first. */
  canary: boolean
  /** Gate labels per point; `skipped`: default gates the plan turned off, with the plan's reason. */
  gates: { pre: string[]; post: string[]; beforeNode: string[]; afterNode: string[]; skipped: { gate: string; reason: string }[] }
  onFailure: string
  maxFailedNodes: number
  /** Per node, the rollback that would apply (`plan` shows it). */
  rollback: RollbackPath[]
  /** onFailure: rebuild only: per node run, the rebuild that would apply (`plan` shows it). */
  rebuild?: RebuildPath[]
  /** Per hop, where the distribution restores its control plane as a whole: how a moved control plane comes back. */
  restore?: ClusterRestore[]
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
  /** The onFailure hooks, run only when the run stops in this stage because something failed or refused it: not in
   *  `steps`, which is the order of what always runs. */
  onFailureHooks: Step[]
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
  clusters: Record<string, { nodes: Record<string, PlannerNodeFacts | undefined> } | undefined>
}

export interface PlannerNodeFacts {
  kubeletVersion?: string
  installedVersion?: string
  /** false: no kubelet runs there (a k0s controller without --enable-worker): no cordon, drain, Ready wait or
   *  uncordon, and the installed version (with the service running) says whether it is at the target. */
  kubernetesNode?: false
  /** With kubernetesNode false: whether its distribution service runs. */
  serviceActive?: boolean
  /** With kubernetesNode false: the version its service runs (k0s status). Without it the node is not taken as done:
   *  a binary replaced but not yet restarted is on disk, not running. */
  runningVersion?: string
  /** The node's package manager, where known: its steps' titles show the commands that will run there. */
  packageManager?: 'apt' | 'dnf' | 'yum' | 'flatcar'
  /** amd64, arm64 …, where known: a mirror install's title names the node's own release binary. */
  arch?: string
}
