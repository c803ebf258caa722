import type { Pod } from 'kubernetes-types/core/v1.js'
import { formatDuration, parseDuration } from '../../util/duration.js'
import { kubeNodesInScope } from '../context.js'
import { clip, errorText, verdict, type Finding } from '../evidence.js'
import { CURL_ORDERED, curlTransfers, type CurlTransfer } from '../read/curl.js'
import { readNode, SCRIPT_ENV } from '../read/node.js'
import { sectionsOf } from '../read/sections.js'
import { maxOf, parsePrometheus, sumOf } from '../read/prom.js'
import type { Gate, GateContext } from '../types.js'

export interface KubeProxySyncParams { maxSyncAge: string; logWindow: string }

export const FAILURE_COUNTERS = [
  'kubeproxy_sync_proxy_rules_iptables_restore_failures_total',
  'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total',
  'kubeproxy_sync_proxy_rules_nftables_sync_failures_total',
]
export const LAST_SYNC = 'kubeproxy_sync_proxy_rules_last_timestamp_seconds'
const METRICS_URL = 'http://127.0.0.1:10249/metrics'
const HEALTHZ_URL = 'http://127.0.0.1:10256/healthz'
/** Both log forms (structured and klog), facts §4.2. */
export const FAILURE_LOG = /Failed to execute iptables-restore|Sync failed/

/**
 * The counter as last seen per node, for this process: the counter's *increase* between checks is the signal
 * (a counter that rose once months ago is history). apply's wait loop checks again and sees any increase.
 */
const lastCounter = new Map<string, number>()

/**
 * kube-proxy actually programming the data plane (incident kubelet-kube-proxy-skew: iptables-restore kept failing,
 * Services broke while every pod looked healthy). Per node: the failure counters must not have risen since the last
 * check, the last successful sync must be recent (< maxSyncAge), /healthz on :10256 must answer 200, and its recent
 * log must hold no "Failed to execute iptables-restore" / "Sync failed". A missing metric is unknown, never zero.
 */
export const kubeProxySyncGate: Gate<KubeProxySyncParams> = {
  id: 'kube-proxy-sync',
  async check(ctx, p) {
    const maxAge = parseDuration(p.maxSyncAge) ?? 90_000
    const windowS = Math.round((parseDuration(p.logWindow) ?? 600_000) / 1000)
    const findings: Finding[] = []
    const pods = ctx.distribution === 'k3s' ? undefined : await kubeProxyPods(ctx).catch((err: unknown) => errorText(err))
    // Only where a kubelet runs is there a kube-proxy (not on a k0s controller without a worker).
    await Promise.all(kubeNodesInScope(ctx).map(async (n) => {
      const k3sUnits = n.role === 'control-plane' ? '-u k3s' : '-u k3s-agent'
      const script = [SCRIPT_ENV,
        // One curl for both ports: a curl start is most of what this read costs a node (read/curl.ts).
        `echo '@@http'; curl ${CURL_ORDERED} --max-time 5 ${METRICS_URL} ${HEALTHZ_URL}`,
        ...(ctx.distribution === 'k3s' ? [`echo '@@log'; journalctl ${k3sUnits} --since=-${windowS}s --no-pager -o cat 2>&1 | grep -E 'Failed to execute iptables-restore|Sync failed' | tail -n 3`] : []),
      ].join('\n')
      const r = await readNode(ctx, n.target, { script }, { timeoutMs: 30_000 })
      if (r.error) return void findings.push({ status: 'unknown', source: `node ${n.name}`, observed: r.error, problem: `${n.name} unreachable over SSH` })
      const s = sectionsOf(r.stdout)
      const http = s.get('http') ?? ''
      const [metrics, healthz] = curlTransfers(http)
      findings.push(...judgeMetrics(ctx, n.name, metrics ?? { body: http, code: '000' }, maxAge))
      findings.push(judgeHealthz(n.name, healthz ?? { body: http, code: '000' }))
      const lastSync = metrics?.error ? undefined : maxOf(parsePrometheus(metrics?.body ?? ''), LAST_SYNC)
      const logOpts = { now: ctx.now(), ...(lastSync !== undefined ? { lastSyncSec: lastSync } : {}) }
      if (ctx.distribution === 'k3s') findings.push(judgeLog(n.name, `node ${n.name}: journalctl ${k3sUnits} --since=-${windowS}s`, s.get('log') ?? '', logOpts))
      else if (typeof pods === 'string') findings.push({ status: 'unknown', source: 'kubectl get pods -n kube-system -l k8s-app=kube-proxy', observed: pods, problem: 'kube-proxy pods unreadable' })
      else {
        const pod = pods?.find((x) => x.spec?.nodeName === n.name && !x.metadata?.deletionTimestamp)
        if (!pod) findings.push({ status: 'fail', source: 'kubectl get pods -n kube-system -l k8s-app=kube-proxy', observed: `no kube-proxy pod on ${n.name}`, problem: `${n.name} has no kube-proxy pod` })
        else {
          const name = pod.metadata!.name!
          const source = `kubectl logs -n kube-system ${name} --since=${windowS}s`
          const log = await ctx.kubectl.run(['logs', '-n', 'kube-system', name, `--since=${windowS}s`]).then((t) => t, (err: unknown) => ({ error: errorText(err) }))
          findings.push(typeof log === 'string' ? judgeLog(n.name, source, log.split('\n').filter((l) => FAILURE_LOG.test(l)).slice(-3).join('\n'), logOpts) : { status: 'unknown', source, observed: log.error, problem: `${n.name}: kube-proxy log unreadable` })
        }
      }
    }))
    return verdict('kube-proxy-sync', findings, {
      ok: `kube-proxy syncing on ${kubeNodesInScope(ctx).length} node(s): last sync within ${p.maxSyncAge}, no failures`,
      hint: 'kube-proxy cannot program the data plane: check its version against the kubelet (version-skew), the iptables backend (iptables-backend gate) and its log',
    })
  },
}

async function kubeProxyPods(ctx: GateContext): Promise<Pod[]> {
  return (await ctx.kubectl.pods('kube-system', 'k8s-app=kube-proxy')).items ?? []
}

/** A transfer that never got an HTTP answer, or broke off: what curl said, else what came. */
const noAnswer = (t: CurlTransfer): string | undefined => t.error ?? (t.code === '000' ? clip(t.body) || 'no answer' : undefined)

/** The metrics transfer: its last sync must be recent and its failure counters must not have risen. */
export function judgeMetrics(ctx: Pick<GateContext, 'cluster' | 'now'>, node: string, t: CurlTransfer, maxAgeMs: number): Finding[] {
  const source = `node ${node}: curl ${METRICS_URL}`
  const lost = noAnswer(t)
  if (lost !== undefined) return [{ status: 'unknown', source, observed: lost, problem: `${node}: kube-proxy metrics unreachable` }]
  const samples = parsePrometheus(t.body)
  const out: Finding[] = []
  const last = maxOf(samples, LAST_SYNC)
  if (last === undefined) out.push({ status: 'unknown', source, observed: `${LAST_SYNC} missing`, problem: `${node}: kube-proxy reports no last sync time` })
  else {
    const age = ctx.now().getTime() - last * 1000
    const observed = `last successful sync ${new Date(last * 1000).toISOString()} (${formatDuration(Math.max(0, Math.round(age)))} ago)`
    out.push(age > maxAgeMs ? { status: 'fail', source, observed, problem: `${node}: kube-proxy last synced ${formatDuration(Math.round(age))} ago (max ${formatDuration(maxAgeMs)})` } : { status: 'pass', source, observed })
  }
  const counters = FAILURE_COUNTERS.map((c) => [c, sumOf(samples, c)] as const).filter(([, v]) => v !== undefined) as [string, number][]
  if (counters.length === 0) out.push({ status: 'unknown', source, observed: 'no sync-failure counter exported', problem: `${node}: kube-proxy exports no failure counter` })
  else {
    const total = counters.reduce((a, [, v]) => a + v, 0)
    const key = `${ctx.cluster}/${node}`
    const before = lastCounter.get(key)
    lastCounter.set(key, total)
    const observed = `${counters.map(([c, v]) => `${c} ${v}`).join(', ')}${before !== undefined ? ` (previous check: ${before})` : ''}`
    out.push(before !== undefined && total > before ? { status: 'fail', source, observed, problem: `${node}: kube-proxy sync failures rose ${before} → ${total}` } : { status: 'pass', source, observed })
  }
  return out
}

/** The healthz transfer: 200 while kube-proxy syncs, 503 once its last sync is too old. */
export function judgeHealthz(node: string, t: CurlTransfer): Finding {
  const source = `node ${node}: curl ${HEALTHZ_URL}`
  const lost = noAnswer(t)
  if (lost !== undefined) return { status: 'fail', source, observed: lost, problem: `${node}: kube-proxy healthz not answering` }
  const body = clip(t.body, 200)
  return t.code === '200' ? { status: 'pass', source, observed: `HTTP 200 ${body}` } : { status: 'fail', source, observed: `HTTP ${t.code} ${body}`, problem: `${node}: kube-proxy healthz HTTP ${t.code} (last sync too old)` }
}

/**
 * Failure lines in the recent log fail the gate, unless kube-proxy has synced successfully since the last of them
 * (the log keeps a fixed problem's lines for the whole window). A line whose time cannot be read counts as current.
 */
export function judgeLog(node: string, source: string, matches: string, o: { lastSyncSec?: number; now?: Date } = {}): Finding {
  const lines = matches.split('\n').filter((l) => FAILURE_LOG.test(l))
  if (!lines.length) return { status: 'pass', source, observed: 'no "Failed to execute iptables-restore" / "Sync failed" lines' }
  const last = lineTime(lines[lines.length - 1]!, o.now ?? new Date())
  if (last && o.lastSyncSec !== undefined && o.lastSyncSec * 1000 > last.getTime()) {
    return { status: 'pass', source, observed: `last failure at ${last.toISOString()}, synced successfully since (${new Date(o.lastSyncSec * 1000).toISOString()}): ${clip(lines[lines.length - 1]!, 200)}` }
  }
  return { status: 'fail', source, observed: clip(lines.join('\n'), 500), problem: `${node}: kube-proxy log says ${/Sync failed/.test(lines.join()) ? '"Sync failed"' : '"Failed to execute iptables-restore"'}` }
}

/** The time of a klog line (`E1201 08:56:16.260000 …`, no year) or a syslog-style journal line (`Dec 01 08:56:16 host …`). */
export function lineTime(line: string, now: Date): Date | undefined {
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
  let mon: number, day: number, hms: string[]
  const k = /(?:^|\s)[IWEF](\d{2})(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d+)?\s/.exec(line)
  const j = /^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})/.exec(line)
  if (k) [mon, day, hms] = [Number(k[1]) - 1, Number(k[2]), [k[3]!, k[4]!, `${k[5]}${k[6] ?? ''}`]]
  else if (j && MONTHS.includes(j[1]!)) [mon, day, hms] = [MONTHS.indexOf(j[1]!), Number(j[2]), [j[3]!, j[4]!, j[5]!]]
  else return undefined
  const at = (y: number) => new Date(Date.UTC(y, mon, day, Number(hms[0]), Number(hms[1]), 0) + Number(hms[2]) * 1000)
  const t = at(now.getUTCFullYear())
  // No year in the line: one more than a day ahead of now was last year (a December line read in January).
  return t.getTime() > now.getTime() + 86_400_000 ? at(now.getUTCFullYear() - 1) : t
}

