import { minorOf, plainVersion } from './versions.js'

/**
 * A cluster half-way through an upgrade (topology nodes with their own `version`, `apiServerVersion`,
 * `kubeProxyVersion`) must be a state a real upgrade can pass through: every version in the mirror, HA apiservers
 * within one minor of each other, kubelets and kube-proxies not newer than the newest apiserver and at most three
 * minors older than it, a kube-proxy within three minors of its node's kubelet (facts §1). A kubelet newer than the
 * *oldest* apiserver is allowed: kubeadm's documented procedure (upgrade node, then that node's kubelet) passes through
 * it, and the skew gates must be tried on it. Where a component runs decides what can be set: k3s runs the apiserver
 * and kube-proxy inside its binary, k0s the apiserver inside its controller binary, so there only `version` exists.
 */
export interface SkewNode {
  name: string
  role: 'control-plane' | 'worker'
  version?: string
  apiServerVersion?: string
  kubeProxyVersion?: string
}

export interface SkewProblem {
  /** Path below the cluster: ['nodes', index, field] or ['version']. */
  path: (string | number)[]
  message: string
}

/** The versions each component runs (plain), after defaults: what the model and the nodes start with. */
export function resolvedVersions(distribution: string, clusterVersion: string, n: SkewNode): { kubelet: string; apiServer?: string; kubeProxy?: string } {
  const kubelet = plainVersion(n.version ?? clusterVersion)!
  const apiServer = n.role === 'control-plane' ? plainVersion(distribution === 'kubeadm' ? (n.apiServerVersion ?? n.version ?? clusterVersion) : (n.version ?? clusterVersion))! : undefined
  const kubeProxy = n.kubeProxyVersion ? plainVersion(n.kubeProxyVersion) : undefined
  return { kubelet, ...(apiServer ? { apiServer } : {}), ...(kubeProxy ? { kubeProxy } : {}) }
}

export function skewProblems(cluster: { name: string; distribution: string; version: string; nodes: SkewNode[] }, mirror: string[]): SkewProblem[] {
  const out: SkewProblem[] = []
  const c = cluster
  const notInMirror = (v: string | undefined) => v !== undefined && plainVersion(v) !== undefined && !mirror.includes(plainVersion(v)!)
  c.nodes.forEach((n, i) => {
    const at = (field: string) => ['nodes', i, field]
    for (const field of ['version', 'apiServerVersion', 'kubeProxyVersion'] as const) {
      if (notInMirror(n[field])) out.push({ path: at(field), message: `${field} ${n[field]} of node ${n.name} is not in spec.mirror (${mirror.join(', ')})` })
    }
    if (n.apiServerVersion !== undefined && n.role !== 'control-plane') {
      out.push({ path: at('apiServerVersion'), message: `node ${n.name} is a worker: only control-plane nodes run an apiserver` })
    } else if (n.apiServerVersion !== undefined && c.distribution !== 'kubeadm') {
      out.push({ path: at('apiServerVersion'), message: `on ${c.distribution} the apiserver runs inside the ${c.distribution} binary: set the node's version instead` })
    }
    if (n.kubeProxyVersion !== undefined && c.distribution === 'k3s') {
      out.push({ path: at('kubeProxyVersion'), message: "on k3s kube-proxy runs inside the k3s binary: set the node's version instead" })
    }
  })
  if (out.length) return out // the rules below need valid, known versions

  const v = c.nodes.map((n) => resolvedVersions(c.distribution, c.version, n))
  const apis = c.nodes.flatMap((n, i) => (v[i]!.apiServer ? [{ n, i, minor: minorOf(v[i]!.apiServer!), version: v[i]!.apiServer! }] : []))
  if (!apis.length) return out
  const oldest = apis.reduce((a, b) => (b.minor < a.minor ? b : a))
  const newest = apis.reduce((a, b) => (b.minor > a.minor ? b : a))
  const apiField = (n: SkewNode) => (n.apiServerVersion !== undefined ? 'apiServerVersion' : 'version')
  if (newest.minor - oldest.minor > 1) {
    out.push({ path: ['nodes', newest.i, apiField(newest.n)], message: `the apiservers of cluster ${c.name} are more than one minor apart (${newest.version} on ${newest.n.name}, ${oldest.version} on ${oldest.n.name}): HA apiservers may differ by one minor at most` })
    return out
  }
  c.nodes.forEach((n, i) => {
    const { kubelet, kubeProxy } = v[i]!
    const check = (component: string, version: string, field: string) => {
      const m = minorOf(version)
      if (m > newest.minor) out.push({ path: ['nodes', i, field], message: `${component} ${version} on ${n.name} is newer than every apiserver (newest: ${newest.version} on ${newest.n.name}): ${component} must not be newer than kube-apiserver` })
      else if (m < newest.minor - 3) out.push({ path: ['nodes', i, field], message: `${component} ${version} on ${n.name} is more than three minors older than the apiserver ${newest.version} on ${newest.n.name}` })
    }
    // A kubelet at the cluster's default version is the node's problem as a whole (it has no version line).
    if (n.version !== undefined) check('kubelet', kubelet, 'version')
    else {
      const before = out.length
      check('kubelet', kubelet, 'version')
      for (const p of out.slice(before)) p.path = ['nodes', i]
    }
    if (kubeProxy) {
      check('kube-proxy', kubeProxy, 'kubeProxyVersion')
      if (Math.abs(minorOf(kubeProxy) - minorOf(kubelet)) > 3) out.push({ path: ['nodes', i, 'kubeProxyVersion'], message: `kube-proxy ${kubeProxy} on ${n.name} is more than three minors from its kubelet ${kubelet}` })
    }
  })
  return out
}
