import { EventEmitter } from 'node:events'
import { createHash, randomUUID } from 'node:crypto'
import { FAULTS, faultKey, type FaultName, type FaultSpec, type FaultTrigger } from '../faults.js'
import type { ClusterTopology } from '../topology.js'
import { comparePlain, plainVersion, type Distribution } from '../versions.js'
import { parseBytes, parseCpu } from '../quantity.js'
import { applyClusterFault } from './fault-effects.js'
import { pdbStatus } from './pdb.js'
import { replicaSetUid } from './replicasets.js'
import type { BarePodKubelet } from '../pods/kubelet.js'
import { admitBarePod, schedulePod } from '../pods/schedule.js'
import type { BarePodSpec } from '../pods/spec.js'
import { deploymentTolerations } from './tolerations.js'
import type {
  ClusterInfo, DaemonSetState, DeploymentState, EventState, LeaseState, NodeState, PdbState, PodKind, PodState,
} from './types.js'

/**
 * One simulated cluster: nodes, pods, controllers (Deployment, DaemonSet, scheduler, PDB, eviction), events and
 * leases. It changes only through the methods below (the API server's handlers and the node side's events call them),
 * and after every change it reconciles like the real controllers would: replacing evicted pods, scheduling Pending
 * ones, or recording FailedScheduling when nothing fits.
 *
 * Events emitted: 'trigger' (FaultTrigger, nodeName) for armed faults; 'faults' when the active set changes.
 */
export interface ClusterTiming {
  readyDelayMs: number
  drainEvictionDelayMs: number
  /** node-monitor-grace-period: a kubelet silent this long turns its Node Ready=Unknown (default 0: at once). */
  nodeMonitorGraceMs?: number
  /** A pod a controller starts is Ready this long after it runs (its readiness probe passing); default 0. */
  podStartDelayMs?: number
}

const READY = { status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' } as const
const NOT_READY_CNI = {
  status: 'False',
  reason: 'KubeletNotReady',
  message: 'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized',
} as const
const UNKNOWN = { status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' } as const
export class ClusterModel extends EventEmitter {
  readonly info: ClusterInfo
  readonly nodes = new Map<string, NodeState>()
  readonly pods = new Map<string, PodState>() // key ns/name
  readonly deployments = new Map<string, DeploymentState>()
  readonly daemonSets = new Map<string, DaemonSetState>()
  readonly pdbs = new Map<string, PdbState>()
  readonly events: EventState[] = []
  readonly leases = new Map<string, LeaseState>()
  readonly faults = new Map<string, FaultSpec & { since: Date }>()
  /** k3s: the node-password Secrets (`<node>.node-password.k3s`): node name → hash of the agent's password. */
  readonly nodePasswords = new Map<string, string>()
  /** Secrets created through the API (bootstrap tokens of `kubeadm token create` / `k0s token create`), by ns/name. */
  readonly storedSecrets = new Map<string, { object: Record<string, unknown>; resourceVersion: number }>()
  /** The cluster CA (PEM) its clients trust: kube-public/cluster-info publishes it for `kubeadm join`. */
  caPem?: string
  private rv = 1
  private podSeq = 0
  private timers = new Set<NodeJS.Timeout>()
  private stopped = false
  /** pdb-blocks-drain: the PDB it tightened and its original settings (fault-effects.ts). */
  tightened?: { key: string; minAvailable?: number | string; maxUnavailable?: number | string }
  /** Runs pods created through the API on the nodes (set by the lab when it has nodes; without, they stay Pending). */
  kubelet?: BarePodKubelet

  constructor(readonly topology: ClusterTopology, readonly timing: ClusterTiming) {
    super()
    this.info = { name: topology.name, distribution: topology.distribution, apiAddress: topology.apiAddress, apiPort: topology.apiPort, createdAt: new Date(Date.now() - 30 * 86400_000) }
    this.build()
  }

  get distribution(): Distribution {
    return this.info.distribution
  }

  /** The next resourceVersion; every stored change takes one, so list resourceVersions only grow. */
  nextRv(): number {
    return ++this.rv
  }
  get resourceVersion(): number {
    return this.rv
  }

  // ---------------------------------------------------------------- building

  private build(): void {
    const t = this.topology
    const created = this.info.createdAt
    t.nodes.forEach((n, index) => {
      // Every node joined once, with the password lab nodes keep in /etc/rancher/node/password (node/layout.ts).
      if (this.distribution === 'k3s') this.nodePasswords.set(n.name, nodePasswordHash(this.info.name, n.name, initialNodePassword(n.name)))
      this.nodes.set(n.name, {
        uid: randomUUID(), name: n.name, role: n.role, index, address: n.address, createdAt: created, os: n.os, iptables: n.iptables, arch: n.arch,
        kubeletVersion: n.version, controlPlaneVersion: n.controlPlaneVersion, isNode: n.kubelet, runsKubelet: n.kubelet, kubeletActive: true, ready: { ...READY, since: created }, heartbeat: new Date(),
        unschedulable: false, cpuMilli: n.cpuMilli, memoryBytes: n.memoryBytes, labels: {}, annotations: {},
      })
    })
    const w = t.workloads
    for (const d of w.deployments) {
      this.addDeployment({ name: d.name, namespace: d.namespace, replicas: d.replicas, cpuMilli: parseCpu(d.requests.cpu)!, memoryBytes: parseBytes(d.requests.memory)!, emptyDir: d.emptyDir, image: `registry.example/${d.name}:1.0`, kind: 'workload', tolerateControlPlane: false })
      if (d.pdb) this.addPdb({ name: d.name, namespace: d.namespace, app: d.name, minAvailable: d.pdb.minAvailable, maxUnavailable: d.pdb.maxUnavailable })
    }
    if (w.coredns.replicas > 0) {
      this.addDeployment({ name: 'coredns', namespace: 'kube-system', replicas: w.coredns.replicas, cpuMilli: 100, memoryBytes: 70 * 1024 ** 2, emptyDir: false, image: 'registry.k8s.io/coredns/coredns:v1.11.1', kind: 'coredns', tolerateControlPlane: true })
    }
    // k3s runs kube-proxy inside the k3s process; k0s and kubeadm run it as a DaemonSet (facts §2.7).
    if (this.distribution !== 'k3s') this.addDaemonSet({ name: 'kube-proxy', namespace: 'kube-system', cpuMilli: 0, memoryBytes: 0, kind: 'kube-proxy' })
    for (const ds of w.daemonSets) this.addDaemonSet({ name: ds.name, namespace: ds.namespace, cpuMilli: parseCpu(ds.requests.cpu)!, memoryBytes: parseBytes(ds.requests.memory)!, kind: 'daemonset' })
    if (this.distribution === 'kubeadm') {
      // kubeadm's control plane runs as static pods; the API shows their mirror pods, which drain skips.
      for (const n of this.nodes.values()) {
        if (n.role !== 'control-plane') continue
        for (const c of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler']) this.addStaticPod(c, n)
      }
    }
    this.reconcile()
    this.pinKubeProxyPods()
    // The cluster has been running for a while: its first pods are as old as it is (AGE in kubectl get pods).
    for (const p of this.pods.values()) {
      p.createdAt = this.info.createdAt
      if (p.startedAt) p.startedAt = this.info.createdAt
    }
    this.events.length = 0
  }

  private addDeployment(d: Omit<DeploymentState, 'uid' | 'hash' | 'createdAt'>): void {
    const hash = createHash('sha1').update(`${this.info.name}/${d.namespace}/${d.name}`).digest('hex').slice(0, 10).replace(/[0-9]/g, (c) => 'bcdfghjklm'[Number(c)]!)
    this.deployments.set(`${d.namespace}/${d.name}`, { ...d, uid: randomUUID(), hash, createdAt: this.info.createdAt })
  }

  private addDaemonSet(d: Omit<DaemonSetState, 'uid' | 'createdAt'>): void {
    this.daemonSets.set(`${d.namespace}/${d.name}`, { ...d, uid: randomUUID(), createdAt: this.info.createdAt })
  }

  addPdb(p: Omit<PdbState, 'uid' | 'createdAt'>): void {
    this.pdbs.set(`${p.namespace}/${p.name}`, { ...p, uid: randomUUID(), createdAt: new Date() })
    this.nextRv()
  }

  private addStaticPod(component: string, node: NodeState): void {
    const name = `${component}-${node.name}`
    this.pods.set(`kube-system/${name}`, {
      uid: randomUUID(), name, namespace: 'kube-system', kind: 'static', labels: { component, tier: 'control-plane' },
      annotations: { 'kubernetes.io/config.mirror': randomUUID().replace(/-/g, ''), 'kubernetes.io/config.source': 'file' },
      owner: { kind: 'Node', name: node.name, uid: node.uid }, app: component, nodeName: node.name, phase: 'Running',
      cpuMilli: 100, memoryBytes: 0, image: `registry.k8s.io/${component}:${node.controlPlaneVersion}`, container: component,
      emptyDir: false, createdAt: this.info.createdAt, startedAt: this.info.createdAt, ip: node.address, resourceVersion: this.nextRv(),
    })
  }

  // ---------------------------------------------------------------- derived state

  /** The Node objects: every machine that runs a kubelet (not a k0s controller without --enable-worker). */
  kubeNodes(): NodeState[] {
    return [...this.nodes.values()].filter((n) => n.isNode)
  }

  /** The control-plane version `/version` reports: the first control-plane node whose service runs (LB order). */
  get apiServerVersion(): string {
    const cps = [...this.nodes.values()].filter((n) => n.role === 'control-plane')
    return (cps.find((n) => n.kubeletActive) ?? cps[0])!.controlPlaneVersion
  }

  /** kube-proxy's DaemonSet version: kubeadm and k0s move it once every control-plane node runs the new version
   *  (facts §0.5); under kube-proxy-skew it lags one minor behind. */
  get kubeProxyVersion(): string {
    const cps = [...this.nodes.values()].filter((n) => n.role === 'control-plane').map((n) => n.controlPlaneVersion)
    let v = cps.sort(comparePlain)[0]!
    // A topology that starts mid-rollout: the DaemonSet template is at least as new as its newest pinned pod.
    const pinned = this.topology.nodes.flatMap((n) => (n.kubeProxyVersion ? [n.kubeProxyVersion] : [])).sort(comparePlain).at(-1)
    if (pinned && comparePlain(pinned, v) > 0) v = pinned
    if (!this.hasFault('kube-proxy-skew')) return v
    const [maj, min] = v.slice(1).split('.').map(Number)
    return `v${maj}.${Math.max(0, min! - 1)}.0`
  }

  taintsOf(n: NodeState): { key: string; effect: string; timeAdded?: string }[] {
    const t: { key: string; effect: string; timeAdded?: string }[] = []
    if (n.role === 'control-plane' && this.distribution !== 'k3s') t.push({ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' })
    if (n.unschedulable) t.push({ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule', timeAdded: n.ready.since.toISOString() })
    if (n.ready.status === 'False') t.push({ key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' })
    if (n.ready.status === 'Unknown') t.push({ key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule' })
    if (this.hasFault('disk-full', n.name)) t.push({ key: 'node.kubernetes.io/disk-pressure', effect: 'NoSchedule' })
    return t
  }

  /** Pod readiness as the endpoints controller sees it: running for the pod start delay, not terminating, node
   *  Ready, container not crashing. */
  podReady(p: PodState): boolean {
    if (p.phase !== 'Running' || p.deletionTimestamp) return false
    if (!startedLongEnough(p, this.timing.podStartDelayMs ?? 0)) return false
    const n = p.nodeName ? this.nodes.get(p.nodeName) : undefined
    if (!n || n.ready.status !== 'True') return false
    return !(p.kind === 'coredns' && this.hasFault('coredns-crashloop'))
  }

  hasFault(fault: FaultName, node?: string): boolean {
    for (const f of this.faults.values()) if (f.fault === fault && (!f.node || f.node === node || node === undefined)) return true
    return false
  }
  /** A certificate fault the API's serving certificate has: the cluster's, or a control-plane node's (a worker's
   *  certificates are its kubelet's own). */
  servingCertFault(fault: 'cert-expired' | 'cert-expiring'): boolean {
    for (const f of this.faults.values()) if (f.fault === fault && (!f.node || this.nodes.get(f.node)?.role === 'control-plane')) return true
    return false
  }
  /** True when the fault is on cluster-wide (no node), as opposed to on one node only. */
  hasClusterFault(fault: FaultName): boolean {
    for (const f of this.faults.values()) if (f.fault === fault && !f.node) return true
    return false
  }
  faultSince(fault: FaultName, node?: string): Date | undefined {
    let since: Date | undefined
    for (const f of this.faults.values()) {
      if (f.fault === fault && (!f.node || f.node === node) && (!since || f.since < since)) since = f.since
    }
    return since
  }

  // ---------------------------------------------------------------- controllers

  /** Run the controllers to a fixed point: Deployments and DaemonSets create pods, the scheduler places them. */
  reconcile(): void {
    if (this.stopped) return
    for (const d of this.deployments.values()) {
      const live = [...this.pods.values()].filter((p) => p.namespace === d.namespace && p.app === d.name && p.owner?.kind === 'ReplicaSet' && !p.deletionTimestamp)
      for (let i = live.length; i < d.replicas; i++) this.createPod(d.kind, d.namespace, `${d.name}-${d.hash}-${suffix()}`, d.name, { kind: 'ReplicaSet', name: `${d.name}-${d.hash}`, uid: replicaSetUid(d) }, d.cpuMilli, d.memoryBytes, d.image, d.name, d.emptyDir)
      for (const extra of live.slice(d.replicas)) this.removePod(extra)
    }
    for (const ds of this.daemonSets.values()) {
      for (const n of this.kubeNodes()) {
        const has = [...this.pods.values()].some((p) => p.namespace === ds.namespace && p.app === ds.name && p.nodeName === n.name && !p.deletionTimestamp)
        if (has) continue
        const image = ds.kind === 'kube-proxy' ? this.kubeProxyImage() : `registry.example/${ds.name}:1.0`
        const p = this.createPod(ds.kind, ds.namespace, `${ds.name}-${suffix()}`, ds.name, { kind: 'DaemonSet', name: ds.name, uid: ds.uid }, ds.cpuMilli, ds.memoryBytes, image, ds.name, false)
        // The DaemonSet controller binds its pods itself and tolerates every taint, cordon included.
        this.bind(p, n)
      }
    }
    this.schedulePending()
    this.kubelet?.sync()
  }

  /** A topology half-way through an upgrade: each node's kube-proxy pod at the version the topology gives it. */
  private pinKubeProxyPods(): void {
    for (const n of this.topology.nodes) {
      if (!n.kubeProxyVersion) continue
      const p = [...this.pods.values()].find((x) => x.kind === 'kube-proxy' && x.nodeName === n.name)
      if (p) p.image = p.image.replace(/:[^:]+$/, `:${n.kubeProxyVersion}`)
    }
  }

  kubeProxyImage(): string {
    const repo = this.distribution === 'k0s' ? 'quay.io/k0sproject/kube-proxy' : 'registry.k8s.io/kube-proxy'
    return `${repo}:${this.kubeProxyVersion}`
  }

  private createPod(kind: PodKind, namespace: string, name: string, app: string, owner: PodState['owner'], cpuMilli: number, memoryBytes: number, image: string, container: string, emptyDir: boolean): PodState {
    const labels: Record<string, string> = kind === 'coredns' ? { 'k8s-app': 'kube-dns' } : kind === 'kube-proxy' ? { 'k8s-app': 'kube-proxy' } : { app }
    if (owner?.kind === 'ReplicaSet') labels['pod-template-hash'] = owner.name.slice(app.length + 1)
    const p: PodState = {
      uid: randomUUID(), name, namespace, kind, labels, annotations: {}, owner, app, phase: 'Pending', cpuMilli, memoryBytes,
      image, container, emptyDir, createdAt: new Date(), resourceVersion: this.nextRv(),
    }
    this.pods.set(`${namespace}/${name}`, p)
    return p
  }

  private bind(p: PodState, n: NodeState): void {
    p.nodeName = n.name
    p.phase = 'Running'
    p.startedAt = new Date()
    p.ip = this.podIp(n)
    p.resourceVersion = this.nextRv()
    this.whenStarted(p)
    this.event({ kind: 'Pod', name: p.name, namespace: p.namespace, uid: p.uid }, 'Normal', 'Scheduled', `Successfully assigned ${p.namespace}/${p.name} to ${n.name}`, 'default-scheduler')
  }

  /** The pod turns Ready after the start delay (podReady): a new resourceVersion then, so watches and PDBs see it. */
  private whenStarted(p: PodState): void {
    const delay = this.timing.podStartDelayMs ?? 0
    if (delay <= 0 || p.kind === 'bare' || p.kind === 'static') return
    this.later(delay, () => {
      if (this.pods.get(`${p.namespace}/${p.name}`) !== p || p.deletionTimestamp) return
      p.resourceVersion = this.nextRv()
      this.reconcile()
    })
  }

  private podIp(n: NodeState): string {
    const base = this.distribution === 'k3s' ? '10.42' : '10.244'
    this.podSeq = (this.podSeq % 250) + 1
    return `${base}.${n.index}.${this.podSeq + 1}`
  }

  private schedulePending(): void {
    for (const p of this.pods.values()) {
      if (p.phase !== 'Pending' || p.nodeName || p.deletionTimestamp) continue
      if (p.bare) {
        this.scheduleBare(p, p.bare.spec)
        continue
      }
      const d = this.deployments.get(`${p.namespace}/${p.app}`)
      const r = schedulePod(this, p, { tolerations: d ? deploymentTolerations(d) : [], nodeSelector: {} })
      if ('node' in r) {
        this.bind(p, r.node)
      } else {
        this.event({ kind: 'Pod', name: p.name, namespace: p.namespace, uid: p.uid }, 'Warning', 'FailedScheduling', r.message, 'default-scheduler')
      }
    }
  }

  // ---------------------------------------------------------------- API-driven changes

  /** cordon / uncordon (and label/annotation merges from the same PATCH). Returns whether anything changed. */
  patchNode(name: string, patch: { unschedulable?: boolean | null; labels?: Record<string, string | null>; annotations?: Record<string, string | null> }): NodeState | undefined {
    const n = this.nodes.get(name)
    if (!n?.isNode) return undefined
    if (patch.unschedulable !== undefined) {
      const want = patch.unschedulable === true
      if (want !== n.unschedulable) {
        n.unschedulable = want
        this.event({ kind: 'Node', name, uid: n.uid }, 'Normal', want ? 'NodeNotSchedulable' : 'NodeSchedulable', `Node ${name} status is now: ${want ? 'NodeNotSchedulable' : 'NodeSchedulable'}`, 'kubelet')
        if (want) this.emit('trigger', 'node-cordoned' satisfies FaultTrigger, name)
      }
    }
    for (const [field, target] of [[patch.labels, n.labels], [patch.annotations, n.annotations]] as const) {
      for (const [k, v] of Object.entries(field ?? {})) {
        if (v === null) delete target[k]
        else target[k] = v
      }
    }
    this.nextRv()
    this.reconcile()
    return n
  }

  /** The Eviction API: PDB-checked graceful delete. 404 when gone, 429 when a PDB forbids it, 500 for two PDBs. */
  evict(namespace: string, name: string): { code: 201 } | { code: 404 | 429 | 500; message: string; reason: string } {
    const p = this.pods.get(`${namespace}/${name}`)
    if (!p) return { code: 404, reason: 'NotFound', message: `pods "${name}" not found` }
    if (p.phase === 'Succeeded' || p.phase === 'Failed' || p.deletionTimestamp) {
      this.deletePod(namespace, name)
      return { code: 201 }
    }
    const matching = [...this.pdbs.values()].filter((b) => b.namespace === namespace && b.app === p.app && p.owner?.kind !== 'DaemonSet')
    if (matching.length > 1) return { code: 500, reason: 'InternalError', message: 'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.' }
    const pdb = matching[0]
    if (pdb && this.podReady(p) && pdbStatus(this, pdb).disruptionsAllowed <= 0) {
      return { code: 429, reason: 'TooManyRequests', message: 'Cannot evict pod as it would violate the pod\'s disruption budget.' }
    }
    this.deletePod(namespace, name)
    return { code: 201 }
  }

  /** Graceful delete: the pod is Terminating for the drain eviction delay, then gone; controllers replace it at once. */
  deletePod(namespace: string, name: string): PodState | undefined {
    const p = this.pods.get(`${namespace}/${name}`)
    if (!p) return undefined
    if (!p.deletionTimestamp) {
      p.deletionTimestamp = new Date()
      p.resourceVersion = this.nextRv()
      if (p.nodeName) this.event({ kind: 'Pod', name, namespace, uid: p.uid }, 'Normal', 'Killing', `Stopping container ${p.container}`, 'kubelet')
      const gone = p.phase !== 'Running' || !p.nodeName ? 0 : this.timing.drainEvictionDelayMs
      this.later(gone, () => this.removePod(p))
      this.reconcile()
    }
    return p
  }

  private removePod(p: PodState): void {
    if (this.pods.get(`${p.namespace}/${p.name}`) !== p) return
    this.pods.delete(`${p.namespace}/${p.name}`)
    this.nextRv()
    this.reconcile()
  }

  /** A pod created through the API: placed by `spec.nodeName` (no scheduler, as in Kubernetes) or by the scheduler;
   *  it stays Pending until a kubelet runs it (pods/kubelet.ts). */
  createBarePod(namespace: string, name: string, spec: BarePodSpec, raw: Record<string, unknown>, labels: Record<string, string>): PodState | 'exists' {
    if (this.pods.has(`${namespace}/${name}`)) return 'exists'
    const p = this.createPod('bare', namespace, name, name, undefined, spec.cpuMilli, spec.memoryBytes, spec.image, spec.container, false)
    p.labels = labels
    p.spec = raw
    p.bare = { spec, log: '', restartCount: 0 }
    if (spec.nodeName) {
      p.nodeName = spec.nodeName
      // A name without a Node object (k0s controller without a worker): no kubelet there, the pod stays Pending.
      const n = this.nodes.get(spec.nodeName)?.isNode ? this.nodes.get(spec.nodeName) : undefined
      if (n) p.ip = this.podIp(n)
      // The kubelet there admits it or rejects it (resources, nodeSelector), as kubelet admission does.
      const rejected = n ? admitBarePod(this, p, spec, n) : undefined
      if (rejected) {
        p.phase = 'Failed'
        p.bare.rejected = rejected
        this.event({ kind: 'Pod', name, namespace, uid: p.uid }, 'Warning', rejected.reason, rejected.message, 'kubelet')
      }
    }
    this.reconcile()
    return p
  }

  /** The scheduler's decision for a bare pod: bind it, or record why nothing fits (retried on every reconcile). */
  private scheduleBare(p: PodState, spec: BarePodSpec): void {
    const r = schedulePod(this, p, spec)
    if ('message' in r) {
      this.event({ kind: 'Pod', name: p.name, namespace: p.namespace, uid: p.uid }, 'Warning', 'FailedScheduling', r.message, 'default-scheduler')
      return
    }
    p.nodeName = r.node.name
    p.ip = this.podIp(r.node)
    p.resourceVersion = this.nextRv()
    this.event({ kind: 'Pod', name: p.name, namespace: p.namespace, uid: p.uid }, 'Normal', 'Scheduled', `Successfully assigned ${p.namespace}/${p.name} to ${r.node.name}`, 'default-scheduler')
  }

  // ---------------------------------------------------------------- node side (LabNode events)

  /** The node's service stopped: the kubelet stops posting status (and a control-plane node's apiserver stops). */
  serviceStopped(nodeName: string): void {
    const n = this.nodes.get(nodeName)
    if (!n) return
    this.kubeletSilent(n)
    this.reconcile()
  }

  /** The kubelet stopped posting status: its heartbeat freezes now, and the node lifecycle controller marks the Node
   *  Ready=Unknown only once the node-monitor grace period has passed without a heartbeat (facts §5). */
  private kubeletSilent(n: NodeState): void {
    if (!n.kubeletActive) return
    n.kubeletActive = false
    const last = (n.heartbeat = new Date())
    this.nextRv()
    this.emit('apiservers')
    const unknown = () => {
      if (n.kubeletActive || n.heartbeat !== last) return // posting again, or silent again since a later stop
      this.setReady(n, UNKNOWN)
      this.reconcile()
    }
    const grace = this.timing.nodeMonitorGraceMs ?? 0
    if (grace > 0) this.later(grace, unknown)
    else unknown()
  }

  /** The node's service started running `version`: the kubelet registers it at once (creating its Node object when
   *  it was deleted), and Ready follows after the Ready delay (never, under node-not-ready-after-upgrade).
   *  `refused`: the service runs but its kubelet never gets to post status (a k3s agent whose node password the
   *  server rejected): no registration, no heartbeat. */
  serviceStarted(nodeName: string, version: string, opts: { keepNotReady?: boolean; refused?: boolean } = {}): void {
    const n = this.nodes.get(nodeName)
    if (!n) return
    if (opts.refused) {
      this.kubeletSilent(n)
      this.reconcile()
      return
    }
    if (!n.isNode && n.runsKubelet) this.registerNode(n)
    const plain = plainVersion(version) ?? n.kubeletVersion
    const upgraded = comparePlain(plain, n.kubeletVersion) > 0
    n.kubeletVersion = plain
    if (this.distribution !== 'kubeadm') n.controlPlaneVersion = plain
    n.kubeletActive = true
    n.heartbeat = new Date()
    this.kubeletBooted(n)
    this.setReady(n, NOT_READY_CNI)
    this.emit('apiservers')
    // A lab node says whether this start is stuck (the fault follows the version); a fleet alone keeps every start stuck.
    const stuck = opts.keepNotReady ?? this.hasFault('node-not-ready-after-upgrade', nodeName)
    if (!stuck) {
      const started = n.ready.since
      this.later(this.timing.readyDelayMs, () => {
        // A later stop or restart supersedes this one.
        if (n.kubeletActive && n.ready.since === started) {
          this.setReady(n, READY)
          this.reconcile()
        }
      })
    }
    this.refreshStaticPods(n)
    this.reconcile()
    this.emit('trigger', 'service-restarted' satisfies FaultTrigger, nodeName)
    if (upgraded) this.emit('trigger', 'node-upgraded' satisfies FaultTrigger, nodeName)
  }

  /** The kubelet's registration (kubelet_node_status.go registerWithAPIServer): a start whose Node object is gone
   *  creates a new one: a new uid and creationTimestamp, schedulable, only the labels the kubelet (and, for k3s, the
   *  k3s agent) sets itself; whatever was cordoned, labelled or annotated on the old object is gone with it. */
  private registerNode(n: NodeState): void {
    n.isNode = true
    n.uid = randomUUID()
    n.createdAt = new Date()
    n.unschedulable = false
    n.labels = {}
    n.annotations = {}
    delete n.allocatableOverride
    this.nextRv()
    this.event({ kind: 'Node', name: n.name, uid: n.uid }, 'Normal', 'RegisteredNode', `Node ${n.name} event: Registered Node ${n.name} in Controller`, 'node-controller')
    // kubeadm's static control plane: the kubelet recreates the mirror pods of its manifests.
    if (this.distribution === 'kubeadm' && n.role === 'control-plane') {
      for (const c of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler']) if (!this.pods.has(`kube-system/${c}-${n.name}`)) this.addStaticPod(c, n)
    }
  }

  /** `kubectl delete node NAME`: the Node object goes (and with it its Lease, which it owns). The pod garbage
   *  collector then deletes the pods bound to it (podgc gcOrphaned: force deletion, no grace), k3s's node controller
   *  its node-password Secret. A kubelet that keeps running does not register again: only its next start does.
   *  Returns the deleted object as the API renders it, or undefined when there is no such Node. */
  deleteNode(name: string, render: (n: NodeState) => Record<string, unknown>): Record<string, unknown> | undefined {
    const n = this.nodes.get(name)
    if (!n?.isNode) return undefined
    const rendered = render(n)
    n.isNode = false
    this.nextRv()
    this.nodePasswords.delete(name)
    for (const p of [...this.pods.values()]) if (p.nodeName === name) this.removePod(p)
    this.event({ kind: 'Node', name, uid: n.uid }, 'Normal', 'RemovingNode', `Node ${name} event: Removing Node ${name} from Controller`, 'node-controller')
    this.emit('node-deleted', name)
    this.emit('apiservers')
    this.reconcile()
    return rendered
  }

  /** k3s: the server's check of an agent's node password (pkg/nodepassword): the first agent of a name stores its
   *  password's hash in `<node>.node-password.k3s`; a later agent of that name must present the same password. */
  checkNodePassword(name: string, password: string): 'ok' | 'rejected' {
    const hash = nodePasswordHash(this.info.name, name, password)
    const stored = this.nodePasswords.get(name)
    if (stored === undefined) {
      this.nodePasswords.set(name, hash)
      this.nextRv()
      return 'ok'
    }
    return stored === hash ? 'ok' : 'rejected'
  }

  /** kubeadm: `kubeadm upgrade apply VERSION` (first control-plane node) or `kubeadm upgrade node` (the others) moved
   *  this node's static control-plane pods to `version`; the kubelet keeps its version until its package is upgraded. */
  controlPlaneUpgraded(nodeName: string, version: string): void {
    const n = this.nodes.get(nodeName)
    const plain = plainVersion(version)
    if (!n || !plain || n.role !== 'control-plane') return
    n.controlPlaneVersion = plain
    this.nextRv()
    this.refreshStaticPods(n)
    this.reconcile()
  }

  /** kubeadm: the kubelet now runs the static control plane its manifests name (`version`), crash-looping when
   *  `failing` says why; the API is not served from this node meanwhile. */
  staticControlPlane(nodeName: string, version: string, failing?: string): void {
    const n = this.nodes.get(nodeName)
    const plain = plainVersion(version)
    if (!n || !plain || n.role !== 'control-plane') return
    n.controlPlaneVersion = plain
    if (failing) n.apiserverFailing = failing
    else delete n.apiserverFailing
    this.nextRv()
    this.refreshStaticPods(n)
    this.emit('apiservers')
    this.reconcile()
  }

  /** A reboot: down, the kubelet goes silent; up, the node has a new boot ID (and the kernel it booted, which an
   *  OS update staged before the reboot may have changed), which the kubelet reports once it runs again. */
  rebootPhase(nodeName: string, phase: 'down' | 'up', booted: { kernel?: string; bootId?: string } = {}): void {
    const n = this.nodes.get(nodeName)
    if (!n) return
    if (phase === 'down') {
      n.nextBootId = booted.bootId ?? randomUUID()
      this.kubeletSilent(n)
      if (n.isNode) this.event({ kind: 'Node', name: n.name, uid: n.uid }, 'Warning', 'Rebooted', `Node ${n.name} has been rebooted, boot id: ${n.nextBootId}`, 'kubelet')
      this.reconcile()
    } else {
      // The Node shows the new boot only once its kubelet runs and posts status: until then it is the old boot's
      // (a client that waits for the new bootID and Ready must not pass on the stale Ready before the kubelet is back).
      n.bootPending = { bootId: booted.bootId ?? n.nextBootId ?? randomUUID(), ...(booted.kernel ? { kernel: booted.kernel } : {}) }
      if (n.kubeletActive) this.kubeletBooted(n)
      this.emit('trigger', 'node-rebooted' satisfies FaultTrigger, nodeName)
    }
  }

  private kubeletBooted(n: NodeState): void {
    if (!n.bootPending) return
    n.bootId = n.bootPending.bootId
    if (n.bootPending.kernel) n.kernel = n.bootPending.kernel
    delete n.bootPending
    this.nextRv()
  }

  /** The boot id a node machine runs with (its /proc/sys/kernel/random/boot_id), which its kubelet reports. */
  bootedWith(nodeName: string, bootId: string): void {
    const n = this.nodes.get(nodeName)
    if (!n || n.bootId === bootId) return
    n.bootId = bootId
    this.nextRv()
  }

  private refreshStaticPods(n: NodeState): void {
    for (const p of this.pods.values()) {
      if (p.kind === 'static' && p.nodeName === n.name) {
        p.image = p.image.replace(/:[^:]+$/, `:${n.controlPlaneVersion}`)
        p.resourceVersion = this.nextRv()
      }
    }
    this.rollKubeProxy()
  }

  /** kube-proxy DaemonSet pods follow the DaemonSet's image: replace those whose image is stale (a rolling update).
   *  The old pods are deleted as the DaemonSet controller deletes them, gracefully: Terminating, not Ready, until their
   *  kubelet has stopped them, beside their replacements. A snapshot first: replacing a pod adds new ones to the map. */
  rollKubeProxy(): void {
    if (this.distribution === 'k3s') return
    const image = this.kubeProxyImage()
    const stale = [...this.pods.values()].filter((p) => p.kind === 'kube-proxy' && p.image !== image && !p.deletionTimestamp)
    for (const p of stale) this.deletePod(p.namespace, p.name)
  }

  private setReady(n: NodeState, r: { status: NodeState['ready']['status']; reason: string; message: string }): void {
    if (n.isNode && n.ready.status !== r.status) {
      const ready = r.status === 'True'
      this.event({ kind: 'Node', name: n.name, uid: n.uid }, 'Normal', ready ? 'NodeReady' : 'NodeNotReady', `Node ${n.name} status is now: ${ready ? 'NodeReady' : 'NodeNotReady'}`, ready ? 'kubelet' : 'node-controller')
    }
    n.ready = { ...r, since: new Date() }
    // Unknown is the node controller's verdict on a silent kubelet: the last heartbeat stays the kubelet's last one.
    if (r.status !== 'Unknown') n.heartbeat = new Date()
    this.nextRv()
  }

  // ---------------------------------------------------------------- faults

  setFault(spec: FaultSpec, on: boolean): void {
    const key = faultKey(spec)
    if (on === this.faults.has(key)) return
    if (on) this.faults.set(key, { ...spec, since: new Date() })
    else this.faults.delete(key)
    if (FAULTS[spec.fault].cluster) applyClusterFault(this, spec, on)
    this.nextRv()
    this.reconcile()
    this.emit('faults')
  }

  // ---------------------------------------------------------------- events, leases

  event(involved: EventState['involved'], type: EventState['type'], reason: string, message: string, component: string): void {
    const ns = involved.namespace ?? 'default'
    const same = this.events.findLast((e) => e.involved.name === involved.name && e.involved.kind === involved.kind && e.reason === reason && e.message === message)
    const now = new Date()
    if (same) {
      same.count++
      same.last = now
      same.resourceVersion = this.nextRv()
      return
    }
    this.events.push({
      uid: randomUUID(), name: `${involved.name}.${(now.getTime() * 1000 + this.events.length).toString(16)}`, namespace: ns, involved,
      reason, message, type, count: 1, first: now, last: now, component, resourceVersion: this.nextRv(),
    })
    // Bounded, like the apiserver's event TTL: an event storm must not grow the lab's memory without limit.
    if (this.events.length > 2000) this.events.splice(0, this.events.length - 2000)
  }

  putLease(l: LeaseState): void {
    this.leases.set(`${l.namespace}/${l.name}`, l)
  }

  /** A datastore restored from a snapshot: its Leases, at the resourceVersions they had then (datastore-snapshots.ts). */
  restoreLeases(leases: LeaseState[]): void {
    this.leases.clear()
    for (const l of leases) this.putLease(l)
    this.nextRv()
  }

  // ---------------------------------------------------------------- lifecycle

  later(ms: number, fn: () => void): void {
    if (this.stopped) return
    const t = setTimeout(() => {
      this.timers.delete(t)
      if (!this.stopped) fn()
    }, ms)
    this.timers.add(t)
  }

  stop(): void {
    this.stopped = true
    this.kubelet?.stopAll()
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }
}

/** Controller pods pass their readiness probe `delayMs` after they started; static and bare pods have none here. */
function startedLongEnough(p: PodState, delayMs: number): boolean {
  if (delayMs <= 0 || p.kind === 'bare' || p.kind === 'static' || !p.startedAt) return true
  return Date.now() - p.startedAt.getTime() >= delayMs
}

/** The password a lab k3s node joined with: the one its root carries in /etc/rancher/node/password at first start. */
export function initialNodePassword(node: string): string {
  return createHash('sha256').update(node).digest('hex').slice(0, 32)
}

/** What the node-password Secret stores (k3s keeps a salted hash, never the password). */
function nodePasswordHash(cluster: string, node: string, password: string): string {
  return createHash('sha256').update(`${cluster}/${node}/${password.trim()}`).digest('hex')
}

const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789'
const suffix = (): string => Array.from({ length: 5 }, () => ALPHABET[Math.floor(Math.random() * ALPHABET.length)]).join('')
