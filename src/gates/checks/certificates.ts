import { formatDuration, parseDuration } from '../../util/duration.js'
import { nodesInScope } from '../context.js'
import { clip, verdict, type Finding } from '../evidence.js'
import { readNode, SCRIPT_ENV } from '../read/node.js'
import { probeHttps } from '../read/tls.js'
import type { Gate, GateContext } from '../types.js'

export interface CertificatesParams { minValidity: string }

/** Where each distribution keeps certificates (facts §7 PKI; k3s agent and kubelet client certs included). */
export const CERT_GLOBS: Record<GateContext['distribution'], string[]> = {
  k3s: ['/var/lib/rancher/k3s/server/tls/*.crt', '/var/lib/rancher/k3s/server/tls/etcd/*.crt', '/var/lib/rancher/k3s/agent/*.crt'],
  k0s: ['/var/lib/k0s/pki/*.crt', '/var/lib/k0s/pki/etcd/*.crt', '/var/lib/k0s/kubelet/pki/kubelet-client-current.pem'],
  kubeadm: ['/etc/kubernetes/pki/*.crt', '/etc/kubernetes/pki/etcd/*.crt', '/var/lib/kubelet/pki/kubelet-client-current.pem'],
}

/**
 * Certificates valid for at least `minValidity` (incident k3s-expired-certs-disk-full: internal certificates expired
 * and nodes went NotReady): the API serving certificate as the endpoint serves it (TLS from the runner), every
 * certificate file on each node (`openssl x509 -enddate`), and on kubeadm control planes `kubeadm certs
 * check-expiration -o json`, which also covers the client certificates embedded in admin.conf and friends.
 */
export const certificatesGate: Gate<CertificatesParams> = {
  id: 'certificates',
  async check(ctx, p) {
    const minMs = parseDuration(p.minValidity) ?? 30 * 86_400_000
    const now = ctx.now().getTime()
    const findings: Finding[] = []
    const judge = (source: string, what: string, notAfter: Date) => {
      const left = notAfter.getTime() - now
      const observed = `${what}: notAfter ${notAfter.toISOString()} (${left <= 0 ? `expired ${formatDuration(-left)} ago` : `${formatDuration(left)} left`})`
      findings.push(left <= 0 ? { status: 'fail', source, observed, problem: `${what} expired` }
        : left < minMs ? { status: 'fail', source, observed, problem: `${what} expires in ${formatDuration(left)} (< ${p.minValidity})` }
          : { status: 'pass', source, observed })
    }
    const work: Promise<void>[] = []
    if (ctx.apiEndpoint && !ctx.node) {
      work.push(probeHttps(ctx.apiEndpoint, undefined, 10_000).then((o) => {
        const source = `runner: TLS ${ctx.apiEndpoint}`
        if (o.validTo) judge(source, `API serving certificate ${o.subject ?? ''}`.trim(), o.validTo)
        else findings.push({ status: 'unknown', source, observed: o.error ?? 'no certificate served', problem: `API serving certificate unreadable (${o.error ?? 'none'})` })
      }))
    }
    for (const n of nodesInScope(ctx)) {
      const kubeadmCp = ctx.distribution === 'kubeadm' && n.role === 'control-plane'
      const script = [SCRIPT_ENV,
        `for f in ${CERT_GLOBS[ctx.distribution].join(' ')}; do [ -f "$f" ] || continue; e=$(openssl x509 -enddate -noout -in "$f" 2>&1); printf 'cert\\t%s\\t%s\\n' "$f" "$e"; done`,
        ...(kubeadmCp ? ["if command -v kubeadm >/dev/null 2>&1; then echo 'kubeadm-json-begin'; kubeadm certs check-expiration -o json 2>/dev/null; echo 'kubeadm-json-end'; fi"] : []),
      ].join('\n')
      work.push(readNode(ctx, n.target, { script }, { privileged: true }).then((r) => {
        if (r.error) return void findings.push({ status: 'unknown', source: `node ${n.name}`, observed: r.error, problem: `${n.name} unreachable over SSH` })
        const files = parseCertLines(r.stdout)
        if (files.length === 0) findings.push({ status: 'unknown', source: `node ${n.name}: openssl x509 -enddate`, observed: clip(r.stdout + r.stderr) || 'no certificate files found', problem: `${n.name}: no certificate files found under ${CERT_GLOBS[ctx.distribution].join(' ')}` })
        for (const f of files) {
          if (f.notAfter) judge(`node ${n.name}: openssl x509 -enddate -in ${f.path}`, `${n.name} ${f.path}`, f.notAfter)
          else findings.push({ status: 'unknown', source: `node ${n.name}: openssl x509 -in ${f.path}`, observed: f.raw, problem: `${n.name} ${f.path} unreadable` })
        }
        for (const c of parseKubeadmExpiration(r.stdout)) judge(`node ${n.name}: kubeadm certs check-expiration`, `${n.name} kubeadm ${c.name}`, c.notAfter)
      }))
    }
    await Promise.all(work)
    return verdict('certificates', findings, {
      ok: `${findings.length} certificates valid for more than ${p.minValidity}`,
      hint: ctx.distribution === 'k3s' ? 'rotate: k3s certificate rotate (servers), then restart k3s / k3s-agent' : ctx.distribution === 'k0s' ? 'rotate the k0s certificates (restart k0scontroller regenerates expiring ones), then restart workers' : 'renew: kubeadm certs renew all on each control plane, then restart the static pods; check kubelet client rotation',
    })
  },
}

/** `openssl x509 -enddate -noout` prints `notAfter=Jan  2 15:04:05 2026 GMT`. */
export function parseOpensslDate(s: string): Date | undefined {
  const m = /notAfter=([A-Z][a-z]{2})\s+(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4}) GMT/.exec(s)
  if (!m) return undefined
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].indexOf(m[1]!)
  return mon < 0 ? undefined : new Date(Date.UTC(Number(m[6]), mon, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5])))
}

export function parseCertLines(text: string): { path: string; notAfter?: Date; raw: string }[] {
  return text.split('\n').filter((l) => l.startsWith('cert\t')).map((l) => {
    const [, path, raw] = l.split('\t') as [string, string, string]
    const notAfter = parseOpensslDate(raw ?? '')
    return { path, raw: raw ?? '', ...(notAfter ? { notAfter } : {}) }
  })
}

/** `kubeadm certs check-expiration -o json` (output.kubeadm.k8s.io CertificateExpirationInfo). */
export function parseKubeadmExpiration(text: string): { name: string; notAfter: Date }[] {
  const a = text.indexOf('kubeadm-json-begin')
  const b = text.indexOf('kubeadm-json-end')
  if (a < 0 || b < a) return []
  try {
    const doc = JSON.parse(text.slice(a + 'kubeadm-json-begin'.length, b)) as { certificates?: { name: string; expirationDate: string }[]; certificateAuthorities?: { name: string; expirationDate: string }[] }
    return [...(doc.certificates ?? []), ...(doc.certificateAuthorities ?? [])].map((c) => ({ name: c.name, notAfter: new Date(c.expirationDate) })).filter((c) => !Number.isNaN(c.notAfter.getTime()))
  } catch {
    return []
  }
}
