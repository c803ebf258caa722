import { isIP } from 'node:net'
import { z } from 'zod'
import { ExitCode, KupgradeError, PlanError } from '../errors.js'
import { FileReadError, MiB, readRegularText } from '../util/read-file.js'
import { formatPath } from '../plan/locate.js'
import { readYamlMapping, type YamlFileKind } from '../plan/yaml-file.js'
import { zodProblems } from '../plan/zod-problems.js'
import { parseDuration } from '../util/duration.js'
import { FAULT_NAMES, FAULT_TRIGGERS } from './faults.js'
import { parseBytes, parseCpu } from './quantity.js'
import { resolvedVersions, skewProblems } from './topology-skew.js'
import { comparePlain, plainVersion } from './versions.js'

/**
 * The lab topology file (`kind: LabTopology`): which clusters and nodes the lab simulates, what runs on them, how slow
 * things are, which versions can be installed, and which faults are on. Validated like a plan: every problem at once,
 * each located to file:line:col. Addresses and ports left out are assigned (clusters 127.0.10.N, nodes 127.0.1x.N).
 */
export const TOPOLOGY_API_VERSION = 'kupgrade.dev/v1alpha1'
export const TOPOLOGY_KIND = 'LabTopology'

const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
const label = (what: string) => z.string().regex(LABEL, `${what} must be a DNS-1123 label (lower-case letters, digits, '-')`)
const duration = () => z.string().refine((s) => parseDuration(s) !== undefined, 'expected a duration such as 500ms, 2s or 1m')
const version = () => z.string().refine((s) => plainVersion(s) !== undefined, 'expected a Kubernetes version such as v1.29.2 (or v1.29.2+k3s1)')
const loopback = () => z.string().refine((s) => isIP(s) === 4 && s.startsWith('127.'), 'expected a loopback IPv4 address (127.x.y.z): the lab never listens elsewhere')
const cpu = () => z.union([z.string(), z.number()]).refine((q) => parseCpu(q) !== undefined, 'expected a CPU quantity such as 500m or 2')
const bytes = () => z.union([z.string(), z.number()]).refine((q) => parseBytes(q) !== undefined, 'expected a size such as 512Mi, 8Gi or 100G')
const port = () => z.number().int().min(1024, 'use a port of 1024 or more (the lab does not need root)').max(65535)

const requests = z.strictObject({ cpu: cpu().default('100m'), memory: bytes().default('128Mi') })

const faultSchema = z.strictObject({
  fault: z.enum(FAULT_NAMES, { error: `expected one of: ${FAULT_NAMES.join(', ')}` }),
  node: z.string().optional().describe('limit the fault to one node of this cluster'),
  params: z.record(z.string(), z.unknown()).optional(),
  when: z
    .strictObject({
      after: z.enum(FAULT_TRIGGERS, { error: `expected one of: ${FAULT_TRIGGERS.join(', ')}` }),
      node: z.string().describe('the node whose event arms the fault'),
    })
    .optional()
    .describe('arm the fault: it switches on when this event happens; without `when` it is on from the start'),
})

const nodeSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'node name must be a DNS-1123 subdomain'),
  role: z.enum(['control-plane', 'worker'], { error: 'expected role control-plane or worker' }),
  address: loopback().optional(),
  sshPort: port().default(2222),
  os: z.enum(['ubuntu-22.04', 'debian-12', 'rocky-9', 'flatcar'], { error: 'expected os ubuntu-22.04, debian-12, rocky-9 or flatcar' }).default('ubuntu-22.04'),
  iptables: z.enum(['nf_tables', 'legacy'], { error: 'expected iptables nf_tables or legacy' }).default('nf_tables'),
  arch: z.enum(['amd64', 'arm64', 'arm'], { error: 'expected arch amd64, arm64 or arm' }).default('amd64')
    .describe("the machine's architecture, in Kubernetes' words (uname -m: x86_64, aarch64, armv7l): release binaries of another architecture do not run there"),
  disk: z.strictObject({ size: bytes().default('100Gi'), free: bytes().default('60Gi') }).default({ size: '100Gi', free: '60Gi' }),
  allocatable: z.strictObject({ cpu: cpu().default('4'), memory: bytes().default('8Gi') }).default({ cpu: '4', memory: '8Gi' }),
  // A cluster half-way through an upgrade (topology-skew.ts checks the combination against the skew policy).
  version: version().optional().describe("this node's kubelet (kubeadm: the kubelet/kubeadm packages) or k3s/k0s binary; default: the cluster's version"),
  apiServerVersion: version().optional().describe('kubeadm control-plane nodes: the static-pod control plane (kube-apiserver …) when it differs from the kubelet'),
  kubeProxyVersion: version().optional().describe("k0s and kubeadm: this node's kube-proxy pod (a DaemonSet rollout in progress)"),
  // Word-split by the stand-ins (lib.sh), so only package-name characters (Debian policy §5.6.1, RPM names alike).
  osUpdates: z.array(z.string().regex(/^[a-z0-9][a-z0-9+._-]*$/, 'expected a package name (lower-case letters, digits, + . _ -)')).optional()
    .describe('packages an OS upgrade of this node installs; a kernel, libc or systemd among them makes the OS ask for a reboot (/var/run/reboot-required, needs-restarting -r). Default: kernel, libc and openssl (Flatcar: the next release); [] = up to date'),
  enableWorker: z.boolean().optional()
    .describe('k0s controllers: installed with `k0s install controller --enable-worker`, so it runs a kubelet and is a Kubernetes Node; default false, as k0s (a plain controller has no Node object)'),
  airgapImages: z.boolean().optional()
    .describe("k3s: an air-gapped node that loads k3s's images from the release's k3s-airgap-images-<arch>.tar.zst in /var/lib/rancher/k3s/agent/images (docs.k3s.io \"Manually Deploy Images\"); default false: it pulls them from a registry"),
})

const workloadsSchema = z.strictObject({
  deployments: z
    .array(z.strictObject({
      name: label('deployment name'),
      namespace: label('namespace').default('default'),
      replicas: z.number().int().min(0).default(2),
      requests: requests.default({ cpu: '100m', memory: '128Mi' }),
      pdb: z.strictObject({ minAvailable: z.union([z.number().int().min(0), z.string().regex(/^\d+%$/)]).optional(), maxUnavailable: z.union([z.number().int().min(0), z.string().regex(/^\d+%$/)]).optional() }).optional(),
      emptyDir: z.boolean().default(false).describe('pods use an emptyDir volume (drain needs --delete-emptydir-data)'),
    }))
    .default([]),
  daemonSets: z
    .array(z.strictObject({ name: label('daemonset name'), namespace: label('namespace').default('kube-system'), requests: requests.default({ cpu: '50m', memory: '64Mi' }) }))
    .default([]),
  coredns: z.strictObject({ replicas: z.number().int().min(0).default(2) }).default({ replicas: 2 }),
})

const clusterSchema = z.strictObject({
  name: label('cluster name'),
  stage: label('stage name').optional().describe('plan stage this cluster belongs to; default: the cluster name'),
  distribution: z.enum(['k0s', 'k3s', 'kubeadm'], { error: 'expected distribution k0s, k3s or kubeadm' }),
  version: version(),
  apiAddress: loopback().optional(),
  apiPort: port().default(6443),
  certificates: z.strictObject({ validity: duration().default('365d') }).default({ validity: '365d' }),
  etcd: z.enum(['simulated', 'real'], { error: 'expected etcd simulated or real' }).default('simulated')
    .describe('real: back the control-plane nodes with a real etcd cluster (needs Debian etcd-server + etcd-client)'),
  // k3s keeps its data in SQLite (kine) unless the first server was installed with --cluster-init (facts §3.1):
  // the real default of a lone server. Embedded etcd stays the lab's default so existing topologies keep their etcd.
  datastore: z.enum(['etcd', 'sqlite'], { error: 'expected datastore etcd or sqlite' }).default('etcd')
    .describe('k3s: sqlite = a single server installed without --cluster-init (state.db, no etcd); default etcd (embedded etcd)'),
  nodes: z.array(nodeSchema).min(1, 'a cluster needs at least one node'),
  workloads: workloadsSchema.default({ deployments: [], daemonSets: [], coredns: { replicas: 2 } }),
  faults: z.array(faultSchema).default([]),
})

const timingSchema = z.strictObject({
  serviceRestart: duration().default('500ms').describe('systemctl start/restart until the service runs'),
  readyDelay: duration().default('1s').describe('service start until the Node is Ready again'),
  reboot: duration().default('2s').describe('how long a reboot keeps the node down'),
  drainEvictionDelay: duration().default('500ms').describe('evicted pod until it is gone (terminationGracePeriod)'),
  nodeMonitorGracePeriod: duration().default('3s')
    .describe('kubelet silent (service stopped, node rebooting) until its Node turns Ready=Unknown (kube-controller-manager --node-monitor-grace-period, 40s on a real cluster)'),
  podStartDelay: duration().default('1s')
    .describe('a pod a controller (re)creates runs until it is Ready (image pull, start, readiness probe); PDBs count it only then'),
  kubeProxySync: duration().default('30s').describe("kube-proxy's syncPeriod: one failed sync per period under kube-proxy-sync-failure"),
})

export const topologySchema = z.strictObject({
  apiVersion: z.literal(TOPOLOGY_API_VERSION, { error: `expected apiVersion: ${TOPOLOGY_API_VERSION}` }),
  kind: z.literal(TOPOLOGY_KIND, { error: `expected kind: ${TOPOLOGY_KIND}` }),
  metadata: z.strictObject({ name: label('metadata.name') }),
  spec: z.strictObject({
    mirror: z.array(version()).min(1, 'the mirror needs at least one version').describe('versions the lab release mirror offers'),
    timing: timingSchema.default({ serviceRestart: '500ms', readyDelay: '1s', reboot: '2s', drainEvictionDelay: '500ms', nodeMonitorGracePeriod: '3s', podStartDelay: '1s', kubeProxySync: '30s' }),
    clusters: z.array(clusterSchema).min(1, 'a topology needs at least one cluster'),
  }),
})

export type TopologyInput = z.input<typeof topologySchema>
export type RawTopology = z.output<typeof topologySchema>
type RawCluster = RawTopology['spec']['clusters'][number]
type RawNode = RawCluster['nodes'][number]

/** The topology after defaults and address assignment, with quantities and durations in numbers. */
export interface Topology {
  name: string
  mirror: string[] // plain versions, ascending
  timing: { serviceRestartMs: number; readyDelayMs: number; rebootMs: number; drainEvictionDelayMs: number; nodeMonitorGracePeriodMs: number; podStartDelayMs: number; kubeProxySyncMs: number }
  clusters: ClusterTopology[]
}
export interface ClusterTopology {
  name: string
  stage: string
  distribution: 'k0s' | 'k3s' | 'kubeadm'
  version: string // plain
  apiAddress: string
  apiPort: number
  certValidityMs: number
  etcd: 'simulated' | 'real'
  /** k3s only: `sqlite` = the one server keeps its data in db/state.db (kine), no etcd anywhere. */
  datastore: 'etcd' | 'sqlite'
  nodes: NodeTopology[]
  workloads: RawCluster['workloads']
  faults: RawCluster['faults']
}
export interface NodeTopology {
  name: string
  role: 'control-plane' | 'worker'
  address: string
  sshPort: number
  os: RawNode['os']
  iptables: RawNode['iptables']
  arch: RawNode['arch']
  diskBytes: number
  diskFreeBytes: number
  cpuMilli: number
  memoryBytes: number
  /** Plain versions this node starts with: kubelet (or k3s/k0s binary), its control plane (control-plane nodes; the
   *  kubelet's version elsewhere) and, where set, its kube-proxy pod. */
  version: string
  controlPlaneVersion: string
  kubeProxyVersion?: string
  /** Runs a kubelet and so is a Kubernetes Node: every node except a k0s controller without `--enable-worker`. */
  kubelet: boolean
  /** Packages an OS upgrade installs; unset: the node OS's default (a kernel among them). */
  osUpdates?: string[]
  /** k3s: the node loads k3s's images from the release's air-gap archive in agent/images. */
  airgapImages?: boolean
}

/** Validates already-parsed data (for topologies built in code, e.g. the demo's and the benchmark's). */
export function normalizeTopology(input: TopologyInput): Topology {
  const r = topologySchema.safeParse(input)
  if (!r.success) throw new KupgradeError(`invalid lab topology: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
  const problems = semanticProblems(r.data)
  if (problems.length) throw new KupgradeError(`invalid lab topology: ${problems.map((p) => `${p.path.join('.')}: ${p.message}`).join('; ')}`)
  return finish(r.data)
}

/** Reads and validates a topology file; throws PlanError with every problem located to file:line:col. */
export async function loadTopology(file: string): Promise<Topology> {
  let text: string
  try {
    text = readRegularText(file, { maxBytes: 4 * MiB })
  } catch (err) {
    throw new KupgradeError(`${file}: cannot read the topology (${err instanceof FileReadError ? err.reason : (err as Error).message})`, { exitCode: ExitCode.invalid, hint: 'pass the path of a LabTopology YAML file (examples/lab/README.md)' })
  }
  return parseTopology(text, file)
}

const TOPOLOGY_FILE: YamlFileKind = { kind: TOPOLOGY_KIND, noun: 'topology', hint: 'see examples/lab/README.md for the format', topKeys: 'apiVersion, kind, metadata and spec' }

/** Read and validate a topology like a plan: the same YAML reader, locator and messages, every problem at once. */
export function parseTopology(text: string, file: string): Topology {
  const read = readYamlMapping(file, text, TOPOLOGY_FILE)
  if ('problems' in read) throw new PlanError(read.problems)
  const r = topologySchema.safeParse(read.raw)
  if (!r.success) throw new PlanError(zodProblems(file, r.error.issues, read.raw, topologySchema, read.locator))
  const problems = semanticProblems(r.data)
  if (problems.length) throw new PlanError(problems.map((p) => ({ file, ...read.locator.at(p.path), message: `${formatPath(p.path)}: ${p.message}` })))
  return finish(r.data)
}

interface SemanticProblem {
  path: (string | number)[]
  message: string
}

/** Cross-field rules zod cannot see: unique names and addresses, fault targets that exist, versions in the mirror. */
function semanticProblems(t: RawTopology): SemanticProblem[] {
  const out: SemanticProblem[] = []
  const clusterNames = new Set<string>()
  const mirror = t.spec.mirror.map((v) => plainVersion(v)!)
  const used = new Map<string, string>()
  const claim = (key: string, owner: string, path: (string | number)[]) => {
    const prev = used.get(key)
    if (prev) out.push({ path, message: `${key} is already used by ${prev}` })
    else used.set(key, owner)
  }
  t.spec.clusters.forEach((c, ci) => {
    const base = ['spec', 'clusters', ci]
    if (clusterNames.has(c.name)) out.push({ path: [...base, 'name'], message: `duplicate cluster name ${JSON.stringify(c.name)}` })
    clusterNames.add(c.name)
    if (c.apiAddress) claim(`${c.apiAddress}:${c.apiPort}`, `cluster ${c.name}`, [...base, 'apiAddress'])
    const v = plainVersion(c.version)!
    if (!mirror.includes(v)) out.push({ path: [...base, 'version'], message: `version ${c.version} is not in spec.mirror (${mirror.join(', ')})` })
    if (!c.nodes.some((n) => n.role === 'control-plane')) out.push({ path: [...base, 'nodes'], message: `cluster ${c.name} has no control-plane node` })
    const nodeNames = new Set<string>()
    c.nodes.forEach((n, ni) => {
      if (nodeNames.has(n.name)) out.push({ path: [...base, 'nodes', ni, 'name'], message: `duplicate node name ${JSON.stringify(n.name)} in cluster ${c.name}` })
      nodeNames.add(n.name)
      if (n.address) claim(`${n.address}:${n.sshPort}`, `node ${c.name}/${n.name}`, [...base, 'nodes', ni, 'address'])
      if ((parseBytes(n.disk.free) ?? 0) > (parseBytes(n.disk.size) ?? 0)) out.push({ path: [...base, 'nodes', ni, 'disk', 'free'], message: 'disk.free is larger than disk.size' })
      if (n.airgapImages !== undefined && c.distribution !== 'k3s') out.push({ path: [...base, 'nodes', ni, 'airgapImages'], message: `airgapImages is for k3s nodes only (its k3s-airgap-images-<arch> archives); cluster ${c.name} is ${c.distribution}` })
      if (n.enableWorker !== undefined && (c.distribution !== 'k0s' || n.role !== 'control-plane')) {
        out.push({ path: [...base, 'nodes', ni, 'enableWorker'], message: `enableWorker is for k0s controllers only (k0s install controller --enable-worker); ${c.distribution === 'k0s' ? 'a k0s worker always runs a kubelet' : `every ${c.distribution} node runs a kubelet`}` })
      }
    })
    if (c.datastore === 'sqlite') {
      const servers = c.nodes.filter((n) => n.role === 'control-plane').length
      if (c.distribution !== 'k3s') out.push({ path: [...base, 'datastore'], message: `datastore sqlite is for k3s clusters only (a k3s server installed without --cluster-init); ${c.distribution} keeps its data in etcd` })
      else if (servers > 1) out.push({ path: [...base, 'datastore'], message: `datastore sqlite allows one server, cluster ${c.name} has ${servers}: k3s joins more servers only with embedded etcd (--cluster-init) or an external database; use datastore etcd` })
      if (c.etcd === 'real') out.push({ path: [...base, 'etcd'], message: 'etcd real needs datastore etcd: a SQLite k3s server runs no etcd' })
      c.faults.forEach((f, fi) => {
        if (f.fault === 'etcd-unhealthy' || f.fault === 'etcd-db-near-quota') out.push({ path: [...base, 'faults', fi, 'fault'], message: `${f.fault} needs etcd, and cluster ${c.name} keeps its data in SQLite (datastore sqlite)` })
      })
    }
    for (const p of skewProblems(c, mirror)) out.push({ path: [...base, ...p.path], message: p.message })
    c.faults.forEach((f, fi) => {
      if (f.node && !nodeNames.has(f.node)) out.push({ path: [...base, 'faults', fi, 'node'], message: `no node ${JSON.stringify(f.node)} in cluster ${c.name}` })
      if (f.when && !nodeNames.has(f.when.node)) out.push({ path: [...base, 'faults', fi, 'when', 'node'], message: `no node ${JSON.stringify(f.when.node)} in cluster ${c.name}` })
    })
  })
  return out
}

function finish(t: RawTopology): Topology {
  const taken = new Set<string>()
  for (const c of t.spec.clusters) {
    if (c.apiAddress) taken.add(c.apiAddress)
    for (const n of c.nodes) if (n.address) taken.add(`${n.address}:${n.sshPort}`)
  }
  return {
    name: t.metadata.name,
    mirror: [...new Set(t.spec.mirror.map((v) => plainVersion(v)!))].sort(comparePlain),
    timing: {
      serviceRestartMs: parseDuration(t.spec.timing.serviceRestart)!,
      readyDelayMs: parseDuration(t.spec.timing.readyDelay)!,
      rebootMs: parseDuration(t.spec.timing.reboot)!,
      drainEvictionDelayMs: parseDuration(t.spec.timing.drainEvictionDelay)!,
      nodeMonitorGracePeriodMs: parseDuration(t.spec.timing.nodeMonitorGracePeriod)!,
      podStartDelayMs: parseDuration(t.spec.timing.podStartDelay)!,
      kubeProxySyncMs: parseDuration(t.spec.timing.kubeProxySync)!,
    },
    clusters: t.spec.clusters.map((c, ci) => ({
      name: c.name,
      stage: c.stage ?? c.name,
      distribution: c.distribution,
      version: plainVersion(c.version)!,
      apiAddress: c.apiAddress ?? `127.0.10.${ci + 1}`,
      apiPort: c.apiPort,
      certValidityMs: parseDuration(c.certificates.validity)!,
      etcd: c.etcd,
      datastore: c.datastore,
      workloads: c.workloads,
      faults: c.faults,
      nodes: c.nodes.map((n, ni) => {
        // Node N of cluster C listens on 127.(11+C/250).(C%250).(N+1) style addresses: one /24 per cluster, no clashes.
        let address = n.address
        if (!address) {
          address = `127.0.${11 + ci}.${ni + 1}`
          for (let k = ni + 1; taken.has(`${address}:${n.sshPort}`); k++) address = `127.0.${11 + ci}.${(k % 254) + 1}`
          taken.add(`${address}:${n.sshPort}`)
        }
        return {
          name: n.name,
          role: n.role,
          address,
          sshPort: n.sshPort,
          os: n.os,
          iptables: n.iptables,
          arch: n.arch,
          diskBytes: parseBytes(n.disk.size)!,
          diskFreeBytes: parseBytes(n.disk.free)!,
          cpuMilli: parseCpu(n.allocatable.cpu)!,
          memoryBytes: parseBytes(n.allocatable.memory)!,
          kubelet: c.distribution !== 'k0s' || n.role === 'worker' || n.enableWorker === true,
          ...(n.osUpdates ? { osUpdates: n.osUpdates } : {}),
          ...(n.airgapImages ? { airgapImages: true } : {}),
          ...nodeVersions(c.distribution, c.version, n),
        }
      }),
    })),
  }
}

function nodeVersions(distribution: string, clusterVersion: string, n: RawNode): Pick<NodeTopology, 'version' | 'controlPlaneVersion' | 'kubeProxyVersion'> {
  const r = resolvedVersions(distribution, clusterVersion, n)
  return { version: r.kubelet, controlPlaneVersion: r.apiServer ?? r.kubelet, ...(r.kubeProxy ? { kubeProxyVersion: r.kubeProxy } : {}) }
}
