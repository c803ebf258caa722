import { createHash } from 'node:crypto'
import type { ClusterModel } from './cluster.js'
import { bareContainerStatuses } from '../pods/render.js'
import { pdbStatus } from './pdb.js'
import { deploymentTolerations, podTolerations } from './tolerations.js'
import { allocatable } from './allocatable.js'
import { formatBytes, formatCpu } from '../quantity.js'
import { kubeletVersion } from '../versions.js'
import { kernelsOf } from '../node/os-release.js'
import type { DaemonSetState, DeploymentState, EventState, NodeState, PdbState, PodState } from './types.js'

/**
 * The cluster model as Kubernetes API objects (core/v1, apps/v1, policy/v1, events). Field names and shapes follow the
 * real API so kubectl's printers, jsonpath and kupgrade's own parsers see what a real cluster would send.
 */
type Obj = Record<string, unknown>
const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z')

// The kernel is the node's own (node/os-release.ts kernelsOf, what `uname -r` prints there).
const OS_IMAGE: Record<NodeState['os'], { image: string }> = {
  'ubuntu-22.04': { image: 'Ubuntu 22.04.4 LTS' },
  'debian-12': { image: 'Debian GNU/Linux 12 (bookworm)' },
  'rocky-9': { image: 'Rocky Linux 9.4 (Blue Onyx)' },
  flatcar: { image: 'Flatcar Container Linux by Kinvolk 3815.2.2 (Oklo)' },
}

export function nodeRoles(m: ClusterModel, n: NodeState): string[] {
  if (n.role !== 'control-plane') return []
  // k3s labels a server etcd only when it runs embedded etcd (not on SQLite or an external datastore).
  if (m.distribution === 'k3s') return m.topology.datastore === 'sqlite' ? ['control-plane', 'master'] : ['control-plane', 'etcd', 'master']
  return ['control-plane']
}

export function renderNode(m: ClusterModel, n: NodeState): Obj {
  const labels: Record<string, string> = {
    'beta.kubernetes.io/arch': n.arch, 'beta.kubernetes.io/os': 'linux', 'kubernetes.io/arch': n.arch,
    'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux', ...n.labels,
  }
  for (const r of nodeRoles(m, n)) labels[`node-role.kubernetes.io/${r}`] = m.distribution === 'k3s' ? 'true' : ''
  if (m.distribution === 'k3s') labels['node.kubernetes.io/instance-type'] = 'k3s'
  const a = allocatable(n)
  const hb = iso(n.kubeletActive ? new Date() : n.heartbeat)
  const diskFull = m.hasFault('disk-full', n.name)
  const pressure = (type: string, on: boolean, reason: string, message: string) => ({
    type, status: on ? 'True' : 'False', lastHeartbeatTime: hb, lastTransitionTime: iso(n.createdAt), reason, message,
  })
  const version = kubeletVersion(m.distribution, n.kubeletVersion)
  const spec: Obj = { podCIDR: `${m.distribution === 'k3s' ? '10.42' : '10.244'}.${n.index}.0/24` }
  if (n.unschedulable) spec.unschedulable = true
  const taints = m.taintsOf(n)
  if (taints.length) spec.taints = taints
  return {
    kind: 'Node', apiVersion: 'v1',
    metadata: {
      name: n.name, uid: n.uid, resourceVersion: String(m.resourceVersion), creationTimestamp: iso(n.createdAt), labels,
      annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'volumes.kubernetes.io/controller-managed-attach-detach': 'true', ...n.annotations },
    },
    spec,
    status: {
      capacity: { cpu: formatCpu(n.cpuMilli), memory: formatBytes(n.memoryBytes), pods: '110', 'ephemeral-storage': formatBytes(m.topology.nodes[n.index]!.diskBytes) },
      allocatable: { cpu: formatCpu(a.cpuMilli), memory: formatBytes(a.memoryBytes), pods: '110', 'ephemeral-storage': formatBytes(m.topology.nodes[n.index]!.diskBytes) },
      conditions: [
        pressure('MemoryPressure', false, 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
        pressure('DiskPressure', diskFull, diskFull ? 'KubeletHasDiskPressure' : 'KubeletHasNoDiskPressure', diskFull ? 'kubelet has disk pressure' : 'kubelet has no disk pressure'),
        pressure('PIDPressure', false, 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
        { type: 'Ready', status: n.ready.status, lastHeartbeatTime: hb, lastTransitionTime: iso(n.ready.since), reason: n.ready.reason, message: n.ready.message },
      ],
      addresses: [{ type: 'InternalIP', address: n.address }, { type: 'Hostname', address: n.name }],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: n.uid.replace(/-/g, ''), systemUUID: n.uid, bootID: n.bootId ?? n.uid, kernelVersion: n.kernel ?? kernelsOf(n.os, n.arch)[0], osImage: OS_IMAGE[n.os].image,
        containerRuntimeVersion: m.distribution === 'k3s' ? 'containerd://1.7.11-k3s2' : 'containerd://1.7.13',
        kubeletVersion: version,
        // The kubelet wrote its own version here (facts §2.6); empty from 1.33 on.
        kubeProxyVersion: Number(n.kubeletVersion.split('.')[1]) >= 33 ? '' : version,
        operatingSystem: 'linux', architecture: n.arch,
      },
    },
  }
}

function ownerRefs(p: PodState): Obj[] | undefined {
  if (!p.owner) return undefined
  return [{ apiVersion: p.owner.kind === 'Node' ? 'v1' : 'apps/v1', kind: p.owner.kind, name: p.owner.name, uid: p.owner.uid, controller: true, blockOwnerDeletion: p.owner.kind !== 'Node' }]
}

/** Restarts of a crash-looping container grow with time since the fault went on, as CrashLoopBackOff would. */
function crashRestarts(m: ClusterModel, p: PodState): number {
  const since = m.faultSince('coredns-crashloop')
  return since && p.kind === 'coredns' ? 1 + Math.floor((Date.now() - since.getTime()) / 10_000) : 0
}

export function podStatusText(m: ClusterModel, p: PodState): string {
  if (p.deletionTimestamp) return 'Terminating'
  if (p.phase === 'Succeeded') return 'Completed'
  if (p.phase === 'Failed') return 'Error'
  if (p.phase === 'Running' && p.kind === 'coredns' && m.hasFault('coredns-crashloop')) return 'CrashLoopBackOff'
  return p.phase
}

export function podRestarts(m: ClusterModel, p: PodState): number {
  return crashRestarts(m, p)
}

/** Every lab pod's terminationGracePeriodSeconds (the Pod default). */
const GRACE_SECONDS = 30

export function renderPod(m: ClusterModel, p: PodState): Obj {
  const ready = m.podReady(p)
  const crash = p.kind === 'coredns' && m.hasFault('coredns-crashloop') && p.phase === 'Running'
  const started = p.startedAt ? iso(p.startedAt) : undefined
  let state: Obj = { waiting: { reason: 'ContainerCreating' } }
  if (crash) state = { waiting: { reason: 'CrashLoopBackOff', message: `back-off 5m0s restarting failed container=${p.container} pod=${p.name}_${p.namespace}(${p.uid})` } }
  else if (p.phase === 'Running') state = { running: { startedAt: started } }
  else if (p.phase === 'Succeeded' || p.phase === 'Failed') state = { terminated: { exitCode: p.phase === 'Succeeded' ? 0 : 1, reason: p.phase === 'Succeeded' ? 'Completed' : 'Error', startedAt: started, finishedAt: iso(new Date()) } }
  const volumes: Obj[] = p.emptyDir ? [{ name: 'cache', emptyDir: {} }] : []
  const spec: Obj = {
    ...(p.spec ?? {}),
    containers: (p.spec?.containers as Obj[] | undefined) ?? [{ name: p.container, image: p.image, resources: { requests: { cpu: formatCpu(p.cpuMilli), memory: formatBytes(p.memoryBytes) } } }],
    restartPolicy: p.bare ? p.bare.spec.restartPolicy : 'Always',
    terminationGracePeriodSeconds: GRACE_SECONDS,
    tolerations: podTolerations(p, p.owner?.kind === 'ReplicaSet' ? m.deployments.get(`${p.namespace}/${p.app}`) : undefined),
    volumes,
    ...(p.nodeName ? { nodeName: p.nodeName } : {}),
  }
  const conditions: Obj[] = p.nodeName
    ? [
        { type: 'PodScheduled', status: 'True' },
        { type: 'Initialized', status: 'True' },
        { type: 'ContainersReady', status: ready ? 'True' : 'False' },
        { type: 'Ready', status: ready ? 'True' : 'False' },
      ]
    : [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: lastSchedulingMessage(m, p) }]
  const meta: Obj = {
    name: p.name, namespace: p.namespace, uid: p.uid, resourceVersion: String(p.resourceVersion), creationTimestamp: iso(p.createdAt),
    labels: p.labels, annotations: p.annotations,
  }
  const owners = ownerRefs(p)
  if (owners) meta.ownerReferences = owners
  if (p.deletionTimestamp) {
    // The apiserver sets deletionTimestamp to the delete's time plus the grace period: when the pod is due to be gone
    // (apiserver registry/rest BeforeDelete). The lab's kubelet stops it sooner (timing.drainEvictionDelay), as a pod
    // that exits on SIGTERM goes before its grace period ends.
    meta.deletionTimestamp = iso(new Date(p.deletionTimestamp.getTime() + GRACE_SECONDS * 1000))
    meta.deletionGracePeriodSeconds = GRACE_SECONDS
  }
  return {
    kind: 'Pod', apiVersion: 'v1', metadata: meta, spec,
    status: {
      phase: p.phase, conditions,
      ...(p.ip ? { podIP: p.ip, podIPs: [{ ip: p.ip }], hostIP: m.nodes.get(p.nodeName!)?.address } : {}),
      ...(started ? { startTime: started } : {}),
      ...(p.bare?.rejected ? p.bare.rejected : {}),
      containerStatuses: p.bare ? bareContainerStatuses(p) : p.nodeName ? [{ name: p.container, image: p.image, ready, restartCount: crashRestarts(m, p), started: p.phase === 'Running' && !crash, state }] : undefined,
    },
  }
}

function lastSchedulingMessage(m: ClusterModel, p: PodState): string {
  return m.events.findLast((e) => e.involved.name === p.name && e.reason === 'FailedScheduling')?.message ?? ''
}

export function renderDeployment(m: ClusterModel, d: DeploymentState): Obj {
  const pods = [...m.pods.values()].filter((p) => p.namespace === d.namespace && p.app === d.name && p.owner?.kind === 'ReplicaSet' && !p.deletionTimestamp)
  const ready = pods.filter((p) => m.podReady(p)).length
  const selector = d.kind === 'coredns' ? { 'k8s-app': 'kube-dns' } : { app: d.name }
  return {
    kind: 'Deployment', apiVersion: 'apps/v1',
    metadata: { name: d.name, namespace: d.namespace, uid: d.uid, resourceVersion: String(m.resourceVersion), generation: 1, creationTimestamp: iso(d.createdAt), labels: selector },
    spec: {
      replicas: d.replicas, selector: { matchLabels: selector },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
      template: { metadata: { labels: selector }, spec: { containers: [{ name: d.name, image: d.image, resources: { requests: { cpu: formatCpu(d.cpuMilli), memory: formatBytes(d.memoryBytes) } } }], ...(deploymentTolerations(d).length ? { tolerations: deploymentTolerations(d) } : {}) } },
    },
    status: { observedGeneration: 1, replicas: pods.length, updatedReplicas: pods.length, readyReplicas: ready, availableReplicas: ready, unavailableReplicas: Math.max(0, d.replicas - ready) || undefined },
  }
}

export function renderDaemonSet(m: ClusterModel, ds: DaemonSetState): Obj {
  const pods = [...m.pods.values()].filter((p) => p.namespace === ds.namespace && p.app === ds.name && p.owner?.kind === 'DaemonSet' && !p.deletionTimestamp)
  const ready = pods.filter((p) => m.podReady(p)).length
  const image = ds.kind === 'kube-proxy' ? m.kubeProxyImage() : `registry.example/${ds.name}:1.0`
  const updated = pods.filter((p) => p.image === image).length
  const selector = ds.kind === 'kube-proxy' ? { 'k8s-app': 'kube-proxy' } : { app: ds.name }
  return {
    kind: 'DaemonSet', apiVersion: 'apps/v1',
    metadata: { name: ds.name, namespace: ds.namespace, uid: ds.uid, resourceVersion: String(m.resourceVersion), generation: 1, creationTimestamp: iso(ds.createdAt), labels: selector },
    spec: {
      selector: { matchLabels: selector }, updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
      template: { metadata: { labels: selector }, spec: { containers: [{ name: ds.name, image }], tolerations: [{ operator: 'Exists' }] } },
    },
    status: { currentNumberScheduled: pods.length, desiredNumberScheduled: m.kubeNodes().length, numberMisscheduled: 0, numberReady: ready, updatedNumberScheduled: updated, numberAvailable: ready, observedGeneration: 1 },
  }
}

export function renderPdb(m: ClusterModel, b: PdbState): Obj {
  const s = pdbStatus(m, b)
  const selector = m.deployments.get(`${b.namespace}/${b.app}`)?.kind === 'coredns' ? { 'k8s-app': 'kube-dns' } : { app: b.app }
  return {
    kind: 'PodDisruptionBudget', apiVersion: 'policy/v1',
    metadata: { name: b.name, namespace: b.namespace, uid: b.uid, resourceVersion: String(m.resourceVersion), generation: 1, creationTimestamp: iso(b.createdAt) },
    spec: { selector: { matchLabels: selector }, ...(b.minAvailable !== undefined ? { minAvailable: b.minAvailable } : {}), ...(b.maxUnavailable !== undefined ? { maxUnavailable: b.maxUnavailable } : {}) },
    status: {
      observedGeneration: 1, ...s,
      conditions: [{ type: 'DisruptionAllowed', status: s.disruptionsAllowed > 0 ? 'True' : 'False', reason: s.disruptionsAllowed > 0 ? 'SufficientPods' : 'InsufficientPods', message: '', observedGeneration: 1, lastTransitionTime: iso(b.createdAt) }],
    },
  }
}

export function renderEvent(e: EventState): Obj {
  return {
    kind: 'Event', apiVersion: 'v1',
    metadata: { name: e.name, namespace: e.namespace, uid: e.uid, resourceVersion: String(e.resourceVersion), creationTimestamp: iso(e.first) },
    involvedObject: { kind: e.involved.kind, name: e.involved.name, ...(e.involved.namespace ? { namespace: e.involved.namespace } : {}), ...(e.involved.uid ? { uid: e.involved.uid } : {}), apiVersion: e.involved.kind === 'Node' || e.involved.kind === 'Pod' ? 'v1' : undefined },
    reason: e.reason, message: e.message, type: e.type, count: e.count,
    firstTimestamp: iso(e.first), lastTimestamp: iso(e.last), source: { component: e.component }, reportingComponent: e.component, reportingInstance: '',
  }
}

/** kube-node-lease Leases: the kubelet's heartbeat, renewed while its service runs. */
export function renderNodeLease(m: ClusterModel, n: NodeState): Obj {
  return {
    kind: 'Lease', apiVersion: 'coordination.k8s.io/v1',
    metadata: { name: n.name, namespace: 'kube-node-lease', uid: n.uid, resourceVersion: String(m.resourceVersion), creationTimestamp: iso(n.createdAt), ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: n.name, uid: n.uid }] },
    spec: { holderIdentity: n.name, leaseDurationSeconds: 40, renewTime: (n.kubeletActive ? new Date() : n.heartbeat).toISOString().replace('Z', '000Z') },
  }
}

/**
 * k0s: every controller holds `kube-node-lease/k0s-ctrl-<node>` while it runs (k0s pkg/component/controller
 * controllersleasecounter.go: its InvocationID, leader election's 60 s lease, renewed every 5 s) and counts the held
 * ones to know how many controllers there are; k0s stops with ReleaseOnCancel, which leaves the lease with no holder
 * and a 1 s duration. A controller without --enable-worker has no Node: this is where the API shows it.
 */
export function renderK0sControllerLease(m: ClusterModel, n: NodeState): Obj {
  const held = n.kubeletActive
  const micro = (d: Date) => d.toISOString().replace('Z', '000Z')
  const renew = micro(held ? new Date() : n.heartbeat)
  return {
    kind: 'Lease', apiVersion: 'coordination.k8s.io/v1',
    metadata: { name: `k0s-ctrl-${n.name}`, namespace: 'kube-node-lease', uid: `k0s-ctrl-${n.uid}`, resourceVersion: String(m.resourceVersion), creationTimestamp: iso(m.info.createdAt) },
    spec: { holderIdentity: held ? createHash('sha256').update(n.uid).digest('hex') : '', leaseDurationSeconds: held ? 60 : 1, acquireTime: held ? micro(m.info.createdAt) : renew, renewTime: renew, leaseTransitions: 0 },
  }
}

export function renderNamespace(m: ClusterModel, name: string): Obj {
  return {
    kind: 'Namespace', apiVersion: 'v1',
    metadata: { name, uid: `ns-${name}`, resourceVersion: String(m.resourceVersion), creationTimestamp: iso(m.info.createdAt), labels: { 'kubernetes.io/metadata.name': name } },
    spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' },
  }
}

export function namespaces(m: ClusterModel): string[] {
  const s = new Set(['default', 'kube-system', 'kube-public', 'kube-node-lease'])
  for (const p of m.pods.values()) s.add(p.namespace)
  for (const d of m.deployments.values()) s.add(d.namespace)
  for (const d of m.daemonSets.values()) s.add(d.namespace)
  for (const l of m.leases.values()) s.add(l.namespace)
  return [...s].sort()
}

/** The `kubernetes` Service (first IP of the service CIDR, facts §4.5) and CoreDNS's `kube-dns`. */
export function services(m: ClusterModel): Obj[] {
  const k3s = m.distribution === 'k3s'
  const svc = (name: string, namespace: string, ip: string, ports: Obj[], labels: Record<string, string>) => ({
    kind: 'Service', apiVersion: 'v1',
    metadata: { name, namespace, uid: `svc-${namespace}-${name}`, resourceVersion: String(m.resourceVersion), creationTimestamp: iso(m.info.createdAt), labels },
    spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ports, sessionAffinity: 'None' },
    status: { loadBalancer: {} },
  })
  return [
    svc('kubernetes', 'default', k3s ? '10.43.0.1' : '10.96.0.1', [{ name: 'https', port: 443, protocol: 'TCP', targetPort: m.info.apiPort }], { component: 'apiserver', provider: 'kubernetes' }),
    svc('kube-dns', 'kube-system', k3s ? '10.43.0.10' : '10.96.0.10', [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 }, { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 }, { name: 'metrics', port: 9153, protocol: 'TCP', targetPort: 9153 }], { 'k8s-app': 'kube-dns' }),
  ]
}
