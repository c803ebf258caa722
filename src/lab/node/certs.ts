import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createCA, issue, type CertAuthority } from '../pki/x509.js'
import type { NodeDistribution, NodeRole } from './types.js'

/**
 * Real X.509 files at the paths each distribution keeps them (facts §3.1 k3s, §3.3 kubeadm, §3.2/§7 k0s), so that
 * `openssl x509 -enddate -noout -in FILE` (the real openssl) and the `k3s certificate check` /
 * `kubeadm certs check-expiration` stand-ins read the same truth. lab/certs.tsv indexes them for the stand-ins.
 */
interface CertSpec {
  /** Path under the node root. */
  path: string
  cn: string
  /** Which CA signs it ('self' for a CA); kubeadm's CERTIFICATE AUTHORITY column. */
  ca: string
  /** kubeadm check-expiration row name; k3s check name. */
  name: string
  usage?: 'server' | 'client'
  /** A kubeconfig (admin.conf …) embedding the client cert instead of a .crt file. */
  kubeconfig?: boolean
}

const K3S_TLS = 'var/lib/rancher/k3s/server/tls'
const K3S_AGENT = 'var/lib/rancher/k3s/agent'
const KPKI = 'etc/kubernetes/pki'
const K0S_PKI = 'var/lib/k0s/pki'

const ca = (path: string, name: string, cn: string): CertSpec => ({ path, cn, ca: 'self', name })
const leaf = (path: string, name: string, cn: string, caName: string, usage: 'server' | 'client' = 'client'): CertSpec =>
  ({ path, cn, ca: caName, name, usage })

function specsFor(dist: NodeDistribution, role: NodeRole, node: string): CertSpec[] {
  const agent = (dir: string): CertSpec[] => [
    leaf(`${dir}/client-kubelet.crt`, 'kubelet', `system:node:${node}`, 'client-ca'),
    leaf(`${dir}/serving-kubelet.crt`, 'kubelet', node, 'server-ca', 'server'),
    leaf(`${dir}/client-kube-proxy.crt`, 'kube-proxy', 'system:kube-proxy', 'client-ca'),
  ]
  if (dist === 'k3s') {
    if (role === 'worker') return [ca(`${K3S_AGENT}/client-ca.crt`, 'client-ca', 'k3s-client-ca'), ca(`${K3S_AGENT}/server-ca.crt`, 'server-ca', 'k3s-server-ca'), ...agent(K3S_AGENT)]
    return [
      ca(`${K3S_TLS}/client-ca.crt`, 'client-ca', 'k3s-client-ca'),
      ca(`${K3S_TLS}/server-ca.crt`, 'server-ca', 'k3s-server-ca'),
      leaf(`${K3S_TLS}/client-admin.crt`, 'admin', 'system:admin', 'client-ca'),
      leaf(`${K3S_TLS}/client-controller.crt`, 'controller-manager', 'system:kube-controller-manager', 'client-ca'),
      leaf(`${K3S_TLS}/client-scheduler.crt`, 'scheduler', 'system:kube-scheduler', 'client-ca'),
      leaf(`${K3S_TLS}/client-kube-apiserver.crt`, 'api-server', 'system:apiserver', 'client-ca'),
      leaf(`${K3S_TLS}/serving-kube-apiserver.crt`, 'api-server', 'kube-apiserver', 'server-ca', 'server'),
      leaf(`${K3S_TLS}/etcd/server-client.crt`, 'etcd', 'etcd-server', 'server-ca', 'server'),
      leaf(`${K3S_TLS}/etcd/client.crt`, 'etcd', 'etcd-client', 'server-ca'),
      ...agent(K3S_AGENT),
    ]
  }
  if (dist === 'kubeadm') {
    if (role === 'worker') return [ca(`${KPKI}/ca.crt`, 'ca', 'kubernetes'), leaf('var/lib/kubelet/pki/kubelet-client-current.pem', 'kubelet', `system:node:${node}`, 'ca')]
    return [
      ca(`${KPKI}/ca.crt`, 'ca', 'kubernetes'),
      ca(`${KPKI}/etcd/ca.crt`, 'etcd-ca', 'etcd-ca'),
      ca(`${KPKI}/front-proxy-ca.crt`, 'front-proxy-ca', 'front-proxy-ca'),
      { ...leaf('etc/kubernetes/admin.conf', 'admin.conf', 'kubernetes-admin', 'ca'), kubeconfig: true },
      leaf(`${KPKI}/apiserver.crt`, 'apiserver', 'kube-apiserver', 'ca', 'server'),
      leaf(`${KPKI}/apiserver-etcd-client.crt`, 'apiserver-etcd-client', 'kube-apiserver-etcd-client', 'etcd-ca'),
      leaf(`${KPKI}/apiserver-kubelet-client.crt`, 'apiserver-kubelet-client', 'kube-apiserver-kubelet-client', 'ca'),
      { ...leaf('etc/kubernetes/controller-manager.conf', 'controller-manager.conf', 'system:kube-controller-manager', 'ca'), kubeconfig: true },
      leaf(`${KPKI}/etcd/healthcheck-client.crt`, 'etcd-healthcheck-client', 'kube-etcd-healthcheck-client', 'etcd-ca'),
      leaf(`${KPKI}/etcd/peer.crt`, 'etcd-peer', node, 'etcd-ca', 'server'),
      leaf(`${KPKI}/etcd/server.crt`, 'etcd-server', node, 'etcd-ca', 'server'),
      leaf(`${KPKI}/front-proxy-client.crt`, 'front-proxy-client', 'front-proxy-client', 'front-proxy-ca'),
      { ...leaf('etc/kubernetes/scheduler.conf', 'scheduler.conf', 'system:kube-scheduler', 'ca'), kubeconfig: true },
      { ...leaf('etc/kubernetes/super-admin.conf', 'super-admin.conf', 'kubernetes-super-admin', 'ca'), kubeconfig: true },
    ]
  }
  if (role === 'worker') return [ca(`${K0S_PKI}/ca.crt`, 'ca', 'kubernetes-ca'), leaf('var/lib/k0s/kubelet/pki/kubelet-client-current.pem', 'kubelet', `system:node:${node}`, 'ca')]
  return [
    ca(`${K0S_PKI}/ca.crt`, 'ca', 'kubernetes-ca'),
    ca(`${K0S_PKI}/etcd/ca.crt`, 'etcd-ca', 'etcd-ca'),
    leaf(`${K0S_PKI}/admin.crt`, 'admin', 'kubernetes-admin', 'ca'),
    leaf(`${K0S_PKI}/server.crt`, 'apiserver', 'kube-apiserver', 'ca', 'server'),
    leaf(`${K0S_PKI}/etcd/server.crt`, 'etcd-server', 'etcd-server', 'etcd-ca', 'server'),
    leaf(`${K0S_PKI}/etcd/peer.crt`, 'etcd-peer', 'etcd-peer', 'etcd-ca', 'server'),
  ]
}

export interface CertWriteOptions {
  root: string
  dist: NodeDistribution
  role: NodeRole
  node: string
  address: string
  apiEndpoint: string
  /** notAfter of every leaf certificate. CAs always get 10 years (they are not what expires in the incidents). */
  leafNotAfter: Date
  /** The CA the cluster's API serves under (the lab's): the node's cluster CA files are this CA, so they verify the
   *  API's certificate as on a real node (kubeadm/k0s pki/ca.crt, k3s server-ca.crt). Else a node-local CA. */
  clusterCa?: CertAuthority
}

/** Which CA of a distribution signs the apiserver's serving certificate. */
const API_CA: Record<NodeDistribution, string> = { kubeadm: 'ca', k0s: 'ca', k3s: 'server-ca' }

const kubeconfig = (server: string, user: string, caPem: string, certPem: string, keyPem: string): string => {
  const b64 = (s: string) => Buffer.from(s).toString('base64')
  return `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${b64(caPem)}
    server: ${server}
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: ${user}
  name: ${user}@kubernetes
current-context: ${user}@kubernetes
kind: Config
preferences: {}
users:
- name: ${user}
  user:
    client-certificate-data: ${b64(certPem)}
    client-key-data: ${b64(keyPem)}
`
}

/**
 * (Re)writes every certificate of the node; leaves get `leafNotAfter`. Returns the certs.tsv index text, one line per
 * file: path, subject CN, notAfter (epoch s), CA name, check name, kind (ca|leaf|kubeconfig), usages, issuer CN.
 */
export function writeNodeCerts(o: CertWriteOptions): string {
  const cas = new Map<string, CertAuthority & { subjectCn: string }>()
  const rows: string[] = []
  for (const spec of specsFor(o.dist, o.role, o.node)) {
    const file = join(o.root, spec.path)
    mkdirSync(dirname(file), { recursive: true })
    if (spec.ca === 'self') {
      const authority = o.clusterCa && spec.name === API_CA[o.dist] ? o.clusterCa : createCA(spec.cn)
      cas.set(spec.name, { ...authority, subjectCn: authority === o.clusterCa ? 'kupgrade-lab-ca' : spec.cn })
      writeFileSync(file, authority.certPem)
      writeFileSync(file.replace(/\.crt$/, '.key'), authority.keyPem, { mode: 0o600 })
      rows.push([spec.path, spec.cn, Math.floor(authority.notAfter.getTime() / 1000), 'self', spec.name, 'ca', 'CertSign', spec.cn].join('\t'))
      continue
    }
    const signer = cas.get(spec.ca)
    if (!signer) throw new Error(`lab node certs: ${spec.path} needs CA ${spec.ca}, listed after it`)
    const cert = issue(signer, {
      commonName: spec.cn,
      organization: spec.cn === 'kubernetes-admin' || spec.cn === 'system:admin' ? 'system:masters' : undefined,
      altNames: spec.usage === 'server' ? ['localhost', o.node, '127.0.0.1', o.address] : undefined,
      usage: spec.usage ?? 'client',
      notAfter: o.leafNotAfter,
    })
    if (spec.kubeconfig) writeFileSync(file, kubeconfig(o.apiEndpoint, spec.cn, signer.certPem, cert.certPem, cert.keyPem), { mode: 0o600 })
    else {
      writeFileSync(file, cert.certPem)
      if (!file.endsWith('.pem')) writeFileSync(file.replace(/\.crt$/, '.key'), cert.keyPem, { mode: 0o600 })
    }
    const usage = spec.usage === 'server' ? 'ServerAuth' : 'ClientAuth'
    rows.push([spec.path, spec.cn, Math.floor(o.leafNotAfter.getTime() / 1000), spec.ca, spec.name, spec.kubeconfig ? 'kubeconfig' : 'leaf', usage, signer.subjectCn].join('\t'))
  }
  return rows.join('\n') + '\n'
}
