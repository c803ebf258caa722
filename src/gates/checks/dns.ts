import { parseDuration } from '../../util/duration.js'
import { clip, verdict, type Finding } from '../evidence.js'
import { describeProbe, runProbePod } from '../read/probe-pod.js'
import { kubernetesServiceIP } from '../read/service-ip.js'
import type { Gate } from '../types.js'

/** nslookup (busybox in the default image); images without it but with glibc's getent answer in the same shape. */
const DNS_SCRIPT = [
  'if command -v nslookup >/dev/null 2>&1; then nslookup kubernetes.default.svc',
  "else getent hosts kubernetes.default.svc | while read -r ip name rest; do printf 'Name:\t%s\nAddress: %s\n' \"$name\" \"$ip\"; done; fi",
].join('\n')

export interface DnsParams { probeImage: string; podTimeout: string }

/**
 * Cluster DNS as a workload sees it (facts §4.6): a probe pod resolves kubernetes.default.svc (through its search
 * path, as applications do) and must get the live `kubernetes` Service ClusterIP back.
 */
export const dnsGate: Gate<DnsParams> = {
  id: 'dns',
  async check(ctx, p) {
    const findings: Finding[] = []
    const svc = await kubernetesServiceIP(ctx)
    const expected = svc.live ?? svc.planned
    const o = await runProbePod(ctx, { purpose: 'dns', image: p.probeImage, script: DNS_SCRIPT, timeoutMs: parseDuration(p.podTimeout) ?? 90_000 })
    const source = `${describeProbe(o)}: nslookup (or getent hosts) kubernetes.default.svc`
    const answers = parseNslookup(o.logs)
    if (o.problem) findings.push({ status: 'unknown', source, observed: clip(o.logs || o.problem), problem: o.problem })
    // busybox nslookup exits 1 when the AAAA query finds nothing even though A answered: the answers decide.
    else if (answers.length === 0) findings.push({ status: 'fail', source, observed: clip(o.logs) || `exit ${o.exitCode}`, problem: 'kubernetes.default.svc does not resolve from a pod' })
    else if (expected && !answers.includes(expected)) findings.push({ status: 'fail', source, observed: `answered ${answers.join(', ')}; the kubernetes Service is ${expected}`, problem: `kubernetes.default.svc resolves to ${answers.join(', ')}, not ${expected}` })
    else findings.push({ status: 'pass', source, observed: `kubernetes.default.svc → ${answers.join(', ')}` })
    if (!o.deleted) findings.push({ status: 'warn', source, observed: 'the probe pod could not be deleted', problem: `probe pod ${o.pod} left behind` })
    return verdict('dns', findings, { ok: `kubernetes.default.svc resolves to ${expected ?? answers.join(', ')} from a pod`, hint: 'check CoreDNS pods and logs (system-pods gate), the kube-dns Service and kube-proxy' })
  },
}

/**
 * The answer addresses of busybox or bind nslookup: the lines after `Name:` (busybox prints the server's own
 * `Address:` first, bind `Address: 10.96.0.10#53`, which are skipped).
 */
export function parseNslookup(text: string): string[] {
  const out: string[] = []
  let inAnswer = false
  for (const line of text.split('\n')) {
    if (/^Name:\s/.test(line)) { inAnswer = true; continue }
    // `Address: 10.96.0.1`, busybox ≤1.28 `Address 1: 10.96.0.1 kubernetes.default.svc.cluster.local`.
    const m = /^Address(?:\s+\d+)?:\s*([0-9a-fA-F.:]+?)(#\d+)?(?:\s+\S+)?$/.exec(line.trim())
    if (m && inAnswer && !m[2]) out.push(m[1]!)
  }
  return [...new Set(out)]
}
