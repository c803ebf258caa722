import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { dirname, join } from 'node:path'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { append, journalLine, klogPrefix, servicePid } from './journal.js'
import type { NodePaths } from './paths.js'
import type { KubeProxyPod, NodeDistribution } from './types.js'

/**
 * The kube-proxy that runs on one node, as its own servers and logs show it (facts §2.6, §4.2, ports §7):
 *  - k3s: inside the k3s process — its version is the running k3s binary's, it is up while the unit is active, and it
 *    logs to the k3s journal;
 *  - kubeadm / k0s: the DaemonSet pod on this node — the fleet says which pod (name, uid, image version) runs here; it
 *    logs to /var/log/pods/kube-system_NAME_UID/kube-proxy/0.log in the CRI format, the file `kubectl logs` reads.
 * A failing sync (kube-proxy-sync-failure) is one failed iptables-restore per syncPeriod, counted in
 * kubeproxy_sync_proxy_rules_iptables_restore_failures_total, with kube-proxy's own log lines for that version.
 */
export interface KubeProxyHost {
  distribution: NodeDistribution
  node: string
  address: string
  paths: NodePaths
  /** The real syncPeriod the lab simulates (kube-proxy's default is 30s). */
  syncMs: number
  unitName: string
  /** The node's own unit: its state and the version it runs (k3s's kube-proxy is that binary). */
  unit: () => { active: boolean; version: string; sinceS: number }
  /** kubeadm/k0s inside a fleet: the kube-proxy pod the cluster has on this node, or undefined while it has none. */
  pod?: () => KubeProxyPod | undefined
  rebooting: () => boolean
}

export interface KubeProxyNow {
  up: boolean
  version: string
  /** When this kube-proxy process started (ms). */
  startedMs: number
  /** Its log: a CRI log file of the pod (kubeadm/k0s) or the k3s journal. */
  log: { file: string; cri: boolean; journalIdent?: string }
  pid: number
}

const FAILURES = 'kproxy-restore-failures'

/** Why the lab refuses kube-proxy-skew on a node: its kube-proxy version is the kube-proxy that runs there. */
export function kubeProxySkewRefusal(dist: NodeDistribution): string {
  return dist === 'k3s'
    ? 'kube-proxy-skew cannot happen on k3s: kube-proxy runs inside the k3s binary, always at the k3s version'
    : 'kube-proxy-skew is a cluster fault: the kube-proxy DaemonSet pod on the node lags (the lab fleet sets it), not a node fault'
}

/** Go's time.Duration String() for the durations kube-proxy prints (30s, 100ms, 1m0s, 1.5s). */
export function goDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`
  const s = ms / 1000
  if (s < 60) return `${+s.toFixed(9)}s`
  const m = Math.floor(s / 60)
  return `${m}m${+(s - m * 60).toFixed(9)}s`
}

/** kube-proxy logs in klog text up to 1.20 and structured (InfoS/ErrorS) from 1.21 on (pkg/proxy/iptables). */
export const structuredLogging = (version: string): boolean => {
  const m = /^v?(\d+)\.(\d+)/.exec(version)
  return !m || Number(m[1]) > 1 || Number(m[2]) >= 21
}

/** Prometheus text format of a float as Go's strconv 'g'-style exposition prints large values: 1.733038712e+09. */
function promFloat(n: number): string {
  const [m, e] = n.toExponential(9).split('e')
  const exp = Number(e)
  return `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`
}

export class KubeProxy {
  private timer?: NodeJS.Timeout
  private failingSinceMs?: number
  private format?: 'klog' | 'structured'

  constructor(private readonly host: KubeProxyHost) {}

  now(): KubeProxyNow {
    const h = this.host
    const u = h.unit()
    if (h.distribution === 'k3s') {
      return {
        up: u.active && !h.rebooting(), version: u.version, startedMs: u.sinceS * 1000, pid: servicePid(h.node),
        log: { file: join(h.paths.journal, `${h.unitName}.log`), cri: false, journalIdent: 'k3s' },
      }
    }
    const pod = h.pod ? h.pod() : this.standalonePod(u)
    if (!pod) return { up: false, version: '', startedMs: 0, pid: 1, log: { file: '', cri: true } }
    // k0s runs containers under its own containerd: they stop with k0s. kubeadm's survive a kubelet stop.
    const up = !h.rebooting() && (h.distribution === 'kubeadm' || u.active)
    const file = join(h.paths.root, `var/log/pods/kube-system_${pod.name}_${pod.uid}/kube-proxy/0.log`)
    return { up, version: pod.version, startedMs: pod.startedAt.getTime(), pid: 1, log: { file, cri: true } }
  }

  /** Without a fleet (a node on its own) the kubeadm/k0s kube-proxy pod runs the node's version since its start. */
  private standalonePod(u: { version: string; sinceS: number }): KubeProxyPod | undefined {
    if (!u.version) return undefined
    const version = u.version.replace(/\+.*$/, '')
    const h = createHash('sha256').update(`${this.host.node}/${version}`).digest('hex')
    return { name: `kube-proxy-${h.slice(0, 5)}`, uid: `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`, version, startedAt: new Date(u.sinceS * 1000) }
  }

  // ---------------------------------------------------------------- logs

  private write(k: KubeProxyNow, lines: string[], at: Date, stream: 'stderr' = 'stderr'): void {
    if (!k.log.file) return
    mkdirSync(dirname(k.log.file), { recursive: true })
    const text = k.log.cri
      ? lines.map((l) => `${at.toISOString().replace('Z', '000Z').replace(/\.(\d{3})000Z$/, '.$1000000Z')} ${stream} F ${l}\n`).join('')
      : lines.map((l) => journalLine(this.host.node, k.log.journalIdent!, k.pid, l, at)).join('')
    append(k.log.file, text)
  }

  /** A pod's log begins with kube-proxy's start-up lines (written once per pod, when the lab first sees it). */
  private ensureStarted(k: KubeProxyNow): void {
    if (!k.log.cri || !k.log.file || existsSync(k.log.file)) return
    const at = new Date(k.startedMs || Date.now())
    const s = structuredLogging(k.version)
    const l = (level: 'I' | 'E', src: string, msg: string) => klogPrefix(level, k.pid, src, at) + msg
    this.write(k, s
      ? [l('I', 'server_linux.go:69', '"Using iptables proxy"'), l('I', 'server.go:1050', `"Successfully retrieved node IP(s)" IPs=["${this.host.address}"]`),
         l('I', 'server_linux.go:165', '"Using iptables Proxier"'), l('I', 'server.go:872', `"Version info" version="${k.version}"`),
         l('I', 'shared_informer.go:320', 'Caches are synced for service config')]
      : [l('I', 'server_others.go:212', 'Using iptables Proxier.'), l('I', 'server.go:650', `Version: ${k.version}`),
         l('I', 'shared_informer.go:247', 'Caches are synced for service config')], at)
  }

  /** The pod's log as `kubectl logs` prints it (the CRI prefix removed); k3s: the journal lines. */
  readLog(): string {
    const k = this.now()
    if (!k.log.file) return ''
    this.ensureStarted(k)
    if (!existsSync(k.log.file)) return ''
    const text = readFileSync(k.log.file, 'utf8')
    return k.log.cri ? text.replace(/^\S+ (?:stdout|stderr) [FP] /gm, '') : text
  }

  // ---------------------------------------------------------------- sync loop

  private counterFile(): string {
    return join(this.host.paths.state, FAILURES)
  }

  failures(): number {
    const f = this.counterFile()
    return existsSync(f) ? Number(readFileSync(f, 'utf8')) || 0 : 0
  }

  /** One failed sync: the counter rises by one and kube-proxy logs the error and its retry. */
  private failOnce(): void {
    const k = this.now()
    if (!k.up) return
    this.ensureStarted(k)
    writeFileSync(this.counterFile(), `${this.failures() + 1}\n`)
    const at = new Date()
    const l = (level: 'I' | 'E', src: string, msg: string) => klogPrefix(level, k.pid, src, at) + msg
    const retry = goDuration(this.host.syncMs)
    const structured = this.format ? this.format === 'structured' : structuredLogging(k.version)
    this.write(k, structured
      ? [l('E', 'proxier.go:1562', '"Failed to execute iptables-restore" err=<'), '\texit status 1: iptables-restore: line 86 failed', ' > ipFamily="IPv4"',
         l('I', 'proxier.go:819', `"Sync failed" ipFamily="IPv4" retryingTime="${retry}"`)]
      : [l('E', 'proxier.go:1598', 'Failed to execute iptables-restore: exit status 1 (iptables-restore: line 86 failed'), ')',
         l('I', 'proxier.go:879', `Sync failed; retrying in ${retry}`)], at)
  }

  /** kube-proxy-sync-failure on: the first failed sync now, then one per syncPeriod (`intervalMs` overrides it). */
  startFailing(params: { format?: unknown; intervalMs?: unknown; since_ms?: unknown } = {}): void {
    this.stopFailing()
    this.format = params.format === 'klog' || params.format === 'structured' ? params.format : undefined
    this.failingSinceMs = Number(params.since_ms) || Date.now()
    this.failOnce()
    this.timer = setInterval(() => this.failOnce(), Math.max(20, Number(params.intervalMs) || this.host.syncMs))
    this.timer.unref()
  }

  stopFailing(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    this.failingSinceMs = undefined
  }

  // ---------------------------------------------------------------- servers (10249 metrics, 10256 healthz)

  /** When rules were last synced (ms): frozen at the first failure while failing, else a moment ago. */
  private lastSyncMs(k: KubeProxyNow): number {
    if (this.failingSinceMs !== undefined) return Math.max(this.failingSinceMs, k.startedMs)
    return Math.max(k.startedMs, Date.now() - 1000)
  }

  serve(port: number, req: IncomingMessage, res: ServerResponse): void {
    const k = this.now()
    const path = (req.url ?? '/').split('?')[0]
    const send = (code: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(code, { 'Content-Type': type, 'X-Content-Type-Options': 'nosniff' })
      res.end(body)
    }
    if (port === 10249 && path === '/metrics') return send(200, this.metrics(k), 'text/plain; version=0.0.4; charset=utf-8')
    if (port === 10249 && path === '/proxyMode') return send(200, 'iptables')
    if ((port === 10256 && (path === '/healthz' || path === '/livez')) || (port === 10249 && path === '/healthz')) {
      const { code, body } = this.healthz(k)
      return send(code, body, 'application/json')
    }
    send(404, '404 page not found\n')
  }

  private metrics(k: KubeProxyNow): string {
    const v = k.version
    const minor = /^v?\d+\.(\d+)/.exec(v)?.[1] ?? ''
    const commit = createHash('sha1').update(v).digest('hex')
    return [
      "# HELP kubernetes_build_info [ALPHA] A metric with a constant '1' value labeled by major, minor, git version, git commit, git tree state, build date, Go version, and compiler from which Kubernetes was built, and platform on which it is running.",
      '# TYPE kubernetes_build_info gauge',
      `kubernetes_build_info{build_date="2024-08-14T19:00:00Z",compiler="gc",git_commit="${commit}",git_tree_state="clean",git_version="${v}",go_version="go1.22.5",major="1",minor="${minor}",platform="linux/amd64"} 1`,
      '# HELP kubeproxy_sync_proxy_rules_iptables_restore_failures_total [ALPHA] Cumulative proxy iptables restore failures',
      '# TYPE kubeproxy_sync_proxy_rules_iptables_restore_failures_total counter',
      `kubeproxy_sync_proxy_rules_iptables_restore_failures_total ${this.failures()}`,
      '# HELP kubeproxy_sync_proxy_rules_last_timestamp_seconds [ALPHA] The last time proxy rules were successfully synced',
      '# TYPE kubeproxy_sync_proxy_rules_last_timestamp_seconds gauge',
      `kubeproxy_sync_proxy_rules_last_timestamp_seconds ${promFloat(Math.floor(this.lastSyncMs(k) / 1000))}`,
      '# HELP kubeproxy_sync_proxy_rules_iptables_total [ALPHA] Total number of iptables rules owned by kube-proxy',
      '# TYPE kubeproxy_sync_proxy_rules_iptables_total gauge',
      'kubeproxy_sync_proxy_rules_iptables_total{table="filter"} 6',
      'kubeproxy_sync_proxy_rules_iptables_total{table="nat"} 42',
      '',
    ].join('\n')
  }

  /** kube-proxy's healthz: 503 once rules are older than 2 × syncPeriod (NewProxierHealthServer(…, 2*syncPeriod)). */
  private healthz(k: KubeProxyNow): { code: number; body: string } {
    const now = Date.now()
    const last = this.lastSyncMs(k)
    // Go's Time.String() with the monotonic reading, as kube-proxy's %q prints it: "… +0000 UTC m=+12.345678901".
    const gotime = (ms: number) => {
      const frac = `${String(ms % 1000).padStart(3, '0')}${String(100_000 + (ms % 899_999)).slice(-6)}`
      const mono = Math.max(0, ms - k.startedMs) / 1000
      return `${new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, '')}.${frac} +0000 UTC m=+${mono.toFixed(9)}`
    }
    const body = `{"lastUpdated": "${gotime(last)}","currentTime": "${gotime(now)}", "nodeEligible": true}`
    const stale = this.failingSinceMs !== undefined && now - last >= 2 * this.host.syncMs
    return { code: stale ? 503 : 200, body }
  }
}
