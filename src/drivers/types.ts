import type { Hop } from '../planner/hops.js'
import type { Distribution } from '../plan/versions.js'

export type NodeRole = 'control-plane' | 'worker'

/** What one step of a node's upgrade does, as the planner lists it; the executor later binds it to commands. */
export interface NodeActionTemplate {
  action: 'backup' | 'upgrade-package' | 'upgrade-control-plane' | 'replace-binary' | 'restart' | 'os-upgrade' | 'reboot'
  title: string
  /** How the step is undone on rollback; absent when it cannot be (or needs nothing). */
  undo?: string
  params?: Record<string, unknown>
}

export interface NodeContext {
  role: NodeRole
  /** The first control-plane node of the hop: kubeadm runs `upgrade apply` there, `upgrade node` elsewhere. */
  firstControlPlane: boolean
  /** The last control-plane node of the hop: kubeadm upgrades kube-proxy and CoreDNS only after it (facts §0.5). */
  lastControlPlane: boolean
}

/**
 * A distribution driver. Pure: it describes steps for the planner from versions and roles alone, so `plan` can print
 * exactly what `apply` will do without touching a cluster.
 */
export interface Driver {
  readonly name: Distribution
  /** The systemd unit that runs Kubernetes on a node of this role. */
  serviceName(role: NodeRole): string
  /** Backup before a hop, taken on the first control-plane node. */
  planBackup(hop: Hop): NodeActionTemplate[]
  /** The distribution upgrade of one node for one hop, in order, excluding cordon/drain/wait (the planner's). */
  planNodeUpgrade(hop: Hop, node: NodeContext): NodeActionTemplate[]
}
