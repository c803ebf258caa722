import { z } from 'zod'
import { parseDuration } from '../util/duration.js'

/**
 * The built-in gates a plan may name, with their parameters and the incident each exists to stop. This catalog is the
 * single source for plan validation, the JSON Schema, the planner's defaults and the README's gate table; the gate
 * implementations register against these ids.
 */
const duration = (def: string, opts: { positive?: boolean } = {}) =>
  z
    .string()
    .refine((s) => parseDuration(s) !== undefined, { message: 'expected a duration such as 90s, 5m or 1h30m', abort: true })
    .refine((s) => !opts.positive || (parseDuration(s) ?? 1) > 0, { message: 'must be more than 0s' })
    .default(def)
const size = (def: string) => z.string().regex(/^\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$/, 'expected a size such as 2Gi or 500Mi').default(def)
const percentOrSize = (def: string) =>
  z.string().regex(/^(\d{1,2}(\.\d+)?%|100%|\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?)$/, 'expected a percentage (15%) or a size (10Gi)').default(def)

const probeImage = () => z.string().min(1).default('curlimages/curl:8.11.1').describe('image of the short-lived probe pod (needs sh, curl and nslookup); mirror it for air-gapped clusters')

export type GateScope = 'cluster' | 'node'

export interface GateDefinition<S extends z.ZodType = z.ZodType> {
  id: string
  title: string
  /** cluster: checked once for the cluster; node: checked for one node (before/after it is upgraded). */
  scopes: readonly GateScope[]
  incident: string
  params: S
}

const def = <S extends z.ZodType>(d: GateDefinition<S>): GateDefinition<S> => d

export const GATES = [
  def({
    id: 'version-skew',
    title: 'kubelet / kube-proxy / apiserver version skew within policy, now and in every intermediate state of the plan',
    scopes: ['cluster', 'node'],
    incident: 'kubelet-kube-proxy-skew',
    params: z.strictObject({
      policy: z.enum(['conservative', 'permissive']).default('conservative').describe('conservative: kubelets ≥ N-2 before the apiserver moves to N; permissive: ≥ N-3'),
    }),
  }),
  def({
    id: 'upgrade-path',
    title: 'from the running apiservers to the target: no minor skipped, no downgrade, a release of the distribution',
    scopes: ['cluster'],
    incident: 'kubelet-kube-proxy-skew',
    params: z.strictObject({}),
  }),
  def({
    id: 'release-source',
    title: "every node can get what its steps fetch (every hop's release, and what a rebuild would reinstall): its architecture's binary and checksum list (air-gapped k3s: the images archive) from install.mirror, install.path or the install script's GitHub release; kubeadm: a pkgs.k8s.io repository line its switches can move from minor to minor",
    scopes: ['cluster'],
    incident: 'kubelet-kube-proxy-skew',
    params: z.strictObject({ timeout: duration('60s', { positive: true }).describe("how long each node's check may take") }),
  }),
  def({
    id: 'api-vip',
    title: 'API VIP and the kubernetes Service ClusterIP reachable from the runner, every node and a probe pod',
    scopes: ['cluster', 'node'],
    incident: 'k0s-upgrade-coredns-api-vip',
    params: z.strictObject({
      timeout: duration('5s', { positive: true }),
      from: z.array(z.enum(['runner', 'nodes', 'pod'])).min(1).default(['runner', 'nodes', 'pod']),
      probeImage: probeImage(),
      podTimeout: duration('90s', { positive: true }).describe('how long the probe pod may take to be scheduled, pull its image and finish'),
    }),
  }),
  def({
    id: 'nodes-ready',
    title: 'nodes Ready, reporting the expected kubelet version',
    scopes: ['cluster', 'node'],
    incident: 'k3s-expired-certs-disk-full',
    params: z.strictObject({ timeout: duration('5m', { positive: true }) }),
  }),
  def({
    id: 'certificates',
    title: 'server and node certificates valid for at least minValidity',
    scopes: ['cluster', 'node'],
    incident: 'k3s-expired-certs-disk-full',
    params: z.strictObject({ minValidity: duration('30d') }),
  }),
  def({
    id: 'disk-space',
    title: 'free space on /, /var/lib and /var/log above both minimums (a percentage and an absolute size)',
    scopes: ['cluster', 'node'],
    incident: 'k3s-expired-certs-disk-full',
    params: z.strictObject({
      minFree: percentOrSize('15%').describe('free space each path must keep: a percentage (15%) or a size (10Gi)'),
      minFreeBytes: size('2Gi').describe('and at least this much free, whatever the percentage'),
      paths: z.array(z.string().regex(/^\/[A-Za-z0-9._/-]*$/, 'expected an absolute path')).min(1).default(['/', '/var/lib', '/var/log']),
    }),
  }),
  def({
    id: 'etcd',
    title: 'etcd healthy, with a leader, its members the control-plane nodes of the plan, DB size under maxDbSizeRatio of the quota',
    scopes: ['cluster'],
    incident: 'etcd-hpa-cascading-failure',
    params: z.strictObject({ maxDbSizeRatio: z.number().gt(0).lte(1).default(0.8) }),
  }),
  def({
    id: 'control-plane-ha',
    title: 'at least 3 control-plane nodes / etcd members, and an odd count',
    scopes: ['cluster'],
    incident: 'single-master-spof',
    params: z.strictObject({ policy: z.enum(['warn', 'block']).default('warn').describe('warn: report and go on; block: fail the gate') }),
  }),
  def({
    id: 'kube-proxy-sync',
    title: 'kube-proxy syncing: no new iptables-restore failures, last sync recent, no "Sync failed" in logs',
    scopes: ['cluster', 'node'],
    incident: 'kubelet-kube-proxy-skew',
    params: z.strictObject({
      maxSyncAge: duration('90s', { positive: true }).describe('the last successful sync may be at most this old'),
      logWindow: duration('10m', { positive: true }).describe('how far back kube-proxy logs are scanned for "Sync failed"'),
    }),
  }),
  def({
    id: 'iptables-backend',
    title: 'one iptables backend (legacy or nf_tables) across host and kube-proxy',
    scopes: ['cluster', 'node'],
    incident: 'k0s-upgrade-coredns-api-vip',
    params: z.strictObject({}),
  }),
  def({
    id: 'system-pods',
    title: 'kube-system pods (CoreDNS, kube-proxy, CNI) running and not crash-looping',
    // At a node's point it still judges the whole cluster's: a node's upgrade breaks CoreDNS or the CNI elsewhere.
    scopes: ['cluster', 'node'],
    incident: 'k0s-upgrade-coredns-api-vip',
    params: z.strictObject({
      namespaces: z
        .array(z.string().refine((s) => /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(s), 'expected a namespace name (a DNS-1123 label such as kube-system)'))
        .min(1)
        .default(['kube-system']),
    }),
  }),
  def({
    id: 'pending-pods',
    title: 'no more than max pods Pending (unschedulable)',
    scopes: ['cluster'],
    incident: 'etcd-hpa-cascading-failure',
    params: z.strictObject({ max: z.number().int().min(0).default(0) }),
  }),
  def({
    id: 'capacity',
    title: 'the cluster can absorb a drained batch: the evicted pods’ requests fit on the other schedulable nodes',
    scopes: ['cluster'],
    incident: 'etcd-hpa-cascading-failure',
    params: z.strictObject({ nodesAtOnce: z.number().int().min(1).optional().describe("how many nodes are drained together; unset: the plan's own batches (each control-plane node alone, each worker batch at once)") }),
  }),
  def({
    id: 'dns',
    title: 'cluster DNS answers: kubernetes.default.svc resolves to the kubernetes Service ClusterIP from a probe pod',
    scopes: ['cluster'],
    incident: 'k0s-upgrade-coredns-api-vip',
    params: z.strictObject({ probeImage: probeImage(), podTimeout: duration('90s', { positive: true }) }),
  }),
  def({
    id: 'drain-feasibility',
    title: 'every node can be drained: no PodDisruptionBudget allows zero disruptions over its pods, no single-replica workload without a budget',
    scopes: ['cluster', 'node'],
    incident: 'etcd-hpa-cascading-failure',
    params: z.strictObject({ singleReplica: z.enum(['warn', 'block']).default('warn').describe('what a workload with one replica (downtime on drain) does') }),
  }),
  def({
    id: 'event-storm',
    title: 'no event storm: FailedScheduling and warning events under a rate',
    scopes: ['cluster'],
    incident: 'etcd-hpa-cascading-failure',
    params: z.strictObject({ window: duration('10m', { positive: true }), maxFailedScheduling: z.number().int().min(0).default(20), maxWarnings: z.number().int().min(0).default(500) }),
  }),
  def({
    id: 'removed-apis',
    title: 'no objects or clients use APIs the target version no longer serves',
    scopes: ['cluster'],
    incident: 'kubelet-kube-proxy-skew',
    params: z.strictObject({}),
  }),
  def({
    id: 'command',
    title: 'a command of yours, on the runner or on nodes, exits 0',
    scopes: ['cluster', 'node'],
    incident: 'custom',
    params: z.strictObject({
      run: z.union([z.string().min(1), z.array(z.string()).min(1)]).default(['true']).describe('a shell command line (run by sh -c) or an argv list'),
      on: z.enum(['runner', 'nodes', 'control-plane', 'workers']).default('runner'),
      timeout: duration('60s', { positive: true }),
      name: z.string().min(1).optional().describe('how reports name this check'),
    }),
  }),
  def({
    id: 'http',
    title: 'an HTTP endpoint of yours answers with the expected status (and body)',
    scopes: ['cluster', 'node'],
    incident: 'custom',
    params: z.strictObject({
      url: z.url({ protocol: /^https?$/ }).default('https://127.0.0.1/healthz').describe('http:// or https:// URL, fetched from the runner'),
      status: z.number().int().min(100).max(599).default(200),
      bodyContains: z.string().optional(),
      insecureSkipVerify: z.boolean().default(false),
      timeout: duration('10s', { positive: true }),
    }),
  }),
  def({
    id: 'prometheus',
    title: 'a Prometheus query returns no more than max series (default: no critical alert firing)',
    scopes: ['cluster', 'node'],
    incident: 'custom',
    params: z.strictObject({
      url: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:9090').describe('Prometheus base URL, queried from the runner'),
      query: z.string().min(1).default('ALERTS{alertstate="firing",severity="critical"}'),
      max: z.number().int().min(0).default(0).describe('how many series the query may return'),
      timeout: duration('10s', { positive: true }),
    }),
  }),
] as const

export type GateId = (typeof GATES)[number]['id']
export const GATE_IDS: readonly string[] = GATES.map((g) => g.id)
export const gateById = (id: string): GateDefinition | undefined => GATES.find((g) => g.id === id)

/**
 * Gates a plan opts into (several times, with different parameters): they are never defaults, since only the plan
 * knows what to run or ask.
 */
export const CUSTOM_GATES = ['command', 'http', 'prometheus'] as const

/**
 * Safe defaults. A plan's own lists add to or re-parameterise these; only `gates.skip` (with a reason, shown in every
 * output format) turns one off.
 */
export const DEFAULT_GATES = {
  // kube-proxy-sync is a pre-gate too: an upgrade must not start on a data plane that is already failing to sync.
  pre: ['version-skew', 'upgrade-path', 'release-source', 'api-vip', 'nodes-ready', 'certificates', 'disk-space', 'etcd', 'control-plane-ha', 'kube-proxy-sync', 'iptables-backend', 'system-pods', 'dns', 'pending-pods', 'event-storm', 'capacity', 'drain-feasibility', 'removed-apis'],
  post: ['nodes-ready', 'version-skew', 'kube-proxy-sync', 'api-vip', 'system-pods', 'dns', 'pending-pods'],
  beforeNode: ['disk-space'],
  // system-pods after every node, as kOps validates the cluster (kube-system pods included) after each instance: the
  // k0s incident's CoreDNS crash-looped once the first node moved, and the next node must not be touched then.
  afterNode: ['nodes-ready', 'version-skew', 'kube-proxy-sync', 'api-vip', 'system-pods'],
} as const
