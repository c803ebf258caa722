/**
 * The lab's fault catalogue: one entry per incident symptom from the brief (§7). Each fault says where its signal lives,
 * so the lab knows whether to change the cluster model / API server, call the node's setFault, or both:
 *  - cluster: visible through the Kubernetes API (node conditions, pod status and logs, PDBs, /readyz, TLS cert, latency)
 *  - node:    visible over SSH on the node (metrics via curl, journal, df, cert files, command exit codes, etcdctl)
 */
export const FAULT_NAMES = [
  'kube-proxy-sync-failure',
  'kube-proxy-skew',
  'api-vip-unreachable',
  'coredns-crashloop',
  'cert-expired',
  'cert-expiring',
  'disk-full',
  'node-not-ready-after-upgrade',
  'upgrade-command-fails',
  'etcd-unhealthy',
  'etcd-db-near-quota',
  'pdb-blocks-drain',
  'insufficient-capacity',
  'ssh-drop',
  'apiserver-slow',
  'apiserver-unavailable',
  'iptables-backend-mismatch',
] as const
export type FaultName = (typeof FAULT_NAMES)[number]

export interface FaultInfo {
  cluster: boolean
  node: boolean
  /** Where a fault without a node applies on the node side: every node, or only control-plane nodes (etcd). */
  nodes: 'all' | 'control-plane' | 'none'
  description: string
}

export const FAULTS = {
  'kube-proxy-sync-failure': { cluster: true, node: true, nodes: 'all', description: 'kube-proxy fails iptables-restore: "Sync failed" in its logs (pod logs on k0s/kubeadm, journal on k3s), failure counter rises' },
  // The node's kube-proxy serves the version of its DaemonSet pod, so the cluster side alone makes the skew; on k3s
  // kube-proxy is the k3s binary itself and the lab refuses the fault (lab.ts).
  'kube-proxy-skew': { cluster: true, node: false, nodes: 'none', description: 'kube-proxy runs one minor behind the kubelet (DaemonSet image tag; kubernetes_build_info metric); impossible on k3s' },
  'api-vip-unreachable': { cluster: true, node: true, nodes: 'all', description: 'the API VIP / kubernetes Service IP cannot be reached: from probe pods (cluster) or from the node (curl times out)' },
  'coredns-crashloop': { cluster: true, node: false, nodes: 'none', description: 'CoreDNS pods in CrashLoopBackOff, not Ready, restarts rising' },
  'cert-expired': { cluster: true, node: true, nodes: 'all', description: 'the API server certificate (and node certificates) expired yesterday' },
  'cert-expiring': { cluster: true, node: true, nodes: 'all', description: 'the API server certificate (and node certificates) expire in 10 days' },
  'disk-full': { cluster: true, node: true, nodes: 'all', description: 'the node disk is 98% used: DiskPressure condition and taint, df shows it' },
  'node-not-ready-after-upgrade': { cluster: true, node: true, nodes: 'all', description: 'a start of another version than the node ran (an upgrade) leaves it NotReady; starting that version again (a rollback), or any version after a reset (a rebuild), brings it back Ready' },
  'upgrade-command-fails': { cluster: false, node: true, nodes: 'all', description: 'the distribution upgrade command exits non-zero: apt-get, dnf or update_engine_client installing, curl downloading a release, kubeadm upgrade apply or node; only params.tool (one of those names) when given' },
  'etcd-unhealthy': { cluster: true, node: true, nodes: 'control-plane', description: 'etcd unhealthy: /readyz and /livez report [-]etcd failed, etcdctl endpoint health fails' },
  'etcd-db-near-quota': { cluster: false, node: true, nodes: 'control-plane', description: 'etcd DB size at 95% of its quota (etcdctl endpoint status)' },
  'pdb-blocks-drain': { cluster: true, node: false, nodes: 'none', description: 'a PodDisruptionBudget with minAvailable 100% blocks every eviction (429)' },
  'insufficient-capacity': { cluster: true, node: false, nodes: 'none', description: 'node allocatable shrinks to what is already requested: evicted pods stay Pending (FailedScheduling)' },
  'ssh-drop': { cluster: false, node: true, nodes: 'all', description: 'the node drops SSH connections: of the commands running now, else of the next one (whose text contains params.command, when given), params.afterMs into it' },
  'apiserver-slow': { cluster: true, node: false, nodes: 'none', description: 'every API request is delayed (params.delay, default 2s), or those of params.method and params.path (a prefix), the next params.requests of them only when given; with params.answer timeout the request is carried out and its answer, after the delay, is 504 Timeout, as kube-apiserver answers a request that outlived its deadline' },
  'apiserver-unavailable': { cluster: true, node: false, nodes: 'none', description: 'the API address answers 503 ServiceUnavailable, as a load balancer with no healthy apiserver: every request, or those of params.method and params.path (a prefix), the next params.requests of them only when given' },
  // Incident k0s-upgrade-coredns-api-vip: the host's iptables moved to nf_tables while kube-proxy (its own iptables,
  // from its image or k0s's bundle) and the kubelet kept writing legacy rules, or the other way round.
  'iptables-backend-mismatch': { cluster: false, node: true, nodes: 'all', description: "the kubelet's and kube-proxy's chains live in the other iptables backend than the host's `iptables -V`" },
} as const satisfies Record<FaultName, FaultInfo>

/** The faults whose signal (also) lives on the node: the ones LabNode.setFault takes. */
export type NodeFault = { [K in FaultName]: (typeof FAULTS)[K]['node'] extends true ? K : never }[FaultName]
export const NODE_FAULTS = FAULT_NAMES.filter((f): f is NodeFault => FAULTS[f].node)

export const isFaultName = (s: string): s is FaultName => (FAULT_NAMES as readonly string[]).includes(s)

/** One active (or armed) fault. `node` narrows it to one node; without it the fault covers the whole cluster. */
export interface FaultSpec {
  fault: FaultName
  cluster: string
  node?: string
  params?: Record<string, unknown>
}

/** Events an armed fault can wait for (the fleet emits them as it observes the nodes). */
export const FAULT_TRIGGERS = ['node-upgraded', 'node-rebooted', 'node-cordoned', 'service-restarted'] as const
export type FaultTrigger = (typeof FAULT_TRIGGERS)[number]

export const faultKey = (f: Pick<FaultSpec, 'fault' | 'cluster' | 'node'>): string => `${f.cluster}/${f.node ?? '*'}/${f.fault}`

/** `CLUSTER` or `CLUSTER/NODE` as typed on the command line. */
export function parseFaultTarget(target: string): { cluster: string; node?: string } | undefined {
  const m = /^([a-z0-9][-a-z0-9]*)(?:\/([a-z0-9][-a-z0-9.]*))?$/.exec(target)
  if (!m) return undefined
  return m[2] ? { cluster: m[1]!, node: m[2] } : { cluster: m[1]! }
}
