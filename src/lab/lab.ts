import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KupgradeError } from '../errors.js'
import { parseDuration } from '../util/duration.js'
import { ApiServer } from './api/server.js'
import { FAULTS, faultKey, type FaultSpec, type FaultTrigger } from './faults.js'
import { ClusterModel } from './fleet/cluster.js'
import { certRenewal, type RenewalBy } from './fleet/cert-renewal.js'
import { nodeStatus } from './api/table.js'
import { labNodeFactory, type NodeFactory, type NodeRuntime } from './node-runtime.js'
import { generateEd25519KeyPair, hasRealEtcd, startEtcdCluster, type EtcdCluster } from './node/index.js'
import { pathsOf } from './node/paths.js'
import { replacePreviousLab } from './previous-lab.js'
import { WRITABLE_PATHS } from './node/namespace.js'
import { DatastoreSnapshots } from './fleet/datastore-snapshots.js'
import { k3sEtcdMemberName } from './node/etcd-sim.js'
import { readUnit, readUnitAsOf, writeUnit } from './node/unit-state.js'
import { k0sControllerStart, k0sServiceError, k0sWorkerJoinProblem, workerLog } from './node/k0s-join.js'
import { authenticateBootstrapToken, authenticateControllerJoinToken } from './fleet/bootstrap-tokens.js'
import { agentLog, agentNodePassword, agentToken, k3sServerInClusterOfItsOwn, k3sServerToken, k3sTokenProblem, NODE_PASSWORD_REJECTED, removeK3sMember } from './node/k3s-join.js'
import { readBootId } from './node/boot-id.js'
import type { KubeProxyPod, RebootEvent, ServiceEvent, StaticControlPlaneEvent, UpgradeAppliedEvent } from './node/types.js'
import { kubeProxySkewRefusal } from './node/kube-proxy.js'
import { imageTag } from '../facts/image-tag.js'
import { setPodLogSource } from './pod-log-source.js'
import { kubeconfig, knownHosts, labPlan } from './outputs.js'
import { BarePodKubelet, type ContainerHost } from './pods/kubelet.js'
import { apiRequestRecorder } from './recorder/api-requests.js'
import { Recorder } from './recorder/recorder.js'
import type { NodeChange } from './recorder/types.js'
import { createCA, issue, type CertAuthority } from './pki/x509.js'
import type { ClusterTopology, Topology } from './topology.js'
import { kubeletVersion, releaseVersion } from './versions.js'

/**
 * The whole lab fleet in one process: per cluster a ClusterModel and its HTTPS API server, per node a LabNode (SSH
 * server + stand-in binaries) whose service/reboot events drive the model's Node status. Faults go to the model
 * (cluster-side signals) and to the nodes (node-side signals). Files for users land in `dir`.
 */
export interface LabOptions {
  topology: Topology
  dir: string
  /** Start SSH nodes (default true). Off for API-only labs (`--api-only`, tests of the API). */
  nodes?: boolean
  /** How nodes are made; default the node side's LabNode. Tests pass a recorder to check fault routing and events. */
  nodeFactory?: NodeFactory
  log?: (line: string) => void
  /** Run the nodes' commands at this lower CPU priority (node/exec.ts): a bench of many nodes on a few cores, where
   *  the nodes' work would otherwise take the API server's CPU. Default: the lab's own priority. */
  nodeCommandNiceness?: number
  /** Logins on every node besides root, with or without passwordless sudo (the lab's sudo): a fleet reached as an
   *  unprivileged user, as most real ones are. */
  nodeUsers?: { name: string; sudo: boolean }[]
}

/** How many nodes start at once (see start()). */
const NODE_START_CONCURRENCY = 8

export interface ArmedFault {
  spec: FaultSpec
  after: FaultTrigger
  node: string
}

interface LabCluster {
  topology: ClusterTopology
  model: ClusterModel
  api: ApiServer
  nodes: Map<string, NodeRuntime>
  /** `etcd: real`: the etcd members behind the control-plane nodes' etcdctl. */
  etcd?: EtcdCluster
}

export interface LabStatus {
  name: string
  clusters: {
    name: string
    distribution: string
    version: string
    api: string
    nodes: { name: string; role: string; address: string; port: number; version: string; status: string; ready: string; /** false: a k0s controller without --enable-worker (no Node object) */ node: boolean; cordoned: boolean; ssh: boolean }[]
    faults: FaultSpec[]
    armed: ArmedFault[]
  }[]
}

/** How often a refused k3s agent retries (k3s: every 2 s for the token, 5 s for its configuration). */
const K3S_AGENT_RETRY_MS = 1000

export class Lab {
  readonly clusters = new Map<string, LabCluster>()
  readonly armed: ArmedFault[] = []
  /** Every mutating API request and state-changing node command, for `kupgrade lab events` and tests. */
  readonly recorder = new Recorder()
  ca!: CertAuthority
  token = ''
  nodesAvailable = false
  private started = false

  constructor(readonly opts: LabOptions) {}

  get topology(): Topology {
    return this.opts.topology
  }
  private log(line: string): void {
    this.opts.log?.(line)
  }

  async start(): Promise<void> {
    const { topology: t, dir } = this.opts
    await mkdir(dir, { recursive: true })
    await replacePreviousLab(dir, t)
    this.ca = createCA(`kupgrade-lab-ca@${t.name}`)
    this.token = randomBytes(24).toString('base64url')
    const yearMs = 365 * 86400_000
    const client = issue(this.ca, { commonName: 'kupgrade-lab-admin', organization: 'system:masters', usage: 'client', notAfter: new Date(Date.now() + yearMs) })
    // ssh2's own generator now and then yields a key it cannot parse back; the node side's helper retries until valid.
    const userKey = generateEd25519KeyPair()
    const factory = this.opts.nodes === false ? undefined : (this.opts.nodeFactory ?? labNodeFactory)
    this.nodesAvailable = factory !== undefined
    this.started = true
    const snapshots = new DatastoreSnapshots(join(dir, 'datastore-snapshots'))
    try {
      for (const c of t.clusters) {
        const model = new ClusterModel(c, {
          readyDelayMs: t.timing.readyDelayMs, drainEvictionDelayMs: t.timing.drainEvictionDelayMs,
          nodeMonitorGraceMs: t.timing.nodeMonitorGracePeriodMs, podStartDelayMs: t.timing.podStartDelayMs,
        })
        model.caPem = this.ca.certPem
        const api = new ApiServer(model, { ca: this.ca, token: this.token, certValidityMs: c.certValidityMs, onRequest: apiRequestRecorder(this.recorder, c.name, model) })
        const lc: LabCluster = { topology: c, model, api, nodes: new Map() }
        this.clusters.set(c.name, lc)
        model.on('trigger', (trigger: FaultTrigger, node: string) => this.onTrigger(c.name, trigger, node))
        if (c.distribution === 'k3s') model.on('node-deleted', (node: string) => removeK3sMember(this.etcdSimDir(c.name), node))
        await api.start()
        if (c.etcd === 'real') lc.etcd = await this.startEtcd(c)
        // kubectl logs of a kube-proxy pod reads the log its node writes (the node's /var/log/pods file).
        setPodLogSource(model, (p) => {
          if (p.kind !== 'kube-proxy' || !p.nodeName || kubeProxyPodOn(model, p.nodeName)?.uid !== p.uid) return undefined
          return lc.nodes.get(p.nodeName)?.readKubeProxyLog?.()
        })
        // Control-plane nodes get the admin kubeconfig real ones have (admin.conf, k3s.yaml), so kubectl there works.
        const admin = kubeconfig({ ...t, clusters: [c] }, { caPem: this.ca.certPem, token: this.token, clientCertPem: client.certPem, clientKeyPem: client.keyPem })
        if (factory) {
          for (const n of c.nodes) {
            const node = factory({
              cluster: c.name, name: n.name, role: n.role, distribution: c.distribution, address: n.address, port: n.sshPort, os: n.os,
              ...(this.opts.nodeCommandNiceness ? { niceness: this.opts.nodeCommandNiceness } : {}),
              ...(this.opts.nodeUsers ? { users: this.opts.nodeUsers } : {}),
              iptablesBackend: n.iptables, arch: n.arch, disk: { totalBytes: n.diskBytes, usedBytes: n.diskBytes - n.diskFreeBytes },
              rootDir: join(dir, 'nodes', c.name, n.name), version: releaseVersion(c.distribution, n.version),
              ...(n.controlPlaneVersion !== n.version ? { controlPlaneVersion: releaseVersion(c.distribution, n.controlPlaneVersion) } : {}),
              mirror: t.mirror.map((v) => releaseVersion(c.distribution, v)),
              timing: { serviceStartMs: t.timing.serviceRestartMs, rebootMs: t.timing.rebootMs, kubeProxySyncMs: t.timing.kubeProxySyncMs },
              authorizedKeys: [Buffer.from(userKey.public)], apiEndpoint: api.url, clusterCa: this.ca,
              certValidityDays: Math.round(c.certValidityMs / 86400_000),
              // Control-plane nodes keep it as their admin kubeconfig; kubeadm nodes also as kubelet.conf (layout.ts).
              ...(n.role === 'control-plane' || c.distribution === 'kubeadm' ? { adminKubeconfig: admin } : {}),
              ...(lc.etcd && n.role === 'control-plane' ? { etcdEndpoints: lc.etcd.endpointsFor(n.name) } : {}),
              // Simulated etcd: every control-plane node a member of one etcd, sharing a folder (etcd-sim.ts).
              ...(c.datastore === 'sqlite' && n.role === 'control-plane' ? { datastore: 'sqlite' as const } : {}),
              ...(!lc.etcd && n.role === 'control-plane' && c.datastore !== 'sqlite' ? { etcdCluster: { dir: this.etcdSimDir(c.name), members: c.nodes.filter((m) => m.role === 'control-plane').map((m) => ({ name: m.name, address: m.address })) } } : {}),
              ...(c.distribution === 'k3s' ? {} : { kubeProxyPod: () => kubeProxyPodOn(model, n.name) }),
              ...(c.distribution === 'k0s' && n.role === 'control-plane' ? { enableWorker: n.kubelet } : {}),
              ...(n.osUpdates ? { osUpdates: n.osUpdates } : {}),
              ...(n.airgapImages ? { airgapImages: true } : {}),
            })
            this.wireNode(c.name, model, n.name, node, join(dir, 'nodes', c.name, n.name))
            node.on('change', (ch: NodeChange) => {
              this.recorder.recordNode({ cluster: c.name, node: n.name, role: n.role }, ch)
              // A datastore snapshot holds the API's objects as they were; a restore from one brings them back.
              const file = ch.path && (ch.action === 'backup' || ch.action === 'restore') ? hostPathOf(join(dir, 'nodes', c.name, n.name), ch.path) : undefined
              if (file && ch.action === 'backup') snapshots.taken(model, file)
              if (file && ch.action === 'restore') snapshots.restored(model, file)
            })
            lc.nodes.set(n.name, node)
          }
          model.kubelet = new BarePodKubelet(model, (name) => containerHost(lc.nodes.get(name)))
        }
      }
      // Start nodes a few at a time across all clusters: starting is mostly file writes for the node's root folder,
      // and on a 2-core machine 100 at once thrash (measured: slower and erratic) while a small pool keeps busy.
      const pending = [...this.clusters.values()].flatMap((lc) => [...lc.nodes.entries()].map(([name, n]) => ({ cluster: lc.topology.name, name, n })))
      const worker = async () => {
        for (let next = pending.shift(); next; next = pending.shift()) {
          const { cluster, name, n } = next
          await n.start().catch((err: Error) => {
            pending.length = 0
            throw new KupgradeError(`lab node ${cluster}/${name} failed to start: ${err.message}`, { cause: err, hint: 'run with --api-only to serve only the API servers' })
          })
          // The Node reports the boot id the machine shows (a lab node's is its own, boot-id.ts).
          const lc = this.clusters.get(cluster)!
          const bootId = readBootId(pathsOf(join(dir, 'nodes', cluster, name)))
          if (bootId) lc.model.bootedWith(name, bootId)
        }
      }
      await Promise.all(Array.from({ length: NODE_START_CONCURRENCY }, worker))
      // Faults last: node-side faults need started nodes.
      for (const c of t.clusters) {
        for (const f of c.faults) {
          const spec: FaultSpec = { fault: f.fault, cluster: c.name, ...(f.node ? { node: f.node } : {}), ...(f.params ? { params: f.params } : {}) }
          if (f.when) this.armed.push({ spec, after: f.when.after, node: f.when.node })
          else this.setFault(spec, true)
        }
      }
      await this.writeFiles(userKey.private, userKey.public, client)
    } catch (err) {
      await this.stop()
      const e = err as NodeJS.ErrnoException
      if (e.code === 'EADDRINUSE' || e.code === 'EADDRNOTAVAIL') {
        throw new KupgradeError(`cannot listen: ${e.message}`, { hint: 'another lab may be running on these addresses: `kupgrade lab down --dir DIR`, or set other addresses in the topology' })
      }
      throw err
    }
  }

  /** One real etcd member per control-plane node, on the cluster's own loopback address (ports 2379x/2380x/2381x). */
  private async startEtcd(c: ClusterTopology): Promise<EtcdCluster> {
    if (!(await hasRealEtcd())) {
      throw new KupgradeError(`cluster ${c.name} asks for a real etcd, but etcd and etcdctl are not installed`, { hint: 'apt-get install etcd-server etcd-client, or set etcd: simulated' })
    }
    const names = c.nodes.filter((n) => n.role === 'control-plane').map((n) => n.name)
    try {
      return await startEtcdCluster({ dir: join(this.opts.dir, 'etcd', c.name), names, host: c.apiAddress, ...(c.distribution === 'k3s' ? { memberName: (n: string) => k3sEtcdMemberName(c.name, n) } : {}) })
    } catch (err) {
      throw new KupgradeError(`real etcd for cluster ${c.name} did not start: ${(err as Error).message}`, { cause: err })
    }
  }

  /** The shared folder of a cluster's simulated etcd (etcd-sim.ts), which its control-plane nodes see at lab/etcd-cluster. */
  private etcdSimDir(cluster: string): string {
    return join(this.opts.dir, 'etcd-sim', cluster)
  }

  private wireNode(cluster: string, model: ClusterModel, name: string, node: NodeRuntime, rootDir: string): void {
    node.on('service', (e: ServiceEvent) => {
      if (e.state === 'stopped') return model.serviceStopped(name)
      // kube-proxy-sync-failure with `untilRestart`: the incident's sync failures ended when the node restarted and a
      // fresh kube-proxy rebuilt its rules from nothing, so the next start of the node's service ends the fault. Checked
      // before the start is reported, so a fault armed on this very start (node-upgraded) begins after it.
      const sync = model.faults.get(faultKey({ fault: 'kube-proxy-sync-failure', cluster, node: name }))
      if (sync?.params?.['untilRestart']) this.setFault({ fault: 'kube-proxy-sync-failure', cluster, node: name }, false)
      const start = () => {
        if (model.distribution !== 'kubeadm') this.renewCerts(model, name, model.distribution === 'k3s' ? 'k3s start' : 'k0s start')
        node.issueMissingCerts?.()
        model.serviceStarted(name, e.version, { keepNotReady: safeState(node)?.notReady === true })
      }
      // Join checks read the machine's files: a node runtime without a lab node root (a test double) has none.
      if (readUnit(pathsOf(rootDir).units, e.service) === undefined) return start()
      if (model.distribution === 'k3s' && model.nodes.get(name)?.role === 'control-plane' && k3sServerInClusterOfItsOwn(rootDir, this.etcdSimDir(cluster))) {
        return model.serviceStarted(name, e.version, { refused: true })
      }
      if (model.distribution === 'k3s' && model.nodes.get(name)?.role === 'worker') return this.admitK3sAgent(cluster, model, name, rootDir, e.due ?? 0, start)
      if (model.distribution === 'k0s' && model.nodes.get(name)?.role === 'control-plane') {
        const address = this.clusters.get(cluster)?.topology.nodes.find((n) => n.name === name)?.address ?? ''
        const verdict = k0sControllerStart(rootDir, this.etcdSimDir(cluster), name, address, (token) => authenticateControllerJoinToken(model, token))
        if (verdict.kind === 'refused') {
          // k0s exits; systemd restarts it every RestartSec (activating (auto-restart)) until the cause goes away.
          k0sServiceError(rootDir, name, 'k0scontroller', verdict.message)
          const u = readUnit(pathsOf(rootDir).units, 'k0scontroller')
          if (u) writeUnit(pathsOf(rootDir).units, 'k0scontroller', { ...u, state: 'auto-restart', dueMs: 0 })
          return model.serviceStarted(name, e.version, { refused: true })
        }
        // A controller that bootstrapped a cluster of its own serves that one: its kubelet never registers here.
        if (verdict.kind === 'own-cluster') return model.serviceStarted(name, e.version, { refused: true })
        // Joined: the join API handed it the cluster's CA, and start() below issues its own certificates.
      }
      if (model.distribution === 'k0s' && model.nodes.get(name)?.role === 'worker') {
        // A worker without its kubelet kubeconfig (reset) joins only with a token the cluster honours; else k0s
        // exits and systemd keeps restarting it.
        const problem = k0sWorkerJoinProblem(rootDir, (token) => authenticateBootstrapToken(model, token) !== undefined)
        if (problem) {
          workerLog(rootDir, name, problem)
          const u = readUnit(pathsOf(rootDir).units, 'k0sworker')
          if (u) writeUnit(pathsOf(rootDir).units, 'k0sworker', { ...u, state: 'auto-restart', dueMs: 0 })
          return model.serviceStarted(name, e.version, { refused: true })
        }
      }
      start()
    })
    // After a reboot the kubelet reports the kernel the node booted (`uname -r` reads the same file).
    // Both phases carry the node's boot id (drawn as it goes down), so the Node's bootID is the one SSH shows.
    node.on('reboot', (e: RebootEvent) => {
      const bootId = readBootId(pathsOf(rootDir))
      model.rebootPhase(name, e.phase, { ...(bootId ? { bootId } : {}), ...(e.phase === 'up' ? { kernel: bootedKernel(rootDir) } : {}) })
    })
    node.on('upgrade-applied', (e: UpgradeAppliedEvent) => model.controlPlaneUpgraded(name, e.version))
    node.on('static-control-plane', (e: StaticControlPlaneEvent) => {
      model.staticControlPlane(name, e.version, e.failing)
      // A member of a stacked etcd started or stopped: the others' quorum may have changed with it.
      for (const [other, n] of this.clusters.get(cluster)?.nodes ?? []) if (other !== name) n.recheckStaticControlPlane?.()
    })
    // `kubeadm certs renew all` / `k3s certificate rotate` and a restart: the API serves a renewed certificate, so
    // the cluster's certificate faults (cluster-wide or this node's) are over.
    node.on('certs-rotated', () => {
      if (model.distribution === 'k3s') return this.renewCerts(model, name, 'k3s rotate')
      for (const f of [...model.faults.values()]) {
        if ((f.fault === 'cert-expired' || f.fault === 'cert-expiring') && (!f.node || f.node === name)) this.setFault({ fault: f.fault, cluster: f.cluster, ...(f.node ? { node: f.node } : {}) }, false)
      }
    })
  }

  /** What a k3s or k0s node's start, or `k3s certificate rotate`, renews (fleet/cert-renewal.ts). */
  private renewCerts(model: ClusterModel, name: string, by: RenewalBy): void {
    const self = model.nodes.get(name)
    if (!self) return
    const faults = [...model.faults.values()].map(({ since: _since, ...f }) => f)
    const { off, on } = certRenewal(faults, { name, role: self.role }, [...model.nodes.keys()], by)
    for (const f of off) this.setFault(f, false)
    for (const f of on) this.setFault(f, true)
  }

  /** A k3s agent's start: the server admits it (token, node password; node/k3s-join.ts) or the agent retries every
   *  couple of seconds while its unit runs, its kubelet never registering meanwhile. Deleting the Node (which deletes
   *  its node-password Secret) lets a retry through. */
  private admitK3sAgent(cluster: string, model: ClusterModel, name: string, rootDir: string, due: number, start: () => void): void {
    const units = pathsOf(rootDir).units
    // As of the start's own due time: read by the wall clock, a start whose timer fired early looked still activating,
    // and the agent was never admitted (its Node stayed at the old version, NotReady, for good).
    const started = readUnitAsOf(units, 'k3s-agent', due)
    const attempt = (first: boolean): void => {
      const now = readUnitAsOf(units, 'k3s-agent', due)
      if (!now || now.state !== 'active' || now.dueMs !== started?.dueMs) return // stopped or restarted since
      const token = agentToken(rootDir)
      const tokenProblem = token === undefined ? undefined : k3sTokenProblem(token, k3sServerToken(this.ca.certPem, cluster))
      if (tokenProblem) {
        agentLog(rootDir, name, 'error', `Failed to validate connection to cluster at https://${model.info.apiAddress}:${model.info.apiPort}: ${tokenProblem}`)
      } else if (model.checkNodePassword(name, agentNodePassword(rootDir)) === 'rejected') {
        agentLog(rootDir, name, 'info', `Waiting to retrieve agent configuration; server is not ready: ${NODE_PASSWORD_REJECTED}`)
      } else {
        return start()
      }
      if (first) model.serviceStarted(name, started?.version ?? '', { refused: true })
      model.later(K3S_AGENT_RETRY_MS, () => attempt(false))
    }
    attempt(true)
  }

  private async writeFiles(privateKey: string, publicKey: string, client: { certPem: string; keyPem: string }): Promise<void> {
    const t = this.topology
    const dir = this.opts.dir
    const hostKeys = new Map<string, string>()
    for (const [cn, c] of this.clusters) for (const [nn, n] of c.nodes) hostKeys.set(`${cn}/${nn}`, n.hostKeyPublic)
    await writeFile(join(dir, 'kubeconfig'), kubeconfig(t, { caPem: this.ca.certPem, token: this.token, clientCertPem: client.certPem, clientKeyPem: client.keyPem }), { mode: 0o600 })
    await writeFile(join(dir, 'ca.crt'), this.ca.certPem)
    await writeFile(join(dir, 'token'), `${this.token}\n`, { mode: 0o600 })
    await writeFile(join(dir, 'id_ed25519'), privateKey, { mode: 0o600 })
    await writeFile(join(dir, 'id_ed25519.pub'), `${publicKey.trim()}\n`)
    await writeFile(join(dir, 'known_hosts'), knownHosts(t, hostKeys))
    await writeFile(join(dir, 'plan.yaml'), labPlan(t))
  }

  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    for (const c of this.clusters.values()) c.model.stop()
    await Promise.allSettled([...this.clusters.values()].flatMap((c) => [c.api.stop(), ...[...c.nodes.values()].map((n) => n.stop())]))
    await Promise.allSettled([...this.clusters.values()].map((c) => c.etcd?.stop()))
  }

  // ---------------------------------------------------------------- faults

  /** Switch a fault on or off: cluster-side signals in the model/API server, node-side ones on the nodes. */
  setFault(spec: FaultSpec, on: boolean): void {
    const c = this.clusters.get(spec.cluster)
    if (!c) throw new KupgradeError(`no cluster ${JSON.stringify(spec.cluster)} in this lab (clusters: ${[...this.clusters.keys()].join(', ')})`)
    if (spec.node && !c.model.nodes.has(spec.node)) throw new KupgradeError(`no node ${JSON.stringify(spec.node)} in cluster ${spec.cluster}`)
    const info = FAULTS[spec.fault]
    if (on && spec.fault === 'kube-proxy-skew' && c.topology.distribution === 'k3s') throw new KupgradeError(`cluster ${spec.cluster}: ${kubeProxySkewRefusal('k3s')}`, { hint: 'use a k0s or kubeadm cluster for kube-proxy-skew' })
    if (!info.cluster && !info.node) return
    const forMs = on ? faultLasts(spec) : undefined
    c.model.setFault(spec, on)
    if (forMs !== undefined) {
      // Only this switching-on ends so: one cleared and switched on again in the meantime has a time of its own.
      const since = c.model.faults.get(faultKey(spec))?.since
      setTimeout(() => {
        if (this.started && since && c.model.faults.get(faultKey(spec))?.since === since) this.setFault(spec, false)
      }, forMs).unref()
    }
    // What pods see: the ClusterIP (api-vip-unreachable from pods) and cluster DNS (CoreDNS crash-looping).
    if ((spec.fault === 'api-vip-unreachable' || spec.fault === 'coredns-crashloop') && !spec.node) for (const node of c.nodes.values()) node.setPodNetworkFault?.(spec.fault, on)
    // api-vip-unreachable without a node means "from pods" (cluster side only); with a node, "from that node".
    const nodeSide = info.node && !(spec.fault === 'api-vip-unreachable' && !spec.node)
    if (!nodeSide) return
    for (const [name, node] of c.nodes) {
      const role = c.model.nodes.get(name)!.role
      const targeted = spec.node ? spec.node === name : info.nodes === 'all' || (info.nodes === 'control-plane' && role === 'control-plane')
      if (targeted) node.setFault(spec.fault, on, spec.params)
    }
    this.log(`fault ${on ? 'on' : 'off'}: ${faultKey(spec)}`)
  }

  /** Switch a fault off, or disarm it if it is still waiting for its event. Returns whether it was on or armed. */
  clearFault(spec: FaultSpec): boolean {
    const armedAt = this.armed.findIndex((a) => faultKey(a.spec) === faultKey(spec))
    if (armedAt >= 0) this.armed.splice(armedAt, 1)
    const active = this.clusters.get(spec.cluster)?.model.faults.has(faultKey(spec)) ?? false
    this.setFault(spec, false) // also validates the cluster and node names
    return active || armedAt >= 0
  }

  private onTrigger(cluster: string, trigger: FaultTrigger, node: string): void {
    for (let i = this.armed.length - 1; i >= 0; i--) {
      const a = this.armed[i]!
      if (a.spec.cluster === cluster && a.after === trigger && a.node === node) {
        this.armed.splice(i, 1)
        this.log(`armed fault fired after ${trigger} of ${cluster}/${node}`)
        this.setFault(a.spec, true)
      }
    }
  }

  // ---------------------------------------------------------------- status

  status(): LabStatus {
    return {
      name: this.topology.name,
      clusters: [...this.clusters.values()].map((c) => ({
        name: c.topology.name,
        distribution: c.topology.distribution,
        version: kubeletVersion(c.topology.distribution, c.model.apiServerVersion),
        api: c.api.url,
        nodes: [...c.model.nodes.values()].map((n) => ({
          name: n.name, role: n.role, address: n.address, port: c.topology.nodes[n.index]!.sshPort,
          version: kubeletVersion(c.topology.distribution, n.kubeletVersion),
          // A k0s controller without a worker has no Node object: its service state is all there is to show.
          status: n.isNode ? nodeStatus(n) : `${n.kubeletActive ? 'Running' : 'Stopped'} (${n.runsKubelet ? 'Node deleted' : 'controller, no Node'})`, ready: n.ready.status, node: n.isNode,
          cordoned: n.unschedulable, ssh: c.nodes.has(n.name),
        })),
        faults: [...c.model.faults.values()].map(({ since: _since, ...f }) => f),
        armed: this.armed.filter((a) => a.spec.cluster === c.topology.name),
      })),
    }
  }
}

function bootedKernel(rootDir: string): string | undefined {
  try {
    return readFileSync(join(pathsOf(rootDir).state, 'kernel'), 'utf8').trim() || undefined
  } catch {
    return undefined
  }
}

/** The kube-proxy DaemonSet pod running on a node (its image tag is the version that node's kube-proxy serves). */
function kubeProxyPodOn(model: ClusterModel, node: string): KubeProxyPod | undefined {
  for (const p of model.pods.values()) {
    if (p.kind !== 'kube-proxy' || p.nodeName !== node || p.phase !== 'Running' || p.deletionTimestamp) continue
    const version = imageTag(p.image)
    if (version) return { name: p.name, uid: p.uid, version, startedAt: p.startedAt ?? p.createdAt }
  }
  return undefined
}
/** Nodes that can run containers (the real LabNode; test doubles may not). */
const containerHost = (n: NodeRuntime | undefined): ContainerHost | undefined =>
  n?.runContainer ? { runContainer: (script, env) => n.runContainer!(script, env) } : undefined

const safeState = (n: NodeRuntime) => {
  try {
    return n.getState()
  } catch {
    return undefined
  }
}

/** A path a node's command printed, as a host path: the node's own folders are in its root (node/namespace.ts). */
function hostPathOf(nodeRoot: string, path: string): string | undefined {
  return WRITABLE_PATHS.some((w) => path.startsWith(`/${w}/`)) ? join(nodeRoot, path) : undefined
}

/**
 * `params.for` (any fault): it goes off by itself after that long — an outage of a known length, as an apiserver
 * restarting behind its load balancer is. Undefined without it.
 */
function faultLasts(spec: FaultSpec): number | undefined {
  const v = spec.params?.['for']
  if (v === undefined) return undefined
  const ms = typeof v === 'string' ? parseDuration(v) : undefined
  if (ms === undefined || ms <= 0) throw new KupgradeError(`fault ${spec.fault} on ${spec.cluster}${spec.node ? `/${spec.node}` : ''}: params.for must be a duration such as 15s, not ${JSON.stringify(v)}`)
  return ms
}
