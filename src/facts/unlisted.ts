import type { Distribution } from '../plan/versions.js'
import type { ApiFacts } from './api-facts.js'
import type { UnlistedNode } from './types.js'

/**
 * The nodes the API has and the plan does not list, with the versions the API tells of them. A k3s node runs
 * kube-proxy inside the process whose version its kubelet reports; k0s and kubeadm run it as a DaemonSet pod.
 */
export function unlistedNodes(dist: Distribution, a: ApiFacts, listed: ReadonlySet<string>): UnlistedNode[] {
  const out: UnlistedNode[] = []
  for (const n of a.nodes.values()) {
    if (listed.has(n.name)) continue
    const proxy = dist === 'k3s' ? n.kubeletVersion : a.kubeProxy.get(n.name)
    out.push({
      name: n.name, roles: n.roles,
      ...(n.kubeletVersion ? { kubeletVersion: n.kubeletVersion } : {}),
      ...(proxy ? { kubeProxyVersion: proxy } : {}),
      kubeProxySource: proxy ? (dist === 'k3s' ? 'k3s-process' : 'daemonset-pod') : 'none',
    })
  }
  // A k0s controller without --enable-worker is no Node: its held lease is what the API shows of it, with no version.
  for (const c of a.controllers ?? []) {
    if (!listed.has(c) && !a.nodes.has(c)) out.push({ name: c, roles: ['control-plane'], kubeProxySource: 'none', controllerLease: `kube-node-lease/k0s-ctrl-${c}` })
  }
  return out.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
}

/** A control-plane node by its labels (k3s and older kubeadm label `master`). */
export const labelledControlPlane = (n: { roles: string[] }): boolean => n.roles.includes('control-plane') || n.roles.includes('master')
