import { shellQuote } from '../../transport/quote.js'
import { parseDuration } from '../../util/duration.js'
import { nodesInScope } from '../context.js'
import { clip, verdict, type Finding } from '../evidence.js'
import { readNode, SCRIPT_ENV } from '../read/node.js'
import { CURL_ORDERED, curlTransfers } from '../read/curl.js'
import { describeProbe, runProbePod } from '../read/probe-pod.js'
import { kubernetesServiceIP } from '../read/service-ip.js'
import { probeHttps } from '../read/tls.js'
import type { Gate } from '../types.js'

export interface ApiVipParams { timeout: string; from: ('runner' | 'nodes' | 'pod')[]; probeImage: string; podTimeout: string }

/**
 * The probe pod's check, through the Service (the pod's own environment) and the plan's endpoint: both in one curl, as
 * from the nodes. curl exits with the last transfer's code, so an earlier one that failed is found by its message
 * (`curl: (28) …`, in order thanks to --stderr -). Its log is the gate's evidence.
 */
export const API_VIP_POD_SCRIPT = ['set -- -o /dev/null "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/readyz"',
  '[ -z "$KUPGRADE_API_ENDPOINT" ] || set -- "$@" -o /dev/null "$KUPGRADE_API_ENDPOINT/readyz"',
  `out=$(curl -k -sS --stderr - -w 'probe %{url_effective}: HTTP %{http_code}\\n' --max-time "$KUPGRADE_TIMEOUT" "$@"); rc=$?`,
  'printf "%s\\n" "$out"', 'case "$out" in *"curl: ("*) exit 1 ;; esac', 'exit $rc'].join('\n')

/**
 * The API reachable along every path a workload uses (incident k0s-upgrade-coredns-api-vip: after an upgrade no pod
 * could reach 10.96.0.1:443 while the API looked fine from outside). /readyz through the plan's apiEndpoint from the
 * runner; from each node over SSH to the endpoint and to the `kubernetes` ClusterIP (checked against the live
 * Service); from a probe pod through the Service and the endpoint. Any HTTP answer proves the path (401/403 is a
 * hardened cluster refusing anonymous /readyz); 5xx means the apiserver itself is not ready.
 */
export const apiVipGate: Gate<ApiVipParams> = {
  id: 'api-vip',
  async check(ctx, p) {
    const timeoutMs = parseDuration(p.timeout) ?? 5_000
    const findings: Finding[] = []
    const work: Promise<void>[] = []
    const endpoint = ctx.apiEndpoint
    // No pod can run on a machine without a kubelet (a k0s controller without --enable-worker): its node check has
    // no pod path to probe; the cluster check's probe pod runs on a Node.
    const podless = ctx.node !== undefined && ctx.nodeFacts?.[ctx.node]?.kubernetesNode === false
    if (p.from.includes('pod') && !podless) {
      const script = API_VIP_POD_SCRIPT
      // The pod reaches the Service through its own environment: it starts now, while the Service is read.
      work.push(runProbePod(ctx, {
        purpose: 'api-vip', image: p.probeImage, script, timeoutMs: parseDuration(p.podTimeout) ?? 90_000,
        env: { KUPGRADE_TIMEOUT: String(Math.max(1, Math.ceil(timeoutMs / 1000))), ...(endpoint ? { KUPGRADE_API_ENDPOINT: endpoint.replace(/\/+$/, '') } : {}) },
        ...(ctx.node ? { nodeName: ctx.node } : {}),
      }).then((o) => {
        const source = describeProbe(o)
        if (o.problem) findings.push({ status: 'unknown', source, observed: clip(o.logs || o.problem), problem: o.problem })
        else if (o.phase === 'Succeeded' && o.exitCode === 0) findings.push({ status: 'pass', source, observed: clip(o.logs) })
        else findings.push({ status: 'fail', source, observed: clip(o.logs), problem: `a pod${o.node ? ` on ${o.node}` : ''} cannot reach the API through the Service / endpoint` })
        if (!o.deleted) findings.push({ status: 'warn', source, observed: 'the probe pod could not be deleted', problem: `probe pod ${o.pod} left behind` })
      }))
    }
    const svc = await kubernetesServiceIP(ctx)
    const clusterIP = svc.live ?? svc.planned
    if (svc.live && svc.planned && svc.live !== svc.planned) {
      findings.push({ status: 'fail', source: 'kubectl get service kubernetes -n default', observed: `clusterIP ${svc.live}, but the plan's serviceCIDR ${ctx.serviceCIDR} gives ${svc.planned}`, problem: `serviceCIDR ${ctx.serviceCIDR} disagrees with the live kubernetes Service (${svc.live})` })
    } else if (svc.error) {
      findings.push({ status: 'unknown', source: 'kubectl get service kubernetes -n default', observed: svc.error, problem: 'the kubernetes Service could not be read' })
    }
    const targets = [...(endpoint ? [`${endpoint.replace(/\/+$/, '')}/readyz`] : []), ...(clusterIP ? [`https://${clusterIP}:443/readyz`] : [])]

    if (p.from.includes('runner') && endpoint) {
      work.push(probeHttps(endpoint, '/readyz', timeoutMs).then((o) => {
        const source = `runner: GET ${endpoint}/readyz`
        if (o.error) findings.push({ status: 'fail', source, observed: o.error, problem: `runner cannot reach ${endpoint}` })
        else findings.push(httpFinding(source, o.status!, o.body ?? '', `runner → ${endpoint}`))
      }))
    }
    if (p.from.includes('nodes') && targets.length > 0) {
      for (const n of nodesInScope(ctx)) {
        // Every address in one curl: a curl start is most of what this read costs a node (read/curl.ts).
        const script = [SCRIPT_ENV, `curl -k ${CURL_ORDERED} --max-time ${Math.max(1, Math.ceil(timeoutMs / 1000))} ${targets.map((u) => `-o /dev/null ${shellQuote(u)}`).join(' ')}`].join('\n')
        work.push(readNode(ctx, n.target, { script }, { timeoutMs: timeoutMs * targets.length + 15_000 }).then((r) => {
          if (r.error) return void findings.push({ status: 'unknown', source: `node ${n.name}`, observed: r.error, problem: `${n.name} unreachable over SSH` })
          const transfers = curlTransfers(r.stdout)
          if (transfers.length !== targets.length) return void findings.push({ status: 'unknown', source: `node ${n.name}: curl`, observed: clip(r.stdout + r.stderr), problem: `${n.name}: curl gave no answer` })
          targets.forEach((url, i) => {
            const t = transfers[i]!
            const source = `node ${n.name}: curl ${url}`
            if (t.error || t.code === '000') findings.push({ status: 'fail', source, observed: t.error ? `exit ${t.exit}: ${t.error}` : 'no HTTP answer', problem: `${n.name} cannot reach ${url.replace(/\/readyz$/, '')}` })
            else findings.push(httpFinding(source, Number(t.code), '', `${n.name} → ${url.replace(/\/readyz$/, '')}`))
          })
        }))
      }
    }
    await Promise.all(work)
    return verdict('api-vip', findings, {
      ok: `API reachable from ${p.from.join(', ')} via ${[endpoint, clusterIP].filter(Boolean).join(' and ')}`,
      hint: 'check kube-proxy (kube-proxy-sync gate), the iptables backend, the CNI and the VIP / load balancer before upgrading',
    })
  },
}

function httpFinding(source: string, code: number, body: string, what: string): Finding {
  if (code === 200) return { status: 'pass', source, observed: `HTTP 200${body ? ` ${clip(body, 80)}` : ''}` }
  if (code === 401 || code === 403) return { status: 'pass', source, observed: `HTTP ${code} (reachable; anonymous /readyz refused on this cluster)` }
  return { status: 'fail', source, observed: `HTTP ${code}${body ? `: ${clip(body, 200)}` : ''}`, problem: `${what}: /readyz answered HTTP ${code}` }
}
