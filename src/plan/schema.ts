import { z } from 'zod'
import { parseDuration } from '../util/duration.js'

/**
 * The UpgradePlan format. This zod schema is the single source of truth: the TypeScript types below are inferred
 * from it, `kupgrade schema` and plans/schema.json are generated from it, and validation runs it. Objects are strict so
 * a misspelt field is an error with a suggestion, not a silently ignored setting.
 */
export const API_VERSION = 'kupgrade.dev/v1alpha1'
export const KIND = 'UpgradePlan'

const text = (what: string) => z.string().min(1, `${what} must not be empty`)
/** A duration with a sane maximum: `soak: 9999999d` is a typo, not a plan, and must not be read as 27,000 years. */
const duration = (max: string, positive?: string) =>
  z
    .string({ error: 'expected a duration such as 90s, 5m or 1h30m' })
    .refine((s) => parseDuration(s) !== undefined, { message: 'expected a duration such as 90s, 5m or 1h30m', abort: true })
    .refine((s) => !positive || (parseDuration(s) ?? 1) > 0, { message: positive ?? '' })
    .refine((s) => (parseDuration(s) ?? 0) <= parseDuration(max)!, { message: `must be at most ${max} (a longer one is surely a typo)` })
/** Names are checked as DNS-1123 by the semantic pass, which can say which rule a name breaks. */
const name = (what: string) => text(what)

export const sshSchema = z
  .strictObject({
    user: text('user').optional().describe('login user; default: ~/.ssh/config, else the current user'),
    port: z.number().int().min(1).max(65535).optional().describe('SSH port; default 22 or ~/.ssh/config'),
    identityFile: text('identityFile').optional().describe('private key file; default: ssh-agent, then ~/.ssh/config'),
    knownHosts: text('knownHosts').optional().describe('known_hosts file; default ~/.ssh/known_hosts'),
    sudo: z.boolean().optional().describe('run privileged commands through `sudo -n` (for non-root users)'),
    proxyJump: text('proxyJump').optional().describe('bastion host, [user@]host[:port], as ProxyJump in ~/.ssh/config'),
  })
  .describe('SSH settings; a node’s own settings override its cluster’s field by field')

export const nodeSchema = z.strictObject({
  name: name('node name').describe('the Kubernetes node name (DNS-1123 subdomain)'),
  host: text('host').describe('hostname or IP address reached over SSH'),
  port: z.number().int().min(1).max(65535).optional().describe('SSH port (overrides ssh.port)'),
  role: z.enum(['control-plane', 'worker'], { error: 'expected role control-plane or worker' }),
  ssh: sshSchema.optional(),
})

export const clusterSchema = z.strictObject({
  name: name('cluster name').describe('DNS-1123 label'),
  distribution: z.enum(['k0s', 'k3s', 'kubeadm'], { error: 'expected distribution k0s, k3s or kubeadm' }),
  from: text('from').describe('the version the plan was written against (v1.29.2 or v1.29.2+k3s1); live facts must agree'),
  allowFromMismatch: z.boolean().default(false).describe('let --live and apply go ahead when the live version is older than `from` or past the target'),
  kubeconfig: text('kubeconfig').optional().describe('kubeconfig file; default $KUBECONFIG, else ~/.kube/config'),
  context: text('context').optional().describe('kubeconfig context; default the current context'),
  kubectl: text('kubectl').optional().describe('kubectl binary for this cluster'),
  apiEndpoint: z.url({ protocol: /^https$/, error: 'expected an https:// URL such as https://10.0.0.10:6443' }).describe('the API VIP or load balancer address'),
  serviceCIDR: text('serviceCIDR').optional().describe('service CIDR; default 10.43.0.0/16 for k3s, 10.96.0.0/12 otherwise'),
  install: z
    .strictObject({
      mirror: z.url({ protocol: /^https?$/, error: 'expected an http(s):// URL such as https://mirror.example/k3s' }).optional()
        .describe("fetch release binaries from this mirror, laid out like the GitHub release, each node's architecture's asset (uname -m): <mirror>/<release>/k3s with sha256sum-amd64.txt (k3s-arm64, k3s-armhf with sha256sum-arm64.txt, sha256sum-arm.txt), or <mirror>/<release>/k0s-<release>-amd64|arm64|arm with sha256sums.txt"),
      path: text('path').optional().describe("a directory on each node laid out the same way (air-gapped sites); with either, a k3s node that loads its images from k3s-airgap-images-<arch> archives in /var/lib/rancher/k3s/agent/images gets the release's archive from there too"),
    })
    .refine((i) => !(i.mirror && i.path), { message: 'give install.mirror or install.path, not both' })
    .optional()
    .describe("k3s and k0s: where release binaries come from (checksums verified); default the distribution's install script"),
  ssh: sshSchema.optional(),
  nodes: z.array(nodeSchema).min(1, 'a cluster needs at least one node'),
})

export const gateEntrySchema = z
  .union([z.string(), z.record(z.string(), z.unknown())], {
    error: 'expected a gate id (etcd) or a map of one gate id to its parameters ({ certificates: { minValidity: 30d } })',
  })
  .describe('a gate id, or a map of one gate id to its parameters')

const gateList = () => z.array(gateEntrySchema)

export const planSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION, { error: `expected ${API_VERSION}` }),
  kind: z.literal(KIND, { error: `expected ${KIND}` }),
  metadata: z.strictObject({
    name: name('metadata.name'),
    description: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
  }),
  spec: z.strictObject({
    kubectl: text('kubectl').optional().describe('kubectl binary; KUPGRADE_KUBECTL wins, default kubectl on PATH'),
    target: z
      .strictObject({
        kubernetes: text('kubernetes').optional().describe('target Kubernetes version, e.g. v1.30.4'),
        via: z.array(text('version')).optional().describe('intermediate versions overriding the default hop of a skipped minor (the latest patch in the release list)'),
        releases: z.array(text('version')).optional().describe('releases newer than the shipped release list, or those of an air-gapped mirror (v1.35.1, v1.35.1+k3s1)'),
        k3s: text('k3s').optional().describe('explicit k3s release, e.g. v1.30.4+k3s2 (default +k3s1)'),
        k0s: text('k0s').optional().describe('explicit k0s release, e.g. v1.30.4+k0s.1 (default +k0s.0)'),
        kubeadm: text('kubeadm').optional().describe('explicit kubeadm package version, e.g. 1.30.4-1.1'),
        os: z
          .strictObject({
            packages: z.union([z.literal('all'), z.literal('security'), z.array(text('package')).min(1, 'list at least one package, or write all or security')], {
              error: 'expected all, security or a list of package names',
            }).default('all'),
            reboot: z.enum(['never', 'if-required', 'always']).default('if-required'),
          })
          .optional(),
      })
      .describe('what to upgrade to: a Kubernetes version and/or OS packages'),
    stages: z
      .array(
        z.strictObject({
          name: name('stage name'),
          clusters: z.array(text('cluster name')).min(1, 'a stage needs at least one cluster'),
          soak: duration('30d').default('0s').describe('wait after the stage, post-gates re-checked, before the next may start'),
          approval: z.enum(['none', 'required']).default('none'),
          parallelClusters: z.number().int().min(1).default(1),
        }),
      )
      .min(1, 'a plan needs at least one stage'),
    clusters: z.array(clusterSchema).min(1, 'a plan needs at least one cluster'),
    strategy: z
      .strictObject({
        workers: z
          .strictObject({
            maxUnavailable: z
              .union([z.number().int().min(1), z.string().regex(/^([1-9]\d?|100)%$/, 'expected a whole percentage from 1% to 100%')], {
                error: 'expected a number of nodes (2) or a percentage (25%)',
              })
              .default(1),
            canary: z.number().int().min(0).default(1).describe('nodes upgraded alone, first, before any batch'),
          })
          .prefault({}),
        drain: z
          .strictObject({
            timeout: duration('24h', 'must be more than 0s (kubectl drain --timeout=0s waits forever)').default('5m').describe('never forever: kubectl drain waits forever by default'),
            gracePeriod: duration('24h').optional().describe("default: each pod's terminationGracePeriodSeconds"),
            deleteEmptyDirData: z.boolean().default(true),
            ignoreDaemonSets: z.boolean().default(true),
            force: z.boolean().default(false).describe('also remove pods without a controller'),
          })
          .prefault({}),
        onFailure: z.enum(['rollback', 'rebuild', 'pause', 'abort']).default('pause'),
        rebuild: z
          .strictObject({
            version: z
              .enum(['previous', 'target'])
              .default('previous')
              .describe("onFailure: rebuild: the version a rebuilt worker is reinstalled at: the one it ran before the hop, or the hop's target (rolled forward on a clean machine); control-plane nodes rejoin at the version they ran before, k0s workers at the target"),
          })
          .prefault({}),
        maxFailedNodes: z.number().int().min(1).default(1).describe('circuit breaker per cluster'),
      })
      .prefault({}),
    gates: z
      .strictObject({
        pre: gateList().optional().describe('cluster gates before any change, added to the built-in pre gates (or re-parameterising one)'),
        post: gateList().optional().describe('cluster gates after the last node and during soak'),
        beforeNode: gateList().optional(),
        afterNode: gateList().optional(),
        wait: z
          .strictObject({
            interval: duration('10m', 'must be more than 0s').default('2s').describe('time from the start of one check of a gate after a change to the next (a slower check still rests a quarter of it): a fault is seen within one interval'),
            stableFor: z.number().int().min(1).max(100).default(3).describe('consecutive passing checks an after-node or post gate needs (a pass that then fails is a flap: it fails)'),
            timeout: duration('24h', 'must be more than 0s').default('5m').describe('how long an after-node or post gate may take to pass before it fails (nodes-ready: its own timeout)'),
          })
          .prefault({})
          .describe('how apply waits on gates after a change; pre and before-node gates check once'),
        skip: z
          .array(z.strictObject({ gate: text('gate'), reason: text('reason').describe('why this safe default is off; shown in every plan and check output') }))
          .optional()
          .describe('default gates turned off, each with a reason: the only way a default gate stops running'),
      })
      .prefault({}),
    hooks: z
      .strictObject({
        beforeStage: z.array(text('hook')).optional(),
        afterStage: z.array(text('hook')).optional(),
        beforeCluster: z.array(text('hook')).optional(),
        afterCluster: z.array(text('hook')).optional(),
        beforeNode: z.array(text('hook')).optional(),
        afterNode: z.array(text('hook')).optional(),
        onFailure: z.array(text('hook')).optional(),
        timeout: duration('24h', 'a hook timeout must be more than 0s').optional().describe('how long each hook may run before it is stopped and fails its point; default 10m'),
      })
      .prefault({}),
  }),
})

export type PlanDocument = z.output<typeof planSchema>
export type ClusterSpec = PlanDocument['spec']['clusters'][number]
export type NodeSpec = ClusterSpec['nodes'][number]
export type SshSpec = z.output<typeof sshSchema>
export type Strategy = PlanDocument['spec']['strategy']
export type StageSpec = PlanDocument['spec']['stages'][number]
