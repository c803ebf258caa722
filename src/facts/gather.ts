import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { failureReason, RemoteCommandError } from '../errors.js'
import type { LoadedPlan } from '../plan/load.js'
import type { ClusterSpec } from '../plan/schema.js'
import { parseKubeVersion, type Distribution } from '../plan/versions.js'
import { chooseKubectl, KubectlClient } from '../transport/kubectl/client.js'
import { classifyKubectlFailure } from '../transport/kubectl/classify.js'
import { redact } from '../transport/kubectl/redact.js'
import { HostKeyError } from '../transport/ssh/host-key.js'
import { SshAuthError } from '../transport/ssh/identity.js'
import { SshConnectError } from '../transport/ssh/pool.js'
import type { Transport } from '../transport/types.js'
import { readApiFacts, type ApiFacts } from './api-facts.js'
import { readHostFacts } from './host-facts.js'
import { planPath } from '../plan/paths.js'
import { nodeTarget } from './targets.js'
import { readRunLock, type RunLock } from './run-lock.js'
import { unlistedNodes } from './unlisted.js'
import { formatDuration } from '../util/duration.js'
import type { ApiserverVersion, ClusterFacts, FleetFacts, HostFacts, KubeProxySource, NodeFacts } from './types.js'

export interface GatherOptions {
  /** SSH (or a recorder around it). The caller owns it and closes it. */
  transport: Transport
  env?: NodeJS.ProcessEnv
  /** Only these clusters (inventory --cluster). */
  clusters?: string[]
  /** Where kubectl discovery caches go: `<stateDir>/cache/kubectl/<cluster>`. Default a per-user temp dir. */
  stateDir?: string
  /** Build the kubectl client for a cluster (tests inject fakes); its calls must end when `signal` aborts. */
  kubectlFor?: (cluster: ClusterSpec, loaded: LoadedPlan, signal: AbortSignal) => KubectlClient
  log?: (message: string) => void
  signal?: AbortSignal
  /**
   * Overall limit per cluster (its API facts and all its nodes). Each kubectl call has its own request timeout and
   * retries, so without it an API server answering in 25 s held a run for over 100 s. When it passes, what is still
   * outstanding is cancelled and named, once, in the cluster's error. Default DEFAULT_CLUSTER_DEADLINE_MS.
   */
  deadlineMs?: number
}

export const DEFAULT_CLUSTER_DEADLINE_MS = 60_000

export function defaultKubectl(cluster: ClusterSpec, loaded: LoadedPlan, env: NodeJS.ProcessEnv, stateDir?: string, log?: (m: string) => void, signal?: AbortSignal): KubectlClient {
  // A bare name (`kubectl`) is looked up on PATH; only paths are resolved against the plan's directory.
  const asPath = (p?: string) => (p && (p.includes('/') || p.startsWith('~')) ? planPath(p, loaded.dir) : p)
  const binary = chooseKubectl(env, asPath(cluster.kubectl), asPath(loaded.plan.spec.kubectl))
  return new KubectlClient({
    cluster: cluster.name,
    binary,
    ...(cluster.kubeconfig ? { kubeconfig: planPath(cluster.kubeconfig, loaded.dir) } : {}),
    ...(cluster.context ? { context: cluster.context } : {}),
    cacheDir: join(stateDir ?? join(tmpdir(), `kupgrade-${process.getuid?.() ?? 'user'}`), 'cache', 'kubectl', cluster.name),
    env,
    // KUPGRADE_KUBECTL_PROXY=0: a kubectl process for every call (an auditing wrapper that must see each one).
    proxy: env.KUPGRADE_KUBECTL_PROXY !== '0',
    ...(log ? { log } : {}),
    ...(signal ? { signal } : {}),
  })
}

/** An error in the facts, on one line: it is a table's note, a live plan's blocker, a JSON field. */
const message = (err: unknown): string => {
  const hint = (err as { hint?: string }).hint
  return redact(`${failureReason(err)}${hint ? ` (${hint})` : ''}`)
}

const nameList = (names: string[]): string => (names.length > 5 ? `${names.slice(0, 5).join(', ')}, …` : names.join(', '))

/**
 * Reads the whole fleet: every cluster's API facts and every node's host facts, all concurrently (the SSH pool bounds
 * how many nodes at once). An unreachable node or API server becomes an `error` in its place, never an exception,
 * so one bad node cannot hide the other 99.
 */
export async function gatherFleetFacts(loaded: LoadedPlan, opts: GatherOptions): Promise<FleetFacts> {
  const started = Date.now()
  const env = opts.env ?? process.env
  const wanted = opts.clusters?.length ? loaded.plan.spec.clusters.filter((c) => opts.clusters!.includes(c.name)) : loaded.plan.spec.clusters
  const clusters = await Promise.all(wanted.map((c) => gatherCluster(c, loaded, opts, env)))
  return { gatheredAt: new Date(started).toISOString(), durationMs: Date.now() - started, clusters }
}

type Outcome<T> = { ok: T } | { err: string; unreachable?: true }

async function gatherCluster(cluster: ClusterSpec, loaded: LoadedPlan, opts: GatherOptions, env: NodeJS.ProcessEnv): Promise<ClusterFacts> {
  const dist = cluster.distribution as Distribution
  const deadlineMs = opts.deadlineMs ?? DEFAULT_CLUSTER_DEADLINE_MS
  // One signal per cluster: the caller's, or the deadline's, whichever comes first, cancels every call still running.
  const ctl = new AbortController()
  const onParent = () => ctl.abort(opts.signal?.reason)
  opts.signal?.addEventListener('abort', onParent, { once: true })
  let expired = false
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      // Flag first: calls cancelled below must not overwrite "still waiting" with their own "cancelled".
      expired = true
      resolve()
      ctl.abort(new Error(`deadline of ${formatDuration(deadlineMs)} passed`))
    }, deadlineMs)
  })
  let api: Outcome<ApiFacts> | undefined
  const hosts: (Outcome<HostFacts> | undefined)[] = cluster.nodes.map(() => undefined)
  const settle = <T>(p: Promise<T>, set: (o: Outcome<T>) => void) =>
    p.then((ok) => !expired && set({ ok }), (e: unknown) => !expired && set({ err: message(e), ...(cannotReach(e) ? { unreachable: true as const } : {}) }))
  const kubectl = opts.kubectlFor ? opts.kubectlFor(cluster, loaded, ctl.signal) : defaultKubectl(cluster, loaded, env, opts.stateDir, opts.log, ctl.signal)
  // The run lock is read beside the API facts, by the facts alone (the gates' own API reads have no use for it); a
  // Lease it may not read (RBAC) is no reason to miss the cluster's facts.
  let runLock: RunLock | undefined
  const work = Promise.all([
    settle(readApiFacts(kubectl, dist), (o) => (api = o)),
    readRunLock(kubectl).then((l) => void (runLock = l), () => undefined),
    ...cluster.nodes.map((n, i) => settle(readHostFacts(opts.transport, nodeTarget(cluster, n, loaded.dir), dist, { signal: ctl.signal }), (o) => (hosts[i] = o))),
  ])
  try {
    await Promise.race([work, deadline])
  } finally {
    clearTimeout(timer)
    opts.signal?.removeEventListener('abort', onParent)
  }
  let clusterError: string | undefined
  if (expired) {
    // Said once, for the cluster: what was slow. Each node not read points here rather than repeating it.
    const slowNodes = cluster.nodes.filter((_, i) => hosts[i] === undefined).map((n) => n.name)
    const waiting = [
      ...(api === undefined ? ['the API server (kubectl)'] : []),
      ...(slowNodes.length ? [`SSH to ${slowNodes.length === cluster.nodes.length ? 'every node' : `${slowNodes.length} of ${cluster.nodes.length} nodes`} (${nameList(slowNodes)})`] : []),
    ]
    clusterError = `not read within the ${formatDuration(deadlineMs)} deadline (--deadline): still waiting for ${waiting.join(' and ')}`
    for (let i = 0; i < hosts.length; i++) hosts[i] ??= { err: `not read within the cluster's ${formatDuration(deadlineMs)} deadline` }
    if (api === undefined) api = { err: clusterError }
    else if ('err' in api) clusterError = `${api.err}; ${clusterError}`
    else clusterError = undefined
  }
  // The cluster error says everything when the deadline passed; otherwise it is the API's own error.
  const apiError = clusterError ?? ('err' in api! ? api.err : undefined)
  const a = 'ok' in api! ? api.ok : undefined
  const nodes: NodeFacts[] = cluster.nodes.map((spec, i) => {
    const h = hosts[i]!
    return nodeFacts(spec.name, spec.role, spec.host, dist, a, 'ok' in h ? h.ok : undefined, 'err' in h ? h : undefined)
  })
  const listed = new Set(cluster.nodes.map((n) => n.name))
  return {
    name: cluster.name,
    distribution: dist,
    from: cluster.from,
    ...(loaded.plan.spec.target.kubernetes ? { target: loaded.plan.spec.target.kubernetes } : {}),
    apiserverVersions: a ? apiserverVersions(dist, a, nodes) : [],
    nodes,
    ...(a?.etcdMembers ? { etcdMembers: a.etcdMembers } : {}),
    unlistedNodes: a ? unlistedNodes(dist, a, listed) : [],
    ...(a && runLock ? { runLock } : {}),
    ...(apiError ? { error: apiError } : {}),
    ...(!clusterError && 'err' in api! && api.unreachable ? { apiUnreachable: true as const } : {}),
  }
}

function nodeFacts(name: string, role: NodeFacts['role'], host: string, dist: Distribution, a: ApiFacts | undefined, h: HostFacts | undefined, failed: { err: string; unreachable?: true } | undefined): NodeFacts {
  const n = a?.nodes.get(name)
  const proxy = kubeProxy(dist, name, a, h, n?.kubeletVersion)
  return {
    name,
    role,
    host,
    ...(n?.kubeletVersion ? { kubeletVersion: n.kubeletVersion } : {}),
    ...(proxy.version ? { kubeProxyVersion: proxy.version } : {}),
    kubeProxySource: proxy.source,
    ...(h?.installedVersion ? { installedVersion: h.installedVersion } : {}),
    ...(h?.k0sControllerRunning ? { runningVersion: h.k0sControllerRunning } : {}),
    ...(h?.kubeletBinaryVersion ? { kubeletBinaryVersion: h.kubeletBinaryVersion } : {}),
    ...(n?.ready !== undefined ? { ready: n.ready } : {}),
    ...(n ? { cordoned: n.cordoned } : {}),
    roles: n?.roles ?? [],
    inApi: n !== undefined,
    ...(isKubernetesNode(dist, role, h, a ? n !== undefined : undefined) ? {} : { kubernetesNode: false as const }),
    ...(h?.os ? { os: h.os } : {}),
    // The API's kernelVersion is the same `uname -r`, so it stands in when SSH could not be reached.
    ...(h?.kernel ?? n?.kernel ? { kernel: (h?.kernel ?? n?.kernel)! } : {}),
    ...(h?.arch ?? n?.arch ? { arch: (h?.arch ?? n?.arch)! } : {}),
    ...(h?.iptablesBackend ? { iptablesBackend: h.iptablesBackend } : {}),
    disk: h?.disk ?? [],
    ...(h?.rebootRequired !== undefined ? { rebootRequired: h.rebootRequired, rebootSource: h.rebootSource! } : {}),
    services: h?.services ?? {},
    ...(h ? { packageManager: h.packageManager } : {}),
    ...(failed ? { error: failed.err, ...(failed.unreachable ? { unreachable: true as const } : {}) } : {}),
  }
}

/**
 * No answer at all, so every later command there would fail the same way: SSH did not get as far as running one, or
 * kubectl got no answer from the API (see ClusterFacts.apiUnreachable).
 */
function cannotReach(e: unknown): boolean {
  if (e instanceof RemoteCommandError && e.node === 'kubectl') return e.transient || ['config', 'tls', 'unreachable'].includes(classifyKubectlFailure(e.stderrTail))
  return e instanceof SshConnectError || e instanceof SshAuthError || e instanceof HostKeyError
}

/**
 * Whether a machine is a Kubernetes Node. Only a k0s controller can be one without: k0s runs no kubelet on a
 * controller unless it was installed with --enable-worker (or --single). Its service definition says so; when that
 * could not be read, a Node object in the API does (a stopped kubelet's Node stays listed, so absence is meaningful).
 */
function isKubernetesNode(dist: Distribution, role: NodeFacts['role'], h: HostFacts | undefined, inApi: boolean | undefined): boolean {
  if (dist !== 'k0s' || role !== 'control-plane') return true
  // The service definition decides: a Node left over from an earlier --enable-worker install gets no kubelet now.
  if (h?.k0sControllerWorkloads !== undefined) return h.k0sControllerWorkloads
  return inApi ?? true
}

/**
 * kube-proxy's real version (facts §2.6). k0s/kubeadm: the DaemonSet pod on that node. k3s: kube-proxy runs inside
 * the k3s process, whose version the node's kubelet reports; the binary on disk is only the same once restarted.
 */
function kubeProxy(dist: Distribution, node: string, a: ApiFacts | undefined, h: HostFacts | undefined, kubelet?: string): { version?: string; source: KubeProxySource } {
  if (dist !== 'k3s') {
    const v = a?.kubeProxy.get(node)
    return v ? { version: v, source: 'daemonset-pod' } : { source: 'none' }
  }
  const active = h ? Object.values(h.services).includes('active') : undefined
  if (h?.installedVersion && (active || !kubelet) && (!kubelet || h.installedVersion === kubelet)) return { version: h.installedVersion, source: 'k3s-binary' }
  if (kubelet && parseKubeVersion(kubelet)) return { version: kubelet, source: 'k3s-process' }
  return h?.installedVersion ? { version: h.installedVersion, source: 'k3s-binary' } : { source: 'none' }
}

/** Every apiserver version we can tell apart: /version, plus one per apiserver where the distribution exposes it. */
function apiserverVersions(dist: Distribution, a: ApiFacts, nodes: NodeFacts[]): ApiserverVersion[] {
  const out: ApiserverVersion[] = [{ version: a.version, source: '/version' }]
  if (dist === 'kubeadm') out.push(...a.apiserverPods)
  for (const n of nodes.filter((x) => x.role === 'control-plane')) {
    // k3s servers run the apiserver in-process: the node's reported version is the apiserver's.
    if (dist === 'k3s' && n.kubeletVersion && n.services.k3s === 'active') out.push({ version: n.kubeletVersion, source: 'k3s server', node: n.name })
    // k0s controllers run the apiserver from the k0s binary they started with: what `k0s status` says it runs, else
    // (it could not be asked) the binary on disk.
    const k0s = n.runningVersion ?? n.installedVersion
    if (dist === 'k0s' && k0s && n.services.k0scontroller === 'active') out.push({ version: k0s, source: 'k0s controller', node: n.name })
  }
  return out
}
