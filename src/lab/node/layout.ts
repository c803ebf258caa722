import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { ensureBootId } from './boot-id.js'
import { k3sServerToken } from './k3s-join.js'
import { k0sKubeletKubeconfig } from './k0s-join.js'
import { fstabFor, HOST_PATH_DIRS, NS_ROOT, OVERLAID_PATHS, WRITABLE_PATHS } from './namespace.js'
import { debianFlavour, FLATCAR_NEXT, kernelsOf, osReleaseText } from './os-release.js'
import { pathsOf, standinsDir, VIP_SHIM, type NodePaths } from './paths.js'
import { UNAME_MACHINE, binariesOf, commitOf, mainBinaryOf, releaseForm, unitOf } from './release.js'
import { writeNodeCerts } from './certs.js'
import { etcdClusterDir, etcdClusterIdentity, etcdIdentityText, etcdIdOf, etcdPeerUrl, writeEtcdMembers } from './etcd-sim.js'
import { servicePid } from './journal.js'
import { defaultTiming } from './timing.js'
import type { LabNodeOptions, NodeArch } from './types.js'
import { singleQuote } from '../../transport/quote.js'
import { escapeControl } from '../../util/escape.js'

const q = (v: string | number): string => singleQuote(String(v))

/** Tools every node has, by OS family. Another family's tool that the host has (a rocky node on a Debian host would
 *  find the host's apt-get on its PATH) answers "command not found"; one the host lacks is simply absent, so that
 *  `command -v` fails for it as on a real node of that OS. */
const OS_TOOLS = {
  apt: ['apt-get', 'apt-mark', 'apt-cache', 'dpkg-query', 'dpkg'],
  dnf: ['dnf', 'yum', 'needs-restarting', 'rpm'],
  flatcar: ['update_engine_client'],
} as const
const familyOf = (os: LabNodeOptions['os']): keyof typeof OS_TOOLS =>
  os === 'rocky-9' ? 'dnf' : os === 'flatcar' ? 'flatcar' : 'apt'

/** Several real commands share one stand-in that dispatches on its name. */
const ALIASES: Record<string, string> = {
  'iptables-save': 'iptables-save', 'iptables-nft-save': 'iptables-save', 'iptables-legacy-save': 'iptables-save',
  'iptables-nft': 'iptables', 'iptables-legacy': 'iptables', 'ip6tables': 'iptables',
  shutdown: 'reboot', poweroff: 'reboot', yum: 'dnf', whoami: 'id', dpkg: 'dpkg-query',
}

/** Stable uint64 ids for the simulated etcd member and cluster (etcdctl prints them as decimal and hex). */
const idOf = etcdIdOf
/** The `kubernetes` Service ClusterIP: the first address of the distribution's default service CIDR. */
const clusterIpOf = (dist: LabNodeOptions['distribution']): string => (dist === 'k3s' ? '10.43.0.1' : '10.96.0.1')

export function nodeEnv(o: LabNodeOptions, p: NodePaths, real: Record<string, string>): string {
  const t = defaultTiming(o.timing)
  const dist = o.distribution
  const api = new URL(o.apiEndpoint ?? `https://${o.address}:6443`)
  const memberId = idOf(`${o.cluster}/${o.name}`)
  const os = familyOf(o.os)
  const vars: Record<string, string | number> = {
    LAB_ROOT: NS_ROOT, LAB_BIN: `${NS_ROOT}/bin`, LAB_NODE: o.name, LAB_CLUSTER: o.cluster, LAB_ROLE: o.role, LAB_DIST: dist,
    LAB_OS: o.os, LAB_OS_FAMILY: os, LAB_ADDRESS: o.address, LAB_PORT: o.port ?? 2222,
    LAB_IPT_BACKEND: o.iptablesBackend,
    LAB_ARCH: o.arch ?? 'amd64', LAB_UNAME_M: UNAME_MACHINE[o.arch ?? 'amd64'],
    LAB_IPT_VERSION: o.os === 'ubuntu-22.04' ? '1.8.7' : o.os === 'rocky-9' ? '1.8.10' : '1.8.9',
    LAB_UNIT: unitOf(dist, o.role), LAB_PID: servicePid(o.name), LAB_MAIN_BINARY: '/' + mainBinaryOf(dist).path,
    LAB_DISK_TOTAL: o.disk.totalBytes, LAB_DISK_USED: o.disk.usedBytes,
    LAB_VAR_TOTAL: o.disk.var?.totalBytes ?? '', LAB_VAR_USED: o.disk.var?.usedBytes ?? '',
    LAB_API_ENDPOINT: api.origin, LAB_API_HOST: api.hostname, LAB_API_PORT: api.port || '443',
    LAB_CLUSTER_IP: clusterIpOf(dist),
    LAB_MIRROR: o.mirror.map((v) => releaseForm(dist, v)).join(' '),
    LAB_SERVICE_START_MS: t.serviceStartMs, LAB_KPROXY_SYNC_MS: t.kubeProxySyncMs,
    LAB_ETCD_ENDPOINTS: (o.etcdEndpoints ?? []).join(','),
    LAB_DATASTORE: keepsSqlite(o) ? 'sqlite' : 'etcd',
    // A node of a lab cluster (it has the cluster's kubeconfig): kubeadm asks the API as the real one does.
    LAB_HAS_API: o.adminKubeconfig === undefined ? '' : '1',
    LAB_ETCD_ID: memberId.toString(), LAB_ETCD_ID_HEX: memberId.toString(16),
    LAB_ETCD_CLUSTER_ID: idOf(o.cluster).toString(), LAB_ETCD_CLUSTER_ID_HEX: idOf(o.cluster).toString(16),
    LAB_OS_UPDATES: (o.osUpdates ?? defaultOsUpdates(o.os, o.arch)).join(' '),
    LAB_KERNEL_NEW: kernelsOf(o.os, o.arch)[1], LAB_FLATCAR_NEXT: FLATCAR_NEXT,
    ...real,
  }
  return Object.entries(vars).map(([k, v]) => `${k}=${q(v)}`).join('\n') + '\n'
}

export function defaultOsUpdates(os: LabNodeOptions['os'], arch: NodeArch = 'amd64'): string[] {
  if (os === 'rocky-9') return ['kernel', 'glibc', 'openssl-libs']
  if (os === 'flatcar') return ['flatcar']
  return os === 'debian-12' ? [`linux-image-${debianFlavour(arch)}`, 'libc6', 'openssl'] : ['linux-image-generic', 'libc6', 'openssl']
}

/** The mirror's file a k3s release's air-gap images archives are served from. */
export const K3S_AIRGAP_TEMPLATE = 'k3s-airgap-images'

/**
 * A k3s release's air-gap images archive as the lab has it (the real one is a tar of the release's system images):
 * which release and architecture its images are, and its own file name, so each format and architecture has its own
 * checksum. The lab's k3s reads the LAB_IMAGES_ lines when it imports the archive at start (lib.sh).
 */
export function airgapImagesText(release: string, arch: NodeArch, file: string): string {
  return `kupgrade lab stand-in: ${escapeControl(file)}, the system images of k3s ${escapeControl(release)}\nLAB_IMAGES_RELEASE=${singleQuote(release)}\nLAB_IMAGES_ARCH=${singleQuote(arch)}\nLAB_IMAGES_FILE=${singleQuote(file)}\n`
}

/** A release's binary: the stand-in body for that tool, carrying its version in its first lines. */
const bodies = new Map<string, string>()
export function binaryText(tool: string, release: string, arch: NodeArch = 'amd64'): string {
  let body = bodies.get(tool)
  if (body === undefined) {
    body = readFileSync(join(standinsDir(), 'dist', `${tool}.sh`), 'utf8').replace(/^#!.*\n/, '')
    bodies.set(tool, body)
  }
  // The comment line is escaped too: a newline in a release would otherwise end the comment and start a command.
  // LAB_BINARY_ARCH: lib.sh refuses to run it on a node of another architecture, as the kernel would (ENOEXEC).
  return `#!/bin/bash\n# kupgrade lab stand-in binary: ${escapeControl(`${tool} ${release} ${arch}`)}\nLAB_VERSION=${singleQuote(release)}\nLAB_COMMIT=${singleQuote(commitOf(release))}\nLAB_BINARY_ARCH=${singleQuote(arch)}\n${body}`
}

function writeExec(file: string, text: string): void {
  writeFileSync(file, text)
  chmodSync(file, 0o755)
}

/** Writes `file` beside itself and renames it into place: a reader sees the old content or the new, never a part. */
function replaceFile(file: string, content: string | Buffer): void {
  writeFileSync(`${file}.new`, content)
  renameSync(`${file}.new`, file)
}

/** Creates the node root (first start) or refreshes its tools (later starts); installed state is kept. */
/** `vipShim`: the compiled native/vip-connect.c (native-build.ts), preloaded into every node command where present. */
export function prepareRoot(o: LabNodeOptions, real: Record<string, string>, vipShim?: string): { paths: NodePaths; firstStart: boolean } {
  const p = pathsOf(o.rootDir)
  const firstStart = !existsSync(join(p.lab, 'initialized'))
  for (const d of [...WRITABLE_PATHS, ...OVERLAID_PATHS, 'var/lib/rancher', 'var/lib/k0s', 'var/lib/kubelet', 'var/lib/etcd', 'bin', 'lab/faults', 'lab/units', 'lab/journal', 'lab/state', 'lab/mirror', 'run/lab'])
    mkdirSync(join(p.root, d), { recursive: true })
  chmodSync(join(p.root, 'tmp'), 0o1777)
  const src = standinsDir()
  // Tools: refreshed on every start so a lab upgrade of the stand-ins reaches existing node roots.
  rmSync(p.bin, { recursive: true, force: true })
  mkdirSync(p.bin)
  const family = familyOf(o.os)
  const foreign = Object.entries(OS_TOOLS).filter(([f]) => f !== family).flatMap(([, tools]) => tools)
  for (const file of readdirSync(join(src, 'bin'))) {
    if ((foreign as string[]).includes(file)) continue
    copyFileSync(join(src, 'bin', file), join(p.bin, file))
    chmodSync(join(p.bin, file), 0o755)
  }
  for (const [alias, target] of Object.entries(ALIASES)) {
    if ((foreign as string[]).includes(alias) || existsSync(join(p.bin, alias))) continue
    if (existsSync(join(p.bin, target))) symlinkSync(target, join(p.bin, alias))
  }
  for (const tool of foreign) {
    if (HOST_PATH_DIRS.some((d) => existsSync(join(d, tool)))) writeExec(join(p.bin, tool), `#!/bin/bash\necho "bash: line 1: ${tool}: command not found" >&2\nexit 127\n`)
  }
  copyFileSync(join(src, 'lib.sh'), join(p.lab, 'lib.sh'))
  for (const f of readdirSync(join(src, 'installers'))) copyFileSync(join(src, 'installers', f), join(p.lab, f))
  // What install.sh writes next to the binary on every run (create_killall, create_uninstall).
  if (o.distribution === 'k3s') for (const f of ['k3s-killall.sh', 'k3s-uninstall.sh']) copyFileSync(join(src, 'dist', f), join(p.lab, f))
  // The release mirror: one folder per release with its binaries.
  const releases = new Set([...o.mirror, o.version].map((v) => releaseForm(o.distribution, v)))
  for (const release of releases) {
    const dir = join(p.mirror, release)
    mkdirSync(dir, { recursive: true })
    // The node's own architecture's binaries, which its package manager installs. k3s and k0s publish one per
    // architecture: the curl stand-in serves each as this file with its LAB_BINARY_ARCH line changed.
    const arch = o.arch ?? 'amd64'
    for (const b of binariesOf(o.distribution)) writeExec(join(dir, b.name), binaryText(b.name, release, arch))
    // k0s carries its kubelet inside and unpacks it to /var/lib/k0s/bin on start; that kubelet reports `vX.Y.Z+k0s`.
    if (o.distribution === 'k0s') writeExec(join(dir, 'kubelet-embedded'), binaryText('kubelet', release.replace(/\+k0s\.\d+$/, '+k0s'), arch))
    // A k3s release's air-gap images archive (the curl stand-in serves one per architecture and format from it).
    if (o.distribution === 'k3s') writeFileSync(join(dir, K3S_AIRGAP_TEMPLATE), airgapImagesText(release, arch, `k3s-airgap-images-${arch}.tar.zst`))
  }
  writeFileSync(join(p.lab, 'node.env'), nodeEnv(o, p, real))
  // What the node's network does to the VIP and the ClusterIP, for every program (native/vip-connect.c).
  const api = new URL(o.apiEndpoint ?? `https://${o.address}:6443`)
  // Replaced, not rewritten: the shim reads it at every connect(), and a half-written file would let one through.
  replaceFile(join(p.lab, 'vip'), `${api.hostname} ${api.port || '443'} ${clusterIpOf(o.distribution)}\n`)
  // Preloaded as a machine-wide preload is, through the node's own /etc/ld.so.preload (its /etc is an overlay), so
  // no environment variable shows it and no program started on the node escapes it.
  if (vipShim) {
    // Replaced, never rewritten in place: a program of the node still running from a previous start maps the old
    // file, and a truncated mapping kills it with SIGBUS.
    const shim = join(p.lab, VIP_SHIM)
    const built = readFileSync(vipShim)
    if (!existsSync(shim) || !readFileSync(shim).equals(built)) replaceFile(shim, built)
    writeFileSync(join(p.root, 'etc/ld.so.preload'), `${NS_ROOT}/lab/${VIP_SHIM}\n`)
  } else {
    rmSync(join(p.lab, VIP_SHIM), { force: true })
    rmSync(join(p.root, 'etc/ld.so.preload'), { force: true })
  }
  if (firstStart) installFirst(o, p)
  ensureBootId(p)
  const etcdDir = etcdClusterDir(o, p.lab)
  writeEtcdMembers(o, etcdDir)
  mkdirSync(join(p.lab, 'etcd-cluster'), { recursive: true })
  writeFileSync(p.fstab, fstabFor(p.root, readdirSync(join(p.root, 'usr/bin')).map((f) => `usr/bin/${f}`), [{ source: etcdDir, target: 'lab/etcd-cluster' }]))
  return { paths: p, firstStart }
}

/** What the node looked like before the lab touched it: the distribution installed at `version`, its service up. */
function installFirst(o: LabNodeOptions, p: NodePaths): void {
  const release = releaseForm(o.distribution, o.version)
  const r = (rel: string) => join(p.root, rel)
  writeFileSync(r('etc/os-release'), osReleaseText(o.os))
  writeFileSync(join(p.state, 'kernel'), kernelsOf(o.os, o.arch)[0] + '\n')
  // Mid-upgrade kubeadm control plane: `kubeadm upgrade apply|node` already moved kubeadm and the manifests.
  const cpRelease = o.controlPlaneVersion ? releaseForm(o.distribution, o.controlPlaneVersion) : release
  for (const b of binariesOf(o.distribution)) writeExec(r(b.path), binaryText(b.name, b.name === 'kubeadm' ? cpRelease : release, o.arch))
  const unit = unitOf(o.distribution, o.role)
  const src = standinsDir()
  if (o.distribution === 'k3s') {
    writeExec(r('usr/local/bin/k3s-killall.sh'), readFileSync(join(src, 'dist', 'k3s-killall.sh'), 'utf8'))
    const uninstall = o.role === 'control-plane' ? 'k3s-uninstall.sh' : 'k3s-agent-uninstall.sh'
    writeExec(r(`usr/local/bin/${uninstall}`), readFileSync(join(src, 'dist', 'k3s-uninstall.sh'), 'utf8'))
    // The cluster's token (server: /var/lib/rancher/k3s/server/token, node-token a link to it); agents joined with it.
    const token = o.clusterCa ? k3sServerToken(o.clusterCa.certPem, o.cluster) : 'K10lab::server:lab'
    const joined = k3sServerJoin(o)
    const env = o.role === 'worker' ? `K3S_URL=${singleQuote(`https://${new URL(o.apiEndpoint ?? 'https://127.0.0.1:6443').host}`)}\nK3S_TOKEN=${singleQuote(token)}\n` : joined?.server ? `K3S_TOKEN=${singleQuote(token)}\n` : ''
    writeFileSync(r(`etc/systemd/system/${unit}.service.env`), env)
    if (joined) writeK3sMembership(o, etcdClusterDir(o, p.lab), p.root, token)
    if (o.role === 'control-plane') {
      mkdirSync(r('var/lib/rancher/k3s/server'), { recursive: true })
      writeFileSync(r('var/lib/rancher/k3s/server/token'), `${token}\n`, { mode: 0o600 })
      symlinkSync('/var/lib/rancher/k3s/server/token', r('var/lib/rancher/k3s/server/node-token'))
    }
    mkdirSync(r('var/lib/rancher/k3s/server/db/snapshots'), { recursive: true })
    if (o.airgapImages) {
      const file = `k3s-airgap-images-${o.arch ?? 'amd64'}.tar.zst`
      mkdirSync(r('var/lib/rancher/k3s/agent/images'), { recursive: true })
      writeFileSync(r(`var/lib/rancher/k3s/agent/images/${file}`), airgapImagesText(release, o.arch ?? 'amd64', file))
      // Imported at the node's first start, long before the lab started it.
      writeFileSync(join(p.state, 'airgap-images'), `${release}\n`)
    }
    mkdirSync(r('etc/rancher/node'), { recursive: true })
    // The password this node joined with; the cluster model holds its hash (fleet/cluster.ts initialNodePassword).
    writeFileSync(r('etc/rancher/node/password'), createHash('sha256').update(o.name).digest('hex').slice(0, 32) + '\n')
  }
  if (o.distribution === 'k0s') {
    // What k0s unpacked at its first start (facts §2.4, §4.3): the kubelet, and an iptables link naming the mode.
    mkdirSync(r('var/lib/k0s/bin'), { recursive: true })
    if (runsKubelet(o)) writeExec(r('var/lib/k0s/bin/kubelet'), readFileSync(join(p.mirror, release, 'kubelet-embedded'), 'utf8'))
    // The worker joined once: its kubelet's kubeconfig (k0s reset removes it with /var/lib/k0s; only a start with a
    // valid join token writes it again, node/k0s-join.ts).
    if (runsKubelet(o)) writeFileSync(r('var/lib/k0s/kubelet.conf'), k0sKubeletKubeconfig(o.apiEndpoint ?? `https://${o.address}:6443`, o.clusterCa?.certPem), { mode: 0o600 })
    symlinkSync(o.iptablesBackend === 'legacy' ? 'xtables-legacy-multi' : 'xtables-nft-multi', r('var/lib/k0s/bin/iptables'))
    if (k0sControllerJoin(o)) writeK0sMembership(o, etcdClusterDir(o, p.lab), p.root)
  }
  if (o.distribution === 'kubeadm') {
    const minor = release.replace(/^v(\d+\.\d+).*/, '$1')
    if (o.role === 'control-plane') {
      mkdirSync(r('etc/kubernetes/manifests'), { recursive: true })
      for (const c of ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'])
        writeFileSync(r(`etc/kubernetes/manifests/${c}.yaml`), `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${c}\n  namespace: kube-system\nspec:\n  containers:\n  - name: ${c}\n    image: registry.k8s.io/${c}:${cpRelease}\n`)
      writeFileSync(r('etc/kubernetes/manifests/etcd.yaml'), kubeadmEtcdManifest(o))
    }
    if (o.os === 'rocky-9') {
      writeFileSync(r('etc/yum.repos.d/kubernetes.repo'), `[kubernetes]\nname=Kubernetes\nbaseurl=https://pkgs.k8s.io/core:/stable:/v${minor}/rpm/\nenabled=1\ngpgcheck=1\ngpgkey=https://pkgs.k8s.io/core:/stable:/v${minor}/rpm/repodata/repomd.xml.key\nexclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n`)
    } else if (o.os !== 'flatcar') {
      mkdirSync(r('etc/apt/sources.list.d'), { recursive: true })
      writeFileSync(r('etc/apt/sources.list.d/kubernetes.list'), `deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v${minor}/deb/ /\n`)
      writeFileSync(join(p.state, 'apt-holds'), 'kubeadm\nkubectl\nkubelet\n')
    }
  }
  // The control plane's datastore (embedded etcd; kubeadm's /var/lib/etcd) was last written by the starting release:
  // an older control plane started on it refuses (lib.sh lab_datastore_refusal).
  if (keepsSqlite(o)) {
    // kine's database, written by the starting release (lib.sh lab_sqlite_write writes the same layout).
    const rows = randomBytes(48 * 1024).toString('base64').replace(/.{76}/g, '$&\n')
    writeFileSync(r('var/lib/rancher/k3s/server/db/state.db'), `SQLite format 3\0\nkupgrade-lab-kine written-by=${cpRelease}\n${rows}\n`)
    // k3s runs on it: kine has it open, so its WAL and shared-memory index are beside it (lib.sh lab_sqlite_open).
    writeFileSync(r('var/lib/rancher/k3s/server/db/state.db-wal'), randomBytes(3 * 1024).toString('base64').replace(/.{76}/g, '$&\n') + '\n')
    writeFileSync(r('var/lib/rancher/k3s/server/db/state.db-shm'), Buffer.alloc(32768))
  } else if (o.role === 'control-plane') {
    const store = { k3s: 'var/lib/rancher/k3s/server/db/etcd/member', k0s: 'var/lib/k0s/etcd/member', kubeadm: 'var/lib/etcd/member' }[o.distribution]
    mkdirSync(r(store), { recursive: true })
    writeFileSync(r(`${store}/lab-written-by`), `${cpRelease}\n`)
    if (o.distribution === 'kubeadm') {
      // The etcd the first control-plane node's kubeadm init bootstrapped, which the others joined (etcd-sim.ts).
      const members = kubeadmEtcdMembers(o)
      const identity = etcdClusterIdentity(`${members[0]!.name}=${etcdPeerUrl(members[0]!.address)}`, 'etcd-cluster')
      writeFileSync(r(`${store}/lab-cluster`), etcdIdentityText({ id: identity.id, members: members.map((m) => `${m.name}=${etcdPeerUrl(m.address)}`).sort().join(',') }))
    }
  }
  writeFileSync(r(`etc/systemd/system/${unit}.service`), unitFileText(o, unit))
  writeFileSync(join(p.units, unit), `active ${release} 0 ${Math.floor(Date.now() / 1000)}\n`)
  writeFileSync(join(p.journal, `${unit}.log`), '')
  writeCerts(o, p, defaultLeafNotAfter(o))
  writeFileSync(join(p.lab, 'initialized'), new Date().toISOString() + '\n')
}

/** A k3s server on SQLite (no --cluster-init): state.db, no etcd member, no etcd metrics. */
export const keepsSqlite = (o: Pick<LabNodeOptions, 'distribution' | 'role' | 'datastore'>): boolean =>
  o.distribution === 'k3s' && o.role === 'control-plane' && o.datastore === 'sqlite'

/** Whether the node runs a kubelet: all but a k0s controller installed without --enable-worker. */
export const runsKubelet = (o: Pick<LabNodeOptions, 'distribution' | 'role' | 'enableWorker'>): boolean =>
  o.distribution !== 'k0s' || o.role === 'worker' || o.enableWorker === true

export const defaultLeafNotAfter = (o: LabNodeOptions): Date => new Date(Date.now() + (o.certValidityDays ?? 365) * 86400_000)

export function writeCerts(o: LabNodeOptions, p: NodePaths, leafNotAfter: Date): void {
  const index = writeNodeCerts({
    root: p.root, dist: o.distribution, role: o.role, node: o.name, address: o.address,
    apiEndpoint: o.apiEndpoint ?? `https://${o.address}:6443`, leafNotAfter, ...(o.clusterCa ? { clusterCa: o.clusterCa } : {}),
  })
  writeFileSync(join(p.lab, 'certs.tsv'), index)
  writeAdminKubeconfig(o, p)
}

/** The admin kubeconfig path of each distribution (facts §7), on control-plane nodes. */
const ADMIN_KUBECONFIG = { kubeadm: 'etc/kubernetes/admin.conf', k3s: 'etc/rancher/k3s/k3s.yaml', k0s: 'var/lib/k0s/pki/admin.conf' } as const

/** The control side's kubeconfig replaces the node-local one, so `kubectl` on a control-plane node reaches the lab API. */
function writeAdminKubeconfig(o: LabNodeOptions, p: NodePaths): void {
  if (o.adminKubeconfig === undefined) return
  // Every kubeadm node's kubelet has a kubeconfig for the API (kubelet.conf); kubeadm upgrade node reads the cluster
  // configuration with it. The lab's credential stands in for the node's own.
  if (o.distribution === 'kubeadm') {
    mkdirSync(join(p.root, 'etc/kubernetes'), { recursive: true })
    // Renewed certificates reach a kubelet.conf that exists; a reset node's (`kubeadm reset` removed it) stays gone.
    const kubeletConf = join(p.root, 'etc/kubernetes/kubelet.conf')
    if (existsSync(kubeletConf) || !existsSync(join(p.lab, 'initialized'))) writeFileSync(kubeletConf, o.adminKubeconfig, { mode: 0o600 })
    // What the kubelet's TLS bootstrap would obtain after `kubeadm join` (the lab issues no CSRs): kubeadm join
    // writes it as kubelet.conf once the token and the CA pin checked out.
    writeFileSync(join(p.lab, 'kubelet-credential.conf'), o.adminKubeconfig, { mode: 0o600 })
  }
  if (o.role !== 'control-plane') return
  const file = join(p.root, ADMIN_KUBECONFIG[o.distribution])
  mkdirSync(join(file, '..'), { recursive: true })
  writeFileSync(file, o.adminKubeconfig, { mode: 0o600 })
}

function unitFileText(o: LabNodeOptions, unit: string): string {
  const desc: Record<string, [string, string, string]> = {
    k3s: ['Lightweight Kubernetes', 'https://k3s.io', '/usr/local/bin/k3s server'],
    'k3s-agent': ['Lightweight Kubernetes', 'https://k3s.io', '/usr/local/bin/k3s agent'],
    k0scontroller: ['k0s - Zero Friction Kubernetes', 'https://docs.k0sproject.io', '/usr/local/bin/k0s controller --config=/etc/k0s/k0s.yaml'],
    k0sworker: ['k0s - Zero Friction Kubernetes', 'https://docs.k0sproject.io', '/usr/local/bin/k0s worker --token-file=/etc/k0s/k0stoken'],
    kubelet: ['kubelet: The Kubernetes Node Agent', 'https://kubernetes.io/docs/', '/usr/bin/kubelet'],
  }
  const [d, docs, plain] = desc[unit] ?? [unit, '', unit]
  const joined = unit === 'k3s' ? k3sServerJoin(o) : undefined
  // A k3s server of an embedded-etcd cluster as install.sh writes it (one quoted word per line, ExecStart last).
  if (joined) return k3sInstalledUnit('server', joined.server ? ['--server', joined.server] : ['--cluster-init'])
  // A controller that joined another (k0s install controller --token-file; k0sctl removes the file once joined).
  const joins = unit === 'k0scontroller' && k0sControllerJoin(o)?.joined ? ' --token-file=/etc/k0s/k0stoken' : ''
  const exec = unit === 'k0scontroller' && o.enableWorker ? `${plain}${joins} --enable-worker` : `${plain}${joins}`
  const type = unit.startsWith('k3s') ? 'notify' : 'simple'
  return `[Unit]\nDescription=${d}\nDocumentation=${docs}\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=${type}\nExecStart=${exec}\nRestart=always\nRestartSec=5s\n\n[Install]\nWantedBy=multi-user.target\n`
}

/**
 * How a k3s server of an embedded-etcd cluster was installed (docs.k3s.io "High Availability Embedded etcd"): the
 * first with --cluster-init (it started the etcd cluster), each other with --server https://<first>:6443 and the
 * cluster's token (K3S_TOKEN in its env file). Undefined for a node that is no such server (an agent, SQLite, a server
 * on the lab's real etcd, which keeps no k3s membership).
 */
export function k3sServerJoin(o: LabNodeOptions): { server?: string } | undefined {
  if (o.distribution !== 'k3s' || o.role !== 'control-plane' || keepsSqlite(o) || o.etcdEndpoints) return undefined
  const first = o.etcdCluster?.members[0]
  return first && first.name !== o.name ? { server: `https://${first.address}:6443` } : {}
}

/** A k0s controller of the lab's simulated etcd: `joined` when it is not the first (it joined with a controller token). */
export function k0sControllerJoin(o: LabNodeOptions): { joined: boolean } | undefined {
  if (o.distribution !== 'k0s' || o.role !== 'control-plane' || o.etcdEndpoints) return undefined
  const first = o.etcdCluster?.members[0]
  return { joined: first !== undefined && first.name !== o.name }
}

/** A k0s controller's etcd membership as the cluster's shared folder holds it (node/k0s-join.ts k0sControllerStart). */
function writeK0sMembership(o: LabNodeOptions, dir: string, root: string): void {
  mkdirSync(join(dir, 'k0s-members'), { recursive: true })
  writeFileSync(join(dir, 'k0s-members', o.name), `${etcdPeerUrl(o.address)}\n`)
  const cluster = join(dir, 'k0s-cluster-id')
  if (!existsSync(cluster)) writeFileSync(cluster, `${idOf(o.cluster).toString(16)}\n`)
  mkdirSync(join(root, 'var/lib/k0s/pki'), { recursive: true })
  writeFileSync(join(root, 'var/lib/k0s/pki/lab-cluster-id'), readFileSync(cluster, 'utf8'))
}

/** The unit install.sh writes (its create_systemd_service_file, as the installer stand-in writes it too). */
const k3sInstalledUnit = (command: string, args: string[]): string =>
  `[Unit]\nDescription=Lightweight Kubernetes\nDocumentation=https://k3s.io\nWants=network-online.target\nAfter=network-online.target\n\n[Install]\nWantedBy=multi-user.target\n\n[Service]\nType=notify\nEnvironmentFile=-/etc/default/%N\nEnvironmentFile=-/etc/sysconfig/%N\nEnvironmentFile=-/etc/systemd/system/k3s.service.env\nKillMode=process\nDelegate=yes\nUser=root\nRestart=always\nRestartSec=5s\nExecStart=/usr/local/bin/k3s \\\n    ${command} \\\n${args.map((a) => `\t${singleQuote(a)} \\\n`).join('')}\n`

/**
 * A k3s server's etcd membership as its peers know it (lib.sh lab_k3s_*): k3s names the member `<node>-<8 hex>` and
 * keeps the name in server/db/etcd/name; the cluster lists its members (k3s-members/NODE in the shared folder); the
 * cluster's id, token and critical configuration are there too, so that a server starting on an empty datastore is
 * judged as k3s judges it.
 */
function writeK3sMembership(o: LabNodeOptions, dir: string, root: string, token: string): void {
  const member = `${o.name}-${createHash('sha256').update(`${o.cluster}/${o.name}/k3s-member`).digest('hex').slice(0, 8)}`
  mkdirSync(join(dir, 'k3s-members'), { recursive: true })
  writeFileSync(join(dir, 'k3s-members', o.name), `${member}\n`)
  writeFileSync(join(dir, 'k3s-token'), `${token}\n`, { mode: 0o600 })
  // Its critical configuration (lib.sh lab_k3s_critical): the lab's servers set none of those flags, all defaults.
  writeFileSync(join(dir, 'k3s-critical'), '')
  const cluster = join(dir, 'cluster-id')
  if (!existsSync(cluster)) writeFileSync(cluster, `${idOf(o.cluster).toString(16)}\n`)
  const db = join(root, 'var/lib/rancher/k3s/server/db/etcd')
  mkdirSync(join(db, 'member'), { recursive: true })
  writeFileSync(join(db, 'name'), `${member}\n`)
  writeFileSync(join(db, 'member/lab-cluster-id'), readFileSync(cluster, 'utf8'))
}

/** The cluster's etcd members in the order they joined (the first ran kubeadm init); a lone node is its own. */
const kubeadmEtcdMembers = (o: LabNodeOptions): { name: string; address: string }[] => o.etcdCluster?.members ?? [{ name: o.name, address: o.address }]

/**
 * kubeadm's etcd static pod as kubeadm writes it: the member's name and peer URL, and --initial-cluster with the
 * members up to this one (kubeadm init: only itself, state new; each join: the members before it, state existing).
 * A restore needs every member's name and peer URL from here.
 */
function kubeadmEtcdManifest(o: LabNodeOptions): string {
  const members = kubeadmEtcdMembers(o)
  const at = Math.max(0, members.findIndex((m) => m.name === o.name))
  const initial = members.slice(0, at + 1).map((m) => `${m.name}=${etcdPeerUrl(m.address)}`).join(',')
  const flags = [
    `--advertise-client-urls=https://${o.address}:2379`, '--cert-file=/etc/kubernetes/pki/etcd/server.crt', '--client-cert-auth=true',
    '--data-dir=/var/lib/etcd', `--initial-advertise-peer-urls=${etcdPeerUrl(o.address)}`, `--initial-cluster=${initial}`,
    ...(at > 0 ? ['--initial-cluster-state=existing'] : []), '--key-file=/etc/kubernetes/pki/etcd/server.key',
    `--listen-client-urls=https://127.0.0.1:2379,https://${o.address}:2379`, '--listen-metrics-urls=http://127.0.0.1:2381',
    `--listen-peer-urls=${etcdPeerUrl(o.address)}`, `--name=${o.name}`, '--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt',
    '--peer-client-cert-auth=true', '--peer-key-file=/etc/kubernetes/pki/etcd/peer.key', '--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt',
    '--snapshot-count=10000', '--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt',
  ]
  return [
    'apiVersion: v1', 'kind: Pod', 'metadata:', '  annotations:', `    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://${o.address}:2379`,
    '  labels:', '    component: etcd', '    tier: control-plane', '  name: etcd', '  namespace: kube-system', 'spec:', '  containers:',
    '  - command:', '    - etcd', ...flags.map((f) => `    - ${f}`), '    image: registry.k8s.io/etcd:3.5.12-0', '    name: etcd', '',
  ].join('\n')
}
