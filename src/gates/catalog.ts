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
const percentOrSize = (def: string) =>
  z.string().regex(/^(\d{1,2}(\.\d+)?%|100%|\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?)$/, 'expected a percentage (15%) or a size (10Gi)').default(def)

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
    id: 'api-vip',
    title: 'API VIP and the kubernetes Service ClusterIP reachable from the runner, every node and a probe pod',
    scopes: ['cluster', 'node'],
    incident: 'k0s-upgrade-coredns-api-vip',
    params: z.strictObject({ timeout: duration('5s', { positive: true }), from: z.array(z.enum(['runner', 'nodes', 'pod'])).min(1).default(['runner', 'nodes', 'pod']) }),
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
    title: 'free space on / and /var above minFree',
    scopes: ['cluster', 'node'],
    incident: 'k3s-expired-certs-disk-full',
    params: z.strictObject({ minFree: percentOrSize('15%'), paths: z.array(z.string().regex(/^\/[A-Za-z0-9._/-]*$/, 'expected an absolute path')).min(1).default(['/', '/var']) }),
  }),
  def({
    id: 'etcd',
    title: 'etcd healthy, with a leader, all members, DB size under maxDbSizeRatio of the quota',
    scopes: ['cluster'],
    incident: 'etcd-hpa-cascading-failure',
    params: z.strictObject({ maxDbSizeRatio: z.number().gt(0).lte(1).default(0.8) }),
  }),
  def({
    id: 'control-plane-ha',
    title: 'at least 3 control-plane nodes / etcd members, and an odd count',
    scopes: ['cluster'],
    incident: 'single-master-spof',
    params: z.strictObject({ policy: z.enum(['warn', 'block']).default('warn') }),
  }),
  def({
    id: 'kube-proxy-sync',
    title: 'kube-proxy syncing: no new iptables-restore failures, last sync recent, no "Sync failed" in logs',
    scopes: ['cluster', 'node'],
    incident: 'kubelet-kube-proxy-skew',
    params: z.strictObject({ maxSyncAge: duration('90s', { positive: true }) }),
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
    scopes: ['cluster'],
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
    title: 'the cluster can absorb a drained batch: requests fit elsewhere and no PodDisruptionBudget blocks the drain',
    scopes: ['cluster'],
    incident: 'etcd-hpa-cascading-failure',
    params: z.strictObject({}),
  }),
] as const

export type GateId = (typeof GATES)[number]['id']
export const GATE_IDS: readonly string[] = GATES.map((g) => g.id)
export const gateById = (id: string): GateDefinition | undefined => GATES.find((g) => g.id === id)

/** Safe defaults: every built-in gate that makes sense at that point is on unless the plan lists its own. */
export const DEFAULT_GATES = {
  // kube-proxy-sync is a pre-gate too: an upgrade must not start on a data plane that is already failing to sync.
  pre: ['version-skew', 'upgrade-path', 'api-vip', 'nodes-ready', 'certificates', 'disk-space', 'etcd', 'control-plane-ha', 'kube-proxy-sync', 'iptables-backend', 'system-pods', 'pending-pods', 'capacity'],
  post: ['nodes-ready', 'version-skew', 'kube-proxy-sync', 'api-vip', 'system-pods', 'pending-pods'],
  beforeNode: ['disk-space'],
  afterNode: ['nodes-ready', 'version-skew', 'kube-proxy-sync', 'api-vip'],
} as const
