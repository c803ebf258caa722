import { X509Certificate } from 'node:crypto'
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
 * The certificate blocks of each certificate file on a node, read with one `awk` (every node has it; not every node
 * has openssl): each file named first, then only its `CERTIFICATE` blocks, so a private key beside a certificate
 * (kubelet-client-current.pem) never leaves the node. Every certificate in a file is judged, not only the first as
 * `openssl x509` would: a bundle's expiring intermediate (a k3s custom CA's server-ca.crt) is found too.
 */
export function certFilesScript(globs: readonly string[]): string {
  return [
    `set --; for f in ${globs.join(' ')}; do [ -f "$f" ] && set -- "$@" "$f"; done`,
    'if [ $# -gt 0 ]; then',
    `  printf 'cert-file\\t%s\\n' "$@"`,
    `  awk 'FNR == 1 { printf "cert-in\\t%s\\n", FILENAME } /^-----BEGIN CERTIFICATE-----/ { p = 1 } p { print } /^-----END CERTIFICATE-----/ { p = 0 }' "$@" 2>&1`,
    'fi',
  ].join('\n')
}

/**
 * Certificates valid for at least `minValidity` (incident k3s-expired-certs-disk-full: internal certificates expired
 * and nodes went NotReady): the API serving certificate as the endpoint serves it (TLS from the runner), every
 * certificate in every certificate file on each node (certFilesScript), and on kubeadm control planes `kubeadm certs
 * check-expiration -o json`, which also covers the client certificates embedded in admin.conf and friends.
 */
export const certificatesGate: Gate<CertificatesParams> = {
  id: 'certificates',
  async check(ctx, p) {
    const minMs = parseDuration(p.minValidity) ?? 30 * 86_400_000
    const now = ctx.now().getTime()
    const findings: Finding[] = []
    // `what` names the certificate in the summary; `seen` in the evidence, whose source already says the node and file
    // (and the same seen on several nodes is then said once).
    const judge = (source: string, what: string, notAfter: Date, seen = what) => {
      const left = notAfter.getTime() - now
      const observed = `${seen}: notAfter ${notAfter.toISOString()} (${left <= 0 ? `expired ${formatDuration(-left)} ago` : `${formatDuration(left)} left`})`
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
        certFilesScript(CERT_GLOBS[ctx.distribution]),
        ...(kubeadmCp ? ["if command -v kubeadm >/dev/null 2>&1; then echo 'kubeadm-json-begin'; kubeadm certs check-expiration -o json 2>/dev/null; echo 'kubeadm-json-end'; fi"] : []),
      ].join('\n')
      work.push(readNode(ctx, n.target, { script }, { privileged: true }).then((r) => {
        if (r.error) return void findings.push({ status: 'unknown', source: `node ${n.name}`, observed: r.error, problem: `${n.name} unreachable over SSH` })
        const files = parseCertFiles(r.stdout)
        if (files.length === 0) findings.push({ status: 'unknown', source: `node ${n.name}: ${CERT_GLOBS[ctx.distribution].join(' ')}`, observed: clip(r.stdout + r.stderr) || 'no certificate files found', problem: `${n.name}: no certificate files found under ${CERT_GLOBS[ctx.distribution].join(' ')}` })
        for (const f of files) {
          const source = `node ${n.name}: ${f.path}`
          if (f.problem) findings.push({ status: 'unknown', source, observed: f.problem, problem: `${n.name} ${f.path} unreadable` })
          for (const [i, c] of f.certs.entries()) {
            const which = `${f.certs.length > 1 ? ` #${i + 1}` : ''} (${c.subject})`
            judge(source, `${n.name} ${f.path}${which}`, c.notAfter, which.trim())
          }
        }
        for (const c of parseKubeadmExpiration(r.stdout)) judge(`node ${n.name}: kubeadm certs check-expiration`, `${n.name} kubeadm ${c.name}`, c.notAfter, c.name)
      }))
    }
    await Promise.all(work)
    return verdict('certificates', findings, {
      ok: `${findings.length} certificates valid for more than ${p.minValidity}`,
      hint: ctx.distribution === 'k3s' ? 'renew: k3s renews certificates expired or within 90 days of expiry (120 in releases from mid-2025) each time it starts: systemctl restart k3s on each server, one at a time, then k3s-agent on each agent (an agent fetches its own from a server); whatever their date: systemctl stop k3s && k3s certificate rotate && systemctl start k3s' : ctx.distribution === 'k0s' ? 'renew: k0s renews a controller\'s certificates (not the CA) each time it starts: systemctl restart k0scontroller on each controller, one at a time, then k0sworker on each worker (its kubelet renews its client certificate from the API)' : 'renew: kubeadm certs renew all on each control plane, then restart the static pods; check kubelet client rotation',
    })
  },
}

/** `openssl x509 -enddate -noout` prints `notAfter=Jan  2 15:04:05 2026 GMT`; X509Certificate.validTo the same date. */
export function parseOpensslDate(s: string): Date | undefined {
  const m = /notAfter=([A-Z][a-z]{2})\s+(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4}) GMT/.exec(s)
  if (!m) return undefined
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].indexOf(m[1]!)
  return mon < 0 ? undefined : new Date(Date.UTC(Number(m[6]), mon, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5])))
}

export interface CertFile {
  path: string
  certs: { subject: string; notAfter: Date }[]
  /** Why some or all of it could not be judged (no certificate in it, a block that does not parse). */
  problem?: string
}

/** certFilesScript's output: each file with the certificates parsed from its blocks, in the file's order. */
export function parseCertFiles(text: string): CertFile[] {
  const files = new Map<string, CertFile>()
  const blocks = new Map<string, string[]>()
  let current: string | undefined
  let block: string[] | undefined
  // What awk said besides the blocks (a file it could not open): shown for a file in which no certificate was read.
  const said: string[] = []
  for (const line of text.split('\n')) {
    if (line === 'kubeadm-json-begin') break
    if (line.startsWith('cert-file\t')) {
      const path = line.slice(10)
      files.set(path, { path, certs: [] })
      blocks.set(path, [])
    } else if (line.startsWith('cert-in\t')) current = line.slice(8)
    else if (current !== undefined && line === '-----BEGIN CERTIFICATE-----') block = [line]
    else if (current !== undefined && block) {
      block.push(line)
      if (line === '-----END CERTIFICATE-----') {
        blocks.get(current)?.push(block.join('\n'))
        block = undefined
      }
    } else if (line.trim()) said.push(line)
  }
  for (const f of files.values()) {
    const pems = blocks.get(f.path) ?? []
    if (pems.length === 0) f.problem = `no certificate in the file${said.length ? ` (${clip(said.join(' ⏎ '), 300)})` : ''}`
    for (const [i, pem] of pems.entries()) {
      try {
        const x = new X509Certificate(pem)
        const notAfter = parseOpensslDate(`notAfter=${x.validTo}`)
        if (!notAfter) throw new Error(`validTo ${x.validTo}`)
        f.certs.push({ subject: x.subject.replaceAll('\n', ', ') || '(no subject)', notAfter })
      } catch (err) {
        f.problem = `certificate #${i + 1} does not parse: ${(err as Error).message}`
      }
    }
  }
  return [...files.values()]
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
