import type { BarePodState } from '../pods/types.js'
import type { Distribution } from '../versions.js'

/** The in-memory state of one simulated cluster. Plain data; cluster.ts mutates it, render/*.ts turns it into API JSON. */

export type ConditionStatus = 'True' | 'False' | 'Unknown'

export interface NodeState {
  uid: string
  name: string
  role: 'control-plane' | 'worker'
  index: number
  address: string
  createdAt: Date
  os: 'ubuntu-22.04' | 'debian-12' | 'rocky-9' | 'flatcar'
  iptables: 'nf_tables' | 'legacy'
  arch: 'amd64' | 'arm64' | 'arm'
  /** Plain version of the kubelet the node runs now (what the API reports, in the distribution's format). */
  kubeletVersion: string
  /** Control-plane nodes: the version of the apiserver/controller-manager/scheduler on the node. k3s and k0s run
   *  them in the service process (follows the service); kubeadm upgrades them with `kubeadm upgrade apply|node`. */
  controlPlaneVersion: string
  /** A Kubernetes Node (it runs a kubelet). false: a k0s controller without `--enable-worker`, which the API does not
   *  list as a Node and which runs no pods; its service still runs the apiserver (kubeletActive = service running). */
  isNode: boolean
  /** The machine runs a kubelet (topology); its Node object may still be gone (`kubectl delete node`), until the
   *  kubelet's next start registers it again. */
  runsKubelet: boolean
  kubeletActive: boolean
  /** kubeadm: why the node's static kube-apiserver crash-loops (an older apiserver on a newer datastore); it serves
   *  no API meanwhile. */
  apiserverFailing?: string
  /** status.nodeInfo.bootID: new after every reboot (nextBootId is the one the current reboot will bring). */
  bootId?: string
  nextBootId?: string
  /** Booted, but its kubelet has not posted status since: the boot id and kernel it will report when it does. */
  bootPending?: { bootId: string; kernel?: string }
  /** status.nodeInfo.kernelVersion when it differs from the OS image's (a kernel update took effect at a reboot). */
  kernel?: string
  ready: { status: ConditionStatus; reason: string; message: string; since: Date }
  heartbeat: Date
  unschedulable: boolean
  cpuMilli: number
  memoryBytes: number
  /** insufficient-capacity: allocatable shrunk to what was requested when the fault went on. */
  allocatableOverride?: { cpuMilli: number; memoryBytes: number }
  /** Set by uncordon/cordon PATCHes that carry labels or annotations; kept so kubectl label/annotate round-trip. */
  labels: Record<string, string>
  annotations: Record<string, string>
}

/** `bare`: a pod created through the API (kubectl run, a probe pod): it runs its own command (src/lab/pods/). */
export type PodKind = 'workload' | 'coredns' | 'kube-proxy' | 'daemonset' | 'static' | 'bare'

export interface PodState {
  uid: string
  name: string
  namespace: string
  kind: PodKind
  labels: Record<string, string>
  annotations: Record<string, string>
  owner?: { kind: 'ReplicaSet' | 'DaemonSet' | 'Node'; name: string; uid: string }
  /** The Deployment or DaemonSet this pod belongs to (its `app` label). */
  app: string
  nodeName?: string
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed'
  cpuMilli: number
  memoryBytes: number
  image: string
  container: string
  emptyDir: boolean
  createdAt: Date
  startedAt?: Date
  deletionTimestamp?: Date
  ip?: string
  /** Bare pods: the spec the user sent, echoed back. */
  spec?: Record<string, unknown>
  /** Bare pods: what to run and how the container went. */
  bare?: BarePodState
  resourceVersion: number
}

export interface DeploymentState {
  uid: string
  name: string
  namespace: string
  replicas: number
  cpuMilli: number
  memoryBytes: number
  emptyDir: boolean
  image: string
  /** The pod-template hash in ReplicaSet and pod names (`web-7c5b9d8f4d-x2k8q`). */
  hash: string
  kind: 'workload' | 'coredns'
  createdAt: Date
  tolerateControlPlane: boolean
}

export interface DaemonSetState {
  uid: string
  name: string
  namespace: string
  cpuMilli: number
  memoryBytes: number
  kind: 'kube-proxy' | 'daemonset'
  createdAt: Date
}

export interface PdbState {
  uid: string
  name: string
  namespace: string
  app: string
  minAvailable?: number | string
  maxUnavailable?: number | string
  createdAt: Date
}

export interface EventState {
  uid: string
  name: string
  namespace: string
  involved: { kind: string; name: string; namespace?: string; uid?: string }
  reason: string
  message: string
  type: 'Normal' | 'Warning'
  count: number
  first: Date
  last: Date
  component: string
  resourceVersion: number
}

export interface LeaseState {
  namespace: string
  name: string
  object: Record<string, unknown>
  resourceVersion: number
}

export interface ClusterInfo {
  name: string
  distribution: Distribution
  apiAddress: string
  apiPort: number
  createdAt: Date
}
