/**
 * The contract between a lab node (this folder) and the lab's control side (fleet model, API servers, faults API).
 * docs/lab-contract-notes.md explains every field; change both together.
 */
import type { NodeRole as PlanNodeRole } from '../../drivers/types.js'
import type { Distribution } from '../../plan/versions.js'
import type { CertAuthority } from '../pki/x509.js'
import type { NodeChange } from '../recorder/types.js'

export type NodeDistribution = Distribution
export type NodeRole = PlanNodeRole
export type NodeOs = 'ubuntu-22.04' | 'debian-12' | 'rocky-9' | 'flatcar'
export type IptablesBackend = 'nf_tables' | 'legacy'

/** What `df` reports. `/var` shares the root filesystem unless `var` is given. */
export interface NodeDisk {
  totalBytes: number
  usedBytes: number
  var?: { totalBytes: number; usedBytes: number }
}

/** Delays the node simulates, in milliseconds. All optional; defaults in timing.ts. */
export interface NodeTiming {
  /** systemctl start/restart → the service runs the installed binary (and `'service' started` fires) after this. */
  serviceStartMs?: number
  /** How long a reboot keeps sshd down before it listens again. */
  rebootMs?: number
  /** kube-proxy's syncPeriod (real default 30 s): one failed sync per period while `kube-proxy-sync-failure` is on,
   *  healthz 503 after two periods without a successful sync. */
  kubeProxySyncMs?: number
}

/** A login the node accepts besides root. `sudo: false` makes `sudo -n` fail with "a password is required". */
export interface NodeUser {
  name: string
  sudo: boolean
}

/** Kubernetes' architecture names (the `kubernetes.io/arch` label), the ones k3s and k0s release binaries for. */
export type NodeArch = 'amd64' | 'arm64' | 'arm'

export interface LabNodeOptions {
  cluster: string
  name: string
  role: NodeRole
  distribution: NodeDistribution
  /** Loopback address the node's sshd listens on, e.g. 127.0.11.1. */
  address: string
  /** sshd port; default 2222. */
  port?: number
  os: NodeOs
  iptablesBackend: IptablesBackend
  /** The machine's architecture in Kubernetes' words (default amd64): `uname -m` says x86_64, aarch64 or armv7l, and a
   *  release binary built for another one does not run (exit 126, systemd's 203/EXEC). */
  arch?: NodeArch
  disk: NodeDisk
  /** The node's private root folder (created if missing; kept across stop/start so host keys persist). */
  rootDir: string
  /** Installed and running version at first start, in the distribution's release form (facts §2):
   *  k3s `v1.29.2+k3s1`, k0s `v1.29.2+k0s.0`, kubeadm `v1.29.2`. A plain `v1.29.2` is accepted and converted. */
  version: string
  /** Extension: kubeadm control-plane nodes half-way through an upgrade: the version of the static-pod control plane
   *  (manifests) and of the kubeadm binary that moved it, when it differs from `version` (the kubelet). */
  controlPlaneVersion?: string
  /** Versions the lab release mirror offers (same forms as `version`). Anything else downloads as a 404. */
  mirror: string[]
  timing: NodeTiming
  /** OpenSSH private key text (ed25519). Default: generated once, persisted in rootDir/lab/ssh_host_ed25519_key. */
  hostKey?: string | Buffer
  /** Public keys (OpenSSH `ssh-ed25519 AAAA…` lines, or key files' contents) allowed to log in. */
  authorizedKeys: Buffer[]
  /** Extension: the cluster's API endpoint (VIP / LB), e.g. `https://127.0.10.1:6443`. curl to it, or to the
   *  `kubernetes` Service ClusterIP (10.43.0.1 on k3s, 10.96.0.1 otherwise) on 443, reaches this address. */
  apiEndpoint?: string
  /** Extension: logins besides root. Default: only root. */
  users?: NodeUser[]
  /** Extension: certificate lifetime of node certs, default 365 days from first start (k3s/kubeadm leaf default). */
  certValidityDays?: number
  /** Extension: a real etcd member backs this node: `etcdctl` passes through to the real binary with these endpoints. */
  etcdEndpoints?: string[]
  /** Extension: the CA the cluster's API serves under. The node's cluster CA file (kubeadm/k0s pki/ca.crt, k3s
   *  server-ca.crt) is this CA, so `curl --cacert … https://10.96.0.1/readyz` verifies as on a real node. */
  clusterCa?: CertAuthority
  /** Extension: the cluster's simulated etcd (no real etcd): its members (the control-plane nodes, in order) and a
   *  folder on the lab host all of them share (member list, sick members). Without it a control-plane node is a
   *  one-member etcd. */
  etcdCluster?: { dir: string; members: { name: string; address: string }[] }
  /** Extension (k3s servers): `sqlite` = installed without --cluster-init, so kine keeps the cluster in
   *  /var/lib/rancher/k3s/server/db/state.db: no etcd member (etcdctl finds nothing on 2379, nothing serves 2381,
   *  `k3s etcd-snapshot` refuses as k3s does). Default `etcd` (embedded etcd). */
  /** Run this node's commands at a lower CPU priority (LabOptions.nodeCommandNiceness). */
  niceness?: number
  datastore?: 'etcd' | 'sqlite'
  /** Extension: a kubeconfig for the cluster's API (the lab's CA and a credential). Written where the distribution
   *  keeps its admin kubeconfig on control-plane nodes (kubeadm /etc/kubernetes/admin.conf, k3s
   *  /etc/rancher/k3s/k3s.yaml, k0s /var/lib/k0s/pki/admin.conf) so `kubectl` on the node reaches the lab API.
   *  Without it those files hold a node-local CA the lab API server does not trust. */
  adminKubeconfig?: string
  /** Extension: OS packages `apt-get upgrade` / `dnf upgrade` / Flatcar update would install. Default: a kernel
   *  and libc update that requires a reboot. An empty list means the OS is up to date. */
  osUpdates?: string[]
  /** k3s: an air-gapped node that loads k3s's images from the release's archive in /var/lib/rancher/k3s/agent/images
   *  (k3s-airgap-images-<arch>.tar.zst, written for the starting release); at each start k3s imports the archives
   *  there, and the node knows which releases' images it has (getState().airgapImages). */
  airgapImages?: boolean
  /** Extension (kubeadm, k0s): the kube-proxy DaemonSet pod the cluster has on this node now, or undefined while it has
   *  none. Its version is what kube-proxy's metrics (`kubernetes_build_info`) report and its name/uid name the log
   *  file /var/log/pods/kube-system_NAME_UID/kube-proxy/0.log. Without it the pod runs the node's own version. */
  kubeProxyPod?: () => KubeProxyPod | undefined
  /** Extension (k0s controllers): installed with `k0s install controller --enable-worker`, so k0s runs a kubelet
   *  (and kube-proxy) here and the node is a Kubernetes Node. Default false, as k0s: a plain controller runs the
   *  control plane only, with no kubelet, no kubelet healthz port and no /var/lib/k0s/bin/kubelet. */
  enableWorker?: boolean
}

/** The kube-proxy pod on a node, as the cluster has it (image tag = version, plain `v1.29.2`). */
export interface KubeProxyPod {
  name: string
  uid: string
  version: string
  startedAt: Date
}

export interface LabNodeState {
  /** Version of the installed binary (k3s/k0s) or kubelet package (kubeadm), read from the file on disk. */
  installedVersion: string
  /** Version the service runs now; the binary version at its last start. */
  runningVersion: string
  serviceActive: boolean
  rebooting: boolean
  /** `node-not-ready-after-upgrade`: the service started while the fault was on; the fleet keeps Ready=False. */
  notReady: boolean
  /** k3s: the releases whose air-gap images archive k3s has imported from agent/images (its containerd keeps them). */
  airgapImages?: string[]
}

export interface ServiceEvent {
  service: string
  state: 'stopped' | 'started'
  /** The version of the binary the service now runs (on 'stopped': the version it ran). */
  version: string
  /** 'started': when the start completed (the unit's due time). A timer may fire a little before Date.now() reaches
   *  it, so whoever reads the unit file for this start reads it as of `due` (readUnitAsOf). */
  due?: number
}
export interface InstalledEvent {
  version: string
  /** Extension: which binary changed (k3s, k0s, kubeadm, kubelet, kubectl). */
  binary: string
}
export interface RebootEvent {
  phase: 'down' | 'up'
}
/** Extension: `kubeadm upgrade apply VERSION` (phase 'apply') or `kubeadm upgrade node` succeeded on this node. */
export interface UpgradeAppliedEvent {
  command: 'apply' | 'node'
  version: string
}
/** Extension (kubeadm control-plane nodes): the static-pod control plane the kubelet runs from
 *  /etc/kubernetes/manifests changed: its version, and why its kube-apiserver cannot run (crash-looping) if it cannot. */
export interface StaticControlPlaneEvent {
  version: string
  failing?: string
}
/** Extension: one SSH exec finished (for lab logs and the demo). */
export interface ExecEvent {
  user: string
  command: string
  exitCode: number | null
  signal?: string
  durationMs: number
}

/** Extension: a client used this node as a bastion (ProxyJump): a TCP forward to `host:port` was opened or refused. */
export interface ForwardEvent {
  host: string
  port: number
  accepted: boolean
}

/** Extension: renewed certificates (`kubeadm certs renew`, `k3s certificate rotate`) are in use after the service's
 *  next start: the cluster's cert-expired / cert-expiring faults are over. */
export interface CertsRotatedEvent {
  version: string
}

export interface LabNodeEvents {
  'certs-rotated': [CertsRotatedEvent]
  service: [ServiceEvent]
  installed: [InstalledEvent]
  reboot: [RebootEvent]
  'upgrade-applied': [UpgradeAppliedEvent]
  'static-control-plane': [StaticControlPlaneEvent]
  exec: [ExecEvent]
  forward: [ForwardEvent]
  /** Extension: a state change a client made (a stand-in's event or a file written under the distribution's paths),
   *  stamped with the SSH client that made it, for the lab's recorder. */
  change: [NodeChange]
}

// The catalogue in ../faults.ts is the one list of faults; the node side takes those marked `node`.
export { NODE_FAULTS, type NodeFault } from '../faults.js'
