import type { ClusterFacts } from '../../facts/types.js'
import { labelledControlPlane } from '../../facts/unlisted.js'
import type { GateEvidence } from '../types.js'
import type { ComponentInstance, SkewState } from './types.js'

/**
 * The live state as the skew evaluator sees it, from the facts layer: every apiserver version kupgrade can tell apart
 * (`/version` through the endpoint, kube-apiserver static pods, k3s servers, k0s controllers), each node's kubelet
 * (Node status) and kube-proxy (the DaemonSet pod's image, or the k3s process), never `nodeInfo.kubeProxyVersion`.
 * Nodes the plan does not list count as much as listed ones: the apiserver's next move must suit their kubelets too.
 */
export function skewStateFromFacts(c: ClusterFacts): SkewState {
  const components: ComponentInstance[] = []
  const apiserverNodes = new Set<string>()
  for (const a of c.apiserverVersions) {
    components.push({ component: 'kube-apiserver', version: a.version, ...(a.node ? { node: a.node } : {}) })
    if (a.node) apiserverNodes.add(a.node)
  }
  // A k3s server, or a k0s controller that runs a worker, the plan does not list still runs an apiserver, at its
  // kubelet's version (one binary runs both): one kupgrade never moves. (kubeadm's are static pods, read above.)
  for (const n of c.unlistedNodes) {
    if (c.distribution === 'kubeadm' || !labelledControlPlane(n) || !n.kubeletVersion || apiserverNodes.has(n.name)) continue
    components.push({ component: 'kube-apiserver', version: n.kubeletVersion, node: n.name })
    apiserverNodes.add(n.name)
  }
  const nodes = [...c.nodes.map((n) => ({ ...n, controlPlane: n.role === 'control-plane' })), ...c.unlistedNodes.map((n) => ({ ...n, controlPlane: labelledControlPlane(n) }))]
  for (const n of nodes) {
    // A control-plane node's kubelet talks to its own apiserver (k3s servers; kubeadm's local mode); workers and
    // DaemonSet kube-proxies go through the VIP to any of them.
    const local = n.controlPlane && apiserverNodes.has(n.name)
    if (n.kubeletVersion) components.push({ component: 'kubelet', version: n.kubeletVersion, node: n.name, talksTo: local ? 'local' : 'any' })
    if (n.kubeProxyVersion) components.push({ component: 'kube-proxy', version: n.kubeProxyVersion, node: n.name, talksTo: local && c.distribution === 'k3s' ? 'local' : 'any' })
  }
  return { distribution: c.distribution, components }
}

/**
 * What was read, as gate evidence: each apiserver, then nodes grouped by (kubelet, kube-proxy) so a 2,000-node
 * cluster gives a handful of lines, each naming a few of its nodes.
 */
export function skewEvidence(c: ClusterFacts, only?: string): GateEvidence[] {
  const out: GateEvidence[] = c.apiserverVersions.map((a) => ({ source: `kube-apiserver (${a.source}${a.node ? ` on ${a.node}` : ''})`, observed: a.version }))
  const groups = new Map<string, string[]>()
  const group = (nodes: ClusterFacts['unlistedNodes'] | ClusterFacts['nodes'], label: string) => {
    for (const n of nodes) {
      if (only && n.name !== only) continue
      const seen = 'controllerLease' in n && n.controllerLease ? `k0s controller without a Node: lease ${n.controllerLease} held, version unknown` : `kubelet ${n.kubeletVersion ?? 'unknown'}, kube-proxy ${n.kubeProxyVersion ?? 'unknown'}${n.kubeProxyVersion ? ` (${n.kubeProxySource})` : ''}`
      const key = `${label}\0${seen}`
      groups.set(key, [...(groups.get(key) ?? []), n.name])
    }
  }
  group(c.nodes, '')
  group(c.unlistedNodes, ' (not in the plan)')
  for (const [key, nodes] of groups) {
    const [label, observed] = key.split('\0') as [string, string]
    const shown = nodes.slice(0, 5).join(', ') + (nodes.length > 5 ? ` and ${nodes.length - 5} more` : '')
    out.push({ source: `node${nodes.length > 1 ? 's' : ''} ${shown}${label}`, observed })
  }
  return out
}
