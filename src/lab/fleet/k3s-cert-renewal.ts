import type { FaultSpec } from '../faults.js'

/**
 * k3s renews a node's client and server certificates when it starts if they expired or expire within 90 days (120 in
 * releases from about May 2025: facts §3.1 "Certificates"; the lab takes the shorter, so it never renews where a real
 * k3s would not), and `k3s certificate rotate` renews them whatever their date. Either renews the certificates of the
 * node that does it only: a server's serving certificate and its own, an agent's own, which the agent fetches from a
 * server — impossible while the server's certificate is expired (the post-mortem's agents kept failing x509 until the
 * server was fixed).
 *
 * The lab's certificate faults are cluster-wide (the API's serving certificate and every node's) or a node's. What a
 * renewal does to them: a server ends its own fault and splits a cluster-wide one into one per other node, which each
 * renews in turn; an agent ends its own only.
 */
export const K3S_RENEW_WITHIN_DAYS = 90

export type CertRenewal = { off: FaultSpec[]; on: FaultSpec[] }

export function k3sCertRenewal(
  faults: readonly FaultSpec[],
  node: { name: string; role: 'control-plane' | 'worker' },
  nodes: readonly string[],
  how: 'start' | 'rotate',
): CertRenewal {
  const out: CertRenewal = { off: [], on: [] }
  const serverExpired = faults.some((f) => f.fault === 'cert-expired' && !f.node)
  for (const f of faults) {
    if (f.fault !== 'cert-expired' && f.fault !== 'cert-expiring') continue
    if (how === 'start' && f.fault === 'cert-expiring' && (Number(f.params?.['days']) || 10) > K3S_RENEW_WITHIN_DAYS) continue
    if (f.node === node.name) {
      if (node.role === 'worker' && serverExpired) continue
      out.off.push(f)
    } else if (!f.node && node.role === 'control-plane') {
      out.off.push(f)
      for (const other of nodes) {
        if (other !== node.name && !faults.some((g) => g.fault === f.fault && g.node === other)) out.on.push({ ...f, node: other })
      }
    }
  }
  return out
}
