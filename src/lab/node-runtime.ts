import type { EventEmitter } from 'node:events'
import { LabNode, type LabNodeOptions, type LabNodeState } from './node/index.js'
import type { LabProcess } from './node/off-loop-spawn.js'

/**
 * The control side's view of a lab node (src/lab/node, built by the node side; contract in docs/lab-contract-notes.md):
 * what the fleet calls and listens to. Tests swap in recording nodes through LabOptions.nodeFactory.
 */
export interface NodeRuntime extends EventEmitter {
  start(): Promise<void>
  stop(): Promise<void>
  setFault(fault: string, on: boolean, params?: Record<string, unknown>): void
  getState(): LabNodeState
  readonly hostKeyPublic: string
  /** kubeadm/k0s: the current kube-proxy pod's log as the node wrote it (what `kubectl logs` shows). */
  readKubeProxyLog?(): string
  /** Runs a pod's container command in the node's bash (the lab's kubelet, src/lab/pods/kubelet.ts). */
  runContainer?(script: string, env: Record<string, string>): LabProcess
  /** A cluster-wide network fault as pods on this node see it (api-vip-unreachable "from pods"). */
  setPodNetworkFault?(fault: string, on: boolean): void
  /** kubeadm: judges its static control plane again (another etcd member started or stopped). */
  recheckStaticControlPlane?(): void
  /** The node joined: certificates a reset removed are issued again. */
  issueMissingCerts?(): void
}

export type NodeFactory = (o: LabNodeOptions) => NodeRuntime

export const labNodeFactory: NodeFactory = (o) => new LabNode(o)
