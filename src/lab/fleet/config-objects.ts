import { createHash } from 'node:crypto'
import type { ClusterModel } from './cluster.js'
import { comparePlain } from '../versions.js'
import { clusterInfoSignatures } from './bootstrap-tokens.js'

/**
 * The ConfigMaps and Secrets a cluster of each distribution has and that real clients read (facts §1, §4):
 *  - kubeadm: kube-system/kubeadm-config (ClusterConfiguration; its kubernetesVersion is what `kubeadm upgrade apply`
 *    last wrote, and what `kubeadm upgrade node` reads), kube-system/kubelet-config, kube-public/cluster-info;
 *  - kubeadm and k0s: kube-system/kube-proxy (KubeProxyConfiguration with its mode: kubeadm leaves it "", which is
 *    iptables; k0s writes "iptables");
 *  - every distribution: kube-system/coredns (the Corefile);
 *  - Secrets: kubeadm's bootstrap token, k3s's node-password Secrets and serving certificate. Their values are made
 *    up per cluster (base64, as the API returns them); nothing in the lab depends on them.
 */
type Obj = Record<string, unknown>
const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z')
const b64 = (s: string) => Buffer.from(s).toString('base64')

function object(m: ClusterModel, kind: 'ConfigMap' | 'Secret', namespace: string, name: string, body: Obj, labels: Record<string, string> = {}): Obj {
  return {
    kind, apiVersion: 'v1',
    metadata: { name, namespace, uid: uid(m, `${kind}/${namespace}/${name}`), resourceVersion: String(m.resourceVersion), creationTimestamp: iso(m.info.createdAt), ...(Object.keys(labels).length ? { labels } : {}) },
    ...body,
  }
}

function uid(m: ClusterModel, what: string): string {
  const h = createHash('sha1').update(`${m.info.name}/${what}`).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`
}

/** What `kubeadm upgrade apply` last moved the cluster to: the newest control-plane version (upgrade node follows). */
export function kubeadmClusterVersion(m: ClusterModel): string {
  return [...m.nodes.values()].filter((n) => n.role === 'control-plane').map((n) => n.controlPlaneVersion).sort(comparePlain).at(-1)!
}

function clusterConfiguration(m: ClusterModel): string {
  const version = kubeadmClusterVersion(m)
  // kubeadm writes its newest config API: v1beta4 from 1.31 on, v1beta3 before.
  const api = Number(version.split('.')[1]) >= 31 ? 'kubeadm.k8s.io/v1beta4' : 'kubeadm.k8s.io/v1beta3'
  return [
    'apiServer: {}', `apiVersion: ${api}`, 'caCertificateValidityPeriod: 87600h0m0s', 'certificateValidityPeriod: 8760h0m0s',
    'certificatesDir: /etc/kubernetes/pki', 'clusterName: kubernetes', `controlPlaneEndpoint: ${m.info.apiAddress}:${m.info.apiPort}`,
    'controllerManager: {}', 'dns: {}', 'encryptionAlgorithm: RSA-2048', 'etcd:', '  local:', '    dataDir: /var/lib/etcd',
    'imageRepository: registry.k8s.io', 'kind: ClusterConfiguration', `kubernetesVersion: ${version}`,
    'networking:', '  dnsDomain: cluster.local', '  podSubnet: 10.244.0.0/16', '  serviceSubnet: 10.96.0.0/12', 'proxy: {}', 'scheduler: {}', '',
  ].filter((l) => api.endsWith('v1beta4') || !/^(caCertificateValidityPeriod|certificateValidityPeriod|encryptionAlgorithm):/.test(l)).join('\n')
}

function kubeProxyConfiguration(mode: string): string {
  return [
    'apiVersion: kubeproxy.config.k8s.io/v1alpha1', 'bindAddress: 0.0.0.0', 'clientConnection:', '  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf',
    'clusterCIDR: 10.244.0.0/16', 'healthzBindAddress: 0.0.0.0:10256', 'iptables:', '  masqueradeAll: false', '  syncPeriod: 30s', 'kind: KubeProxyConfiguration',
    'metricsBindAddress: 0.0.0.0:10249', `mode: ${JSON.stringify(mode)}`, '',
  ].join('\n')
}

const COREFILE = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`

export function configMaps(m: ClusterModel): Obj[] {
  const out: Obj[] = [object(m, 'ConfigMap', 'kube-system', 'coredns', { data: { Corefile: COREFILE } })]
  if (m.distribution === 'kubeadm') {
    out.push(object(m, 'ConfigMap', 'kube-system', 'kubeadm-config', { data: { ClusterConfiguration: clusterConfiguration(m) } }))
    out.push(object(m, 'ConfigMap', 'kube-system', 'kubelet-config', { data: { kubelet: 'apiVersion: kubelet.config.k8s.io/v1beta1\nauthentication:\n  anonymous:\n    enabled: false\ncgroupDriver: systemd\nclusterDNS:\n- 10.96.0.10\nclusterDomain: cluster.local\nkind: KubeletConfiguration\nrotateCertificates: true\nstaticPodPath: /etc/kubernetes/manifests\n' } }))
    // kubeadm init's cluster-info: the CA and endpoint, signed by the bootstrapsigner for each bootstrap token.
    const ca = m.caPem ? `    certificate-authority-data: ${b64(m.caPem)}\n` : ''
    const kubeconfig = `apiVersion: v1\nclusters:\n- cluster:\n${ca}    server: https://${m.info.apiAddress}:${m.info.apiPort}\n  name: ""\ncontexts: null\ncurrent-context: ""\nkind: Config\npreferences: {}\nusers: null\n`
    out.push(object(m, 'ConfigMap', 'kube-public', 'cluster-info', { data: { ...clusterInfoSignatures(m, kubeconfig), kubeconfig } }))
  }
  if (m.distribution !== 'k3s') {
    out.push(object(m, 'ConfigMap', 'kube-system', 'kube-proxy', { data: { 'config.conf': kubeProxyConfiguration(m.distribution === 'k0s' ? 'iptables' : '') } }, { app: 'kube-proxy' }))
  }
  return out.sort(byKey)
}

/** Lists come back in storage key order: namespace, then name. */
const byKey = (a: Obj, b: Obj) => {
  const [x, y] = [a.metadata as { namespace: string; name: string }, b.metadata as { namespace: string; name: string }]
  return x.namespace.localeCompare(y.namespace) || x.name.localeCompare(y.name)
}

export function secrets(m: ClusterModel): Obj[] {
  const made = (what: string, n = 16) => createHash('sha256').update(`${m.info.name}/${what}/lab-secret`).digest('hex').slice(0, n)
  const out: Obj[] = []
  if (m.distribution === 'kubeadm') {
    const id = made('token-id', 6)
    out.push(object(m, 'Secret', 'kube-system', `bootstrap-token-${id}`, {
      type: 'bootstrap.kubernetes.io/token',
      data: { 'token-id': b64(id), 'token-secret': b64(made('token-secret')), 'usage-bootstrap-authentication': b64('true'), 'usage-bootstrap-signing': b64('true'), 'auth-extra-groups': b64('system:bootstrappers:kubeadm:default-node-token') },
    }))
  }
  if (m.distribution === 'k3s') {
    for (const [node, hash] of m.nodePasswords) out.push(object(m, 'Secret', 'kube-system', `${node}.node-password.k3s`, { type: 'Opaque', data: { hash: b64(`$1:${hash}`) } }))
    out.push(object(m, 'Secret', 'kube-system', 'k3s-serving', { type: 'kubernetes.io/tls', data: { 'tls.crt': b64('lab serving certificate'), 'tls.key': b64(made('serving-key', 64)) } }))
  }
  if (m.distribution === 'k0s') {
    out.push(object(m, 'Secret', 'kube-system', 'k0s-join-token', { type: 'Opaque', data: { token: b64(made('join-token', 48)) } }))
  }
  for (const stored of m.storedSecrets.values()) {
    const meta = stored.object.metadata as Obj
    out.push({ ...stored.object, metadata: { ...meta, resourceVersion: String(stored.resourceVersion) } })
  }
  return out.sort(byKey)
}
