import type { Lease } from 'kubernetes-types/coordination/v1.js'
import type { Node, Pod } from 'kubernetes-types/core/v1.js'
import type { Distribution } from '../plan/versions.js'
import type { KubectlClient } from '../transport/kubectl/client.js'
import { imageTag } from './image-tag.js'
import type { ApiserverVersion, EtcdMember } from './types.js'

/** What the API says about one node. */
export interface ApiNode {
  name: string
  kubeletVersion?: string
  ready?: boolean
  cordoned: boolean
  roles: string[]
  kernel?: string
  arch?: string
  osImage?: string
  labels: Record<string, string>
}

export interface ApiFacts {
  /** `/version` gitVersion through the endpoint kubectl uses. */
  version: string
  nodes: Map<string, ApiNode>
  /** kube-proxy DaemonSet pods: node → image tag of the newest pod there (k0s, kubeadm). */
  kubeProxy: Map<string, string>
  /** kube-apiserver static pods (kubeadm): one entry per apiserver. */
  apiserverPods: ApiserverVersion[]
  etcdMembers?: EtcdMember[]
  /**
   * k0s: the controllers running now, by the lease each holds (`kube-node-lease/k0s-ctrl-<node>`, what k0s counts its
   * controllers by); a controller without --enable-worker has no Node. Undefined for the other distributions, and when
   * the leases cannot be read (RBAC): then only the etcd gate's member list tells of a controller the plan leaves out.
   */
  controllers?: string[]
}

export function toApiNode(n: Node): ApiNode {
  const labels = n.metadata?.labels ?? {}
  const ready = n.status?.conditions?.find((c) => c.type === 'Ready')
  return {
    name: n.metadata?.name ?? '',
    ...(n.status?.nodeInfo?.kubeletVersion ? { kubeletVersion: n.status.nodeInfo.kubeletVersion } : {}),
    ...(ready ? { ready: ready.status === 'True' } : {}),
    cordoned: n.spec?.unschedulable === true,
    roles: Object.keys(labels).filter((k) => k.startsWith('node-role.kubernetes.io/')).map((k) => k.slice('node-role.kubernetes.io/'.length)).filter(Boolean).sort(),
    ...(n.status?.nodeInfo?.kernelVersion ? { kernel: n.status.nodeInfo.kernelVersion } : {}),
    ...(n.status?.nodeInfo?.architecture ? { arch: n.status.nodeInfo.architecture } : {}),
    ...(n.status?.nodeInfo?.osImage ? { osImage: n.status.nodeInfo.osImage } : {}),
    labels,
  }
}

const containerImage = (p: Pod, name: string): string | undefined =>
  (p.spec?.containers.find((c) => c.name === name) ?? p.spec?.containers[0])?.image

/** Newest pod per node, so a rolling DaemonSet update shows the version that is taking over. */
function perNode(pods: Pod[], container: string): Map<string, string> {
  const best = new Map<string, { at: string; tag: string }>()
  for (const p of pods) {
    const node = p.spec?.nodeName
    const tag = imageTag(containerImage(p, container) ?? '')
    if (!node || !tag || p.metadata?.deletionTimestamp) continue
    const at = p.metadata?.creationTimestamp ?? ''
    const prev = best.get(node)
    if (!prev || at > prev.at) best.set(node, { at, tag })
  }
  return new Map([...best].map(([n, v]) => [n, v.tag]))
}

const hasLabel = (p: Pod, k: string, v: string) => p.metadata?.labels?.[k] === v

/**
 * Promise.all, but a failure is reported in the reads' order, not by which failed first: when every read fails for one
 * reason (no such context, the API server down) each cluster names the same read, so the same cause reads the same in
 * every cluster and `groupedProblems` can say it once. Only the reads before a failed one are waited for.
 */
async function firstFailureInOrder<T extends readonly unknown[]>(reads: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  // A later read's failure is not reported when an earlier one failed: it must not be an unhandled rejection either.
  for (const r of reads) void Promise.resolve(r).catch(() => {})
  const values: unknown[] = []
  for (const r of reads) values.push(await r)
  return values as { -readonly [K in keyof T]: Awaited<T[K]> }
}

/**
 * API facts for one cluster in three concurrent kubectl calls: /version, all nodes, all kube-system pods (k0s: also its
 * controllers' leases). Never one call per node. kube-proxy versions come from the DaemonSet's pods, not from
 * `nodeInfo.kubeProxyVersion`, which always held the kubelet's own version and is empty from 1.33 on (facts §0.1).
 */
export async function readApiFacts(kubectl: KubectlClient, dist: Distribution): Promise<ApiFacts> {
  // Started with the others, awaited last: its failure only leaves the controllers unknown.
  const leaseHolders = dist === 'k0s' ? k0sControllers(kubectl, new Date()) : Promise.resolve(undefined)
  // k3s runs its apiserver, etcd and kube-proxy inside the k3s process: kube-system holds no pod this reads, so it is
  // not read (one kubectl process fewer per version-skew check).
  const [version, nodes, system] = await firstFailureInOrder([kubectl.version(), kubectl.nodes(), dist === 'k3s' ? { items: [] } : kubectl.pods('kube-system')] as const)
  const pods = system.items ?? []
  const apiNodes = new Map((nodes.items ?? []).map((n) => toApiNode(n)).map((n) => [n.name, n]))
  const kubeProxy = dist === 'k3s' ? new Map<string, string>() : perNode(pods.filter((p) => hasLabel(p, 'k8s-app', 'kube-proxy') || (p.metadata?.name ?? '').startsWith('kube-proxy-')), 'kube-proxy')
  const apiserverPods: ApiserverVersion[] = [...perNode(pods.filter((p) => hasLabel(p, 'component', 'kube-apiserver')), 'kube-apiserver')]
    .map(([node, v]) => ({ version: v, source: 'kube-apiserver pod', node }))
  let etcdMembers: EtcdMember[] | undefined
  if (dist === 'kubeadm') {
    etcdMembers = [...perNode(pods.filter((p) => hasLabel(p, 'component', 'etcd')), 'etcd')].map(([node, v]) => ({ name: node, node, version: v }))
  } else if (dist === 'k3s') {
    // k3s labels embedded-etcd servers; a k3s cluster on sqlite or an external datastore has none.
    etcdMembers = [...apiNodes.values()].filter((n) => n.labels['node-role.kubernetes.io/etcd'] === 'true').map((n) => ({ name: n.name, node: n.name }))
  }
  const controllers = await leaseHolders
  return { version: version.gitVersion, nodes: apiNodes, kubeProxy, apiserverPods, ...(etcdMembers ? { etcdMembers } : {}), ...(controllers ? { controllers } : {}) }
}

const K0S_CONTROLLER_LEASE = 'k0s-ctrl-'

/**
 * The k0s controllers whose lease is held and not expired, as k0s counts them (pkg/kubernetes/lease.go
 * CountActiveControllerLeases): a stopped controller releases its lease, and a removed one leaves it behind expired.
 */
export async function k0sControllers(kubectl: KubectlClient, now: Date): Promise<string[] | undefined> {
  let leases: Lease[]
  try {
    leases = (await kubectl.leases('kube-node-lease')).items ?? []
  } catch {
    return undefined
  }
  const held = (l: Lease) => {
    const renew = Date.parse(l.spec?.renewTime ?? '')
    return Boolean(l.spec?.holderIdentity) && Number.isFinite(renew) && renew + (l.spec?.leaseDurationSeconds ?? 0) * 1000 > now.getTime()
  }
  return leases.filter((l) => (l.metadata?.name ?? '').startsWith(K0S_CONTROLLER_LEASE) && held(l)).map((l) => l.metadata!.name!.slice(K0S_CONTROLLER_LEASE.length)).sort()
}
