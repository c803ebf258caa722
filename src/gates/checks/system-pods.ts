import type { Pod } from 'kubernetes-types/core/v1.js'
import { verdict, type Finding } from '../evidence.js'
import { PROBE_LABEL } from '../read/probe-pod.js'
import type { Gate } from '../types.js'

export interface SystemPodsParams { namespaces: string[] }

const BAD_WAITING = /CrashLoopBackOff|ErrImagePull|ImagePullBackOff|CreateContainerConfigError|CreateContainerError|InvalidImageName|RunContainerError/
/**
 * A pod younger than this may still be starting, and one less than this past its deletion time may still be going:
 * neither is a finding yet.
 */
const STARTING_MS = 60_000

/**
 * kube-system pods Running and Ready, none crash-looping, and CoreDNS (k8s-app=kube-dns) present with every pod
 * Ready (facts §4.6). Pods of Jobs that finished (Succeeded) are ignored; kupgrade's own probe pods too; at a node's
 * point, the pods on the other nodes of its batch still under way (GateContext.inFlight).
 */
export const systemPodsGate: Gate<SystemPodsParams> = {
  id: 'system-pods',
  async check(ctx, p) {
    const findings: Finding[] = []
    // Pods judged, apart from the CoreDNS finding: what the summary counts.
    let judged = 0
    const underWay = new Set(ctx.inFlight ?? [])
    // The pods left out, by the node they run on.
    let leftOut = 0
    const leftOutOn = new Set<string>()
    for (const ns of p.namespaces) {
      const pods = (await ctx.kubectl.pods(ns)).items ?? []
      for (const pod of pods) {
        if (pod.metadata?.labels?.[PROBE_LABEL] === 'kupgrade') continue
        if (underWay.has(pod.spec?.nodeName ?? '')) {
          leftOut++
          leftOutOn.add(pod.spec!.nodeName!)
          continue
        }
        findings.push(judgePod(pod, ctx.now()))
        judged++
      }
      if (ns === 'kube-system') {
        const dns = pods.filter((x) => x.metadata?.labels?.['k8s-app'] === 'kube-dns' && !x.metadata?.deletionTimestamp)
        const ready = dns.filter(isReady)
        // A replica not Ready yet because it is new (a Deployment rolling after kubeadm upgrade apply, one evicted by a
        // drain and started elsewhere) is starting, as judgePod says of it, while another serves: not a failure yet.
        const starting = dns.filter((x) => !isReady(x) && judgePod(x, ctx.now()).status === 'warn').length
        const source = 'kubectl get pods -n kube-system -l k8s-app=kube-dns'
        const observed = `${ready.length}/${dns.length} CoreDNS pods Ready${starting ? `, ${starting} starting` : ''}`
        findings.push(dns.length === 0
          ? { status: 'fail', source, observed: 'no CoreDNS pods', problem: 'CoreDNS has no pods' }
          : ready.length === dns.length
            ? { status: 'pass', source, observed }
            : ready.length > 0 && ready.length + starting === dns.length
              ? { status: 'warn', source, observed, problem: `CoreDNS ${ready.length}/${dns.length} Ready, ${starting} starting` }
              : { status: 'fail', source, observed, problem: `CoreDNS ${ready.length}/${dns.length} Ready` })
      }
    }
    if (leftOut > 0) {
      const names = [...leftOutOn].sort().join(', ')
      findings.push({ status: 'pass', source: `kubectl get pods (nodes ${names})`, observed: `${leftOut} pod${leftOut === 1 ? '' : 's'} on ${names} not judged here: under way in the same batch, their own after-node gates judge them` })
    }
    return verdict('system-pods', findings, {
      ok: `${judged} system pods Running and Ready`,
      hint: 'kubectl -n kube-system describe pod / logs --previous for the failing pods; do not start an upgrade on a broken control plane or DNS',
    })
  },
}

const isReady = (p: Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false

export function judgePod(pod: Pod, now: Date): Finding {
  const name = `${pod.metadata?.namespace}/${pod.metadata?.name}`
  const source = `kubectl get pod ${name}${pod.spec?.nodeName ? ` (node ${pod.spec.nodeName})` : ''}`
  const phase = pod.status?.phase ?? 'Unknown'
  const statuses = pod.status?.containerStatuses ?? []
  const restarts = statuses.reduce((n, c) => n + (c.restartCount ?? 0), 0)
  const observed = `${phase}, ready ${statuses.filter((c) => c.ready).length}/${statuses.length || pod.spec?.containers.length || 0}, restarts ${restarts}`
  if (phase === 'Succeeded') return { status: 'pass', source, observed }
  // A pod being deleted (a drain's eviction on another node of the batch, a DaemonSet or Deployment rolling to a new
  // image after kubeadm upgrade apply) stops being Ready before it goes; its controller's replacement is what counts,
  // as kubectl rollout status judges. Its deletionTimestamp is when it should be gone (the server sets it to the
  // request's time plus the grace period): well past that, it is stuck (a node gone silent, a finalizer).
  const deleting = pod.metadata?.deletionTimestamp
  if (deleting) {
    const overdue = now.getTime() - Date.parse(deleting)
    return overdue < STARTING_MS
      ? { status: 'warn', source, observed: `${observed}; Terminating`, problem: `${name} Terminating` }
      : { status: 'fail', source, observed: `${observed}; Terminating, due to be gone at ${deleting}`, problem: `${name} stuck Terminating` }
  }
  const bad = statuses.find((c) => BAD_WAITING.test(c.state?.waiting?.reason ?? ''))
  if (bad) {
    const last = bad.lastState?.terminated
    return { status: 'fail', source, observed: `${observed}; container ${bad.name} ${bad.state!.waiting!.reason}${bad.state?.waiting?.message ? `: ${bad.state.waiting.message}` : ''}${last ? ` (last exit ${last.exitCode}${last.reason ? ` ${last.reason}` : ''})` : ''}`, problem: `${name} ${bad.state!.waiting!.reason}` }
  }
  const age = now.getTime() - Date.parse(pod.status?.startTime ?? pod.metadata?.creationTimestamp ?? new Date(0).toISOString())
  if (phase !== 'Running') return age < STARTING_MS && phase === 'Pending' ? { status: 'warn', source, observed, problem: `${name} still starting` } : { status: 'fail', source, observed, problem: `${name} ${phase}` }
  if (!isReady(pod)) return age < STARTING_MS ? { status: 'warn', source, observed, problem: `${name} not Ready yet` } : { status: 'fail', source, observed, problem: `${name} Running but not Ready` }
  return { status: 'pass', source, observed }
}
