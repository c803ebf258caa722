import type { RunLock } from './run-lock.js'
import type { Distribution } from '../plan/versions.js'

/**
 * What kupgrade knows about a fleet, read-only, at one moment. Everything here was read from a node over SSH or
 * from the Kubernetes API; nothing is inferred from the plan except which nodes to ask. Absent = could not be read.
 */

export interface DiskFacts {
  /** The path asked about (`/`, `/var`); `mount` is the filesystem it lives on. */
  path: string
  mount: string
  totalBytes: number
  usedBytes: number
  availableBytes: number
}

export interface OsFacts {
  id: string
  versionId?: string
  prettyName?: string
}

export type PackageManager = 'apt' | 'dnf' | 'yum' | 'flatcar' | 'unknown'
export type IptablesBackend = 'nf_tables' | 'legacy'

/** What one SSH round trip to a node tells (node-script.ts). */
export interface HostFacts {
  /** The distribution binary on disk: `k3s --version`, `k0s version`, or `kubeadm version -o short`. */
  installedVersion?: string
  /** `kubelet --version` where a kubelet binary exists (kubeadm; k0s under /var/lib/k0s/bin). */
  kubeletBinaryVersion?: string
  /** `systemctl is-active` per distribution unit that exists: active, inactive, failed, activating… */
  services: Record<string, string>
  /** k0s controllers: whether the service was installed to run workloads (`--enable-worker`/`--single`), so a
   *  kubelet runs there and the machine is a Kubernetes Node. Absent where there is no k0scontroller service. */
  k0sControllerWorkloads?: boolean
  /** k0s controllers: the version the running k0s reports (`k0s status`); absent when it does not run or cannot be asked. */
  k0sControllerRunning?: string
  os?: OsFacts
  kernel?: string
  /** The machine's architecture in Kubernetes' words (amd64, arm64, arm …), from `uname -m`. */
  arch?: string
  iptablesBackend?: IptablesBackend
  iptablesVersion?: string
  disk: DiskFacts[]
  /** true/false when a signal could be read; undefined when this OS offers none we know. */
  rebootRequired?: boolean
  /** Which signal said so: `/var/run/reboot-required`, `needs-restarting -r`, `update_engine_client`. */
  rebootSource?: string
  packageManager: PackageManager
}

export type KubeProxySource = 'daemonset-pod' | 'k3s-process' | 'k3s-binary' | 'none'

export interface NodeFacts {
  name: string
  /** Role in the plan. */
  role: 'control-plane' | 'worker'
  host: string
  /** From the Node object: `status.nodeInfo.kubeletVersion`. */
  kubeletVersion?: string
  /** Never `status.nodeInfo.kubeProxyVersion` (facts §0.1): the DaemonSet pod's image tag, or the k3s process. */
  kubeProxyVersion?: string
  kubeProxySource: KubeProxySource
  installedVersion?: string
  /** The version the distribution's service runs where no Node reports it (a k0s controller: `k0s status`). */
  runningVersion?: string
  /** `kubelet --version` of the binary on disk (kubeadm, k0s); differs from kubeletVersion until kubelet restarts. */
  kubeletBinaryVersion?: string
  ready?: boolean
  cordoned?: boolean
  /** `node-role.kubernetes.io/*` labels on the Node object. */
  roles: string[]
  /** Whether the API server has a Node object of this name. */
  inApi: boolean
  /**
   * false: this machine runs no kubelet, so it has no Node to cordon, drain or wait Ready for (a k0s controller
   * installed without --enable-worker, k0s's default). Known from its service definition, else from the API having no
   * Node of this name. Absent everywhere else (a Node).
   */
  kubernetesNode?: false
  os?: OsFacts
  kernel?: string
  /** amd64, arm64, arm …: `uname -m` mapped as the install scripts map it, else the Node's `nodeInfo.architecture`. */
  arch?: string
  iptablesBackend?: IptablesBackend
  disk: DiskFacts[]
  rebootRequired?: boolean
  rebootSource?: string
  services: Record<string, string>
  packageManager?: PackageManager
  /** Why this node's SSH facts are missing (unreachable, host key refused …). */
  error?: string
  /**
   * SSH could not reach the node at all (no connection after the pool's retries, host key refused, authentication
   * failed): a one-shot check that read these facts (`check`, `plan --live`) does not try it again and reports this
   * error for it (GateContext.unreachable).
   */
  unreachable?: true
}

export interface ApiserverVersion {
  version: string
  /** `/version` (through the endpoint kubectl uses), `kube-apiserver pod`, `k3s server`, `k0s controller`. */
  source: string
  node?: string
}

export interface EtcdMember {
  name: string
  node?: string
  version?: string
}

/** A node in the API the plan does not list: what the API says of it, nothing read over SSH. */
export interface UnlistedNode {
  name: string
  /** `node-role.kubernetes.io/*` labels (control-plane, master, etcd …). */
  roles: string[]
  kubeletVersion?: string
  kubeProxyVersion?: string
  kubeProxySource: KubeProxySource
  /** A k0s controller with no Node, seen by the lease it holds (`kube-node-lease/k0s-ctrl-<node>`): no version readable. */
  controllerLease?: string
}

export interface ClusterFacts {
  name: string
  distribution: Distribution
  /** The plan's `from` and target Kubernetes version, for comparison. */
  from: string
  target?: string
  apiserverVersions: ApiserverVersion[]
  nodes: NodeFacts[]
  /** undefined: not readable for this distribution through the API (k0s). */
  etcdMembers?: EtcdMember[]
  /**
   * Node objects the API has that the plan does not list, sorted by name. kupgrade never upgrades them, but their
   * kubelets and kube-proxies still bound what the control plane may move to (the version-skew gate reads them).
   */
  unlistedNodes: UnlistedNode[]
  /** Who holds the cluster's run lock (the Lease `apply` takes), when someone does. */
  runLock?: RunLock
  /** Why the API facts are missing. */
  error?: string
  /**
   * kubectl could not get an answer from the API at all (no such context or kubeconfig, a certificate it refuses,
   * nothing listening, no answer after its retries): a one-shot check that read these facts (`check`, `plan --live`)
   * does not run kubectl against it again and reports `error` for every API read (GateContext).
   */
  apiUnreachable?: true
}

export interface FleetFacts {
  gatheredAt: string
  durationMs: number
  clusters: ClusterFacts[]
}
