import { randomBytes } from 'node:crypto'
import type { Pod } from 'kubernetes-types/core/v1.js'
import { classifyKubectlFailure, hasStatusReason, type FailureKind } from '../../transport/kubectl/classify.js'
import { observeUntil } from '../../transport/kubectl/observe.js'
import type { GateContext } from '../types.js'
import { errorText } from '../evidence.js'

/** How long a probe pod may stay Unschedulable before the gate says so (scheduling retries within seconds). */
export const UNSCHEDULABLE_GRACE_MS = 15_000
/** Where kubectl cannot watch: how long a probe pod is polled every half second before every two seconds. */
const QUICK_POLL_MS = 10_000

export interface ProbeSpec {
  /** Short purpose, part of the pod name: `api-vip`, `dns`. */
  purpose: string
  image: string
  /** `sh -c` script; values come in through `env`, never spliced into the script. */
  script: string
  env?: Record<string, string>
  /** Pin to a node (node-scope gates); otherwise the scheduler places it. */
  nodeName?: string
  timeoutMs: number
}

export interface ProbeOutcome {
  pod: string
  phase?: string
  exitCode?: number
  logs: string
  node?: string
  /** Why it did not run to completion (not scheduled, image not pulled, timed out). */
  problem?: string
  /** Whether no pod is left: deleted, or never made. False means the delete failed and it must be removed by hand. */
  deleted: boolean
}

export const PROBE_NAMESPACE = 'default'
export const PROBE_LABEL = 'app.kubernetes.io/managed-by'

/**
 * kubectl failures after which the pod surely does not exist: the request was never sent (an unusable kubeconfig, a
 * certificate not trusted, nothing listening at the address), or the API refused it.
 */
const NOT_CREATED = new Set<FailureKind>(['config', 'tls', 'unreachable', 'client'])

/**
 * Runs a short-lived probe pod: a real Pod (restartPolicy Never, no service account token, tolerating every taint,
 * a hard activeDeadlineSeconds) whose exit code and logs are the observation. It is always deleted, whatever
 * happened: the only write a gate makes. Waiting for it to finish is part of this one check, not a gate retry.
 */
export async function runProbePod(ctx: GateContext, spec: ProbeSpec): Promise<ProbeOutcome> {
  const name = `kupgrade-probe-${spec.purpose}-${randomBytes(3).toString('hex')}`
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: PROBE_NAMESPACE, labels: { [PROBE_LABEL]: 'kupgrade', 'kupgrade.dev/probe': spec.purpose } },
    spec: {
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      activeDeadlineSeconds: Math.max(10, Math.ceil(spec.timeoutMs / 1000)),
      terminationGracePeriodSeconds: 0,
      tolerations: [{ operator: 'Exists' }],
      ...(spec.nodeName ? { nodeName: spec.nodeName } : {}),
      containers: [{
        name: 'probe',
        image: spec.image,
        command: ['sh', '-c', spec.script],
        env: Object.entries(spec.env ?? {}).map(([n, value]) => ({ name: n, value })),
        resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
        securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, runAsUser: 65534, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
      }],
    },
  }
  const out: ProbeOutcome = { pod: name, logs: '', deleted: false }
  const remove = () => ctx.kubectl.run(['delete', 'pod', name, '-n', PROBE_NAMESPACE, '--ignore-not-found', '--wait=false'], { retry: true }).then(() => true, () => false)
  try {
    await ctx.kubectl.run(['create', '-f', '-', '-o', 'name'], { stdin: JSON.stringify(pod), ...(ctx.signal ? { signal: ctx.signal } : {}) })
  } catch (err) {
    // The name is this call's own (a random suffix): AlreadyExists means an earlier send of this same create landed
    // although its answer was lost (a 504 Timeout after storage went on, sent again by kubectl), so the pod is ours
    // and runs. Any other failure may still have left it behind (a create that timed out can land): it is deleted by
    // name either way, never left in the cluster — unless the create was never sent or was refused (NOT_CREATED):
    // then there is no pod, and a delete could not be sent either, so none is tried and none is reported left behind.
    if (!hasStatusReason(err, 'AlreadyExists')) {
      out.problem = `could not create the probe pod: ${errorText(err)}`
      out.deleted = NOT_CREATED.has(classifyKubectlFailure(err instanceof Error ? err.message : String(err))) || (await remove())
      return out
    }
  }
  try {
    const deadline = Date.now() + spec.timeoutMs
    let unschedulableSince: number | undefined
    // One watch follows the pod from creation to its end: every poll missed would hold the gate (and a node's turn).
    // Where kubectl cannot watch, it is polled every half second for its first seconds, then every two.
    const p = await observeUntil<Pod, Pod>(ctx.kubectl, ['pod', name, '-n', PROBE_NAMESPACE], (seen) => {
      if (seen.error) throw seen.error
      const p = seen.obj
      const phase = p.status?.phase
      if (phase === 'Succeeded' || phase === 'Failed') return p
      // The scheduler found no node for a pod asking 10m CPU and 16Mi: the cluster is full or every node refuses it.
      // That is the answer; waiting out the pod timeout would only hold the gate (and the run) for nothing.
      const unschedulable = p.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable')
      if (unschedulable) {
        unschedulableSince ??= Date.now()
        if (Date.now() - unschedulableSince >= UNSCHEDULABLE_GRACE_MS) {
          out.problem = `probe pod could not be scheduled for ${UNSCHEDULABLE_GRACE_MS / 1000}s${unschedulable.message ? `: ${unschedulable.message}` : ''}`
          return p
        }
      } else unschedulableSince = undefined
      const waiting = p.status?.containerStatuses?.[0]?.state?.waiting
      if (waiting && /ErrImagePull|ImagePullBackOff|InvalidImageName|CreateContainerConfigError/.test(waiting.reason ?? '')) {
        out.problem = `probe pod cannot start: ${waiting.reason}${waiting.message ? ` (${waiting.message})` : ''}`
        return p
      }
      if (Date.now() >= deadline) {
        const cond = p.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False')
        out.problem = `probe pod did not finish within ${Math.round(spec.timeoutMs / 1000)}s (phase ${phase ?? 'unknown'}${cond?.message ? `: ${cond.message}` : ''})`
        return p
      }
      return undefined
    }, { quietMs: 2_000, pollMs: (elapsed) => (elapsed < QUICK_POLL_MS ? 500 : 2_000), ...(ctx.signal ? { signal: ctx.signal } : {}), ...(ctx.log ? { log: ctx.log } : {}) })
    out.phase = p.status?.phase ?? 'unknown'
    if (p.spec?.nodeName) out.node = p.spec.nodeName
    const term = p.status?.containerStatuses?.[0]?.state?.terminated
    if (term) out.exitCode = term.exitCode
    if (out.phase === 'Succeeded' || out.phase === 'Failed' || term) {
      out.logs = await ctx.kubectl.run(['logs', name, '-n', PROBE_NAMESPACE, '-c', 'probe']).catch((err: unknown) => `(logs unreadable: ${errorText(err)})`)
    }
    return out
  } catch (err) {
    out.problem ??= `could not read the probe pod: ${errorText(err)}`
    return out
  } finally {
    out.deleted = await remove()
  }
}

/**
 * An evidence source: where the probe ran and how it ended. The gates observe its logs, or its problem when it printed
 * nothing (it never ran): that problem is then the observation, and is not said in the source as well.
 */
export function describeProbe(o: ProbeOutcome): string {
  const ended = o.problem ? (o.logs ? o.problem : undefined) : `${o.phase}${o.exitCode !== undefined ? `, exit ${o.exitCode}` : ''}`
  return `pod ${PROBE_NAMESPACE}/${o.pod}${o.node ? ` on ${o.node}` : ''}${ended ? `: ${ended}` : ''}${o.deleted ? '' : ' (NOT deleted: remove it by hand)'}`
}
