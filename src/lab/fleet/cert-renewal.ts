import type { FaultSpec } from '../faults.js'

/**
 * What a node's start (or `k3s certificate rotate`) renews of its certificates, per distribution, each node its own:
 * - k3s renews what expired or expires within 90 days at each start (120 in releases from about May 2025: facts §3.1;
 *   the lab takes the shorter, so it never renews where a real k3s would not); `k3s certificate rotate`, whatever
 *   the date. An agent fetches its certificates from a server: impossible while the server's is expired (the
 *   post-mortem's agents kept failing x509 until the server was fixed).
 * - k0s renews a controller's certificates (not the CA) at every start (k0sproject/k0s#6351, #7812); a worker's
 *   kubelet renews its client certificate from the API when it starts past its rotation deadline (70–90 % of the
 *   lifetime: the lab takes the last 10 % of a year, 36 days), again not while the API's certificate is expired.
 * (kubeadm's renewal is `kubeadm certs renew` and the restart after it: the fleet's `certs-rotated`.)
 *
 * The lab's certificate faults are cluster-wide (the API's serving certificate and every node's) or a node's. A
 * control-plane node's renewal ends its own fault and splits a cluster-wide one into one per other node, which each
 * renews in turn; a worker's ends its own only.
 */
export const K3S_RENEW_WITHIN_DAYS = 90
export const KUBELET_RENEW_WITHIN_DAYS = 36

export type CertRenewal = { off: FaultSpec[]; on: FaultSpec[] }
export type RenewalBy = 'k3s start' | 'k3s rotate' | 'k0s start'

/** Within how many days of expiry a node's renewal takes its certificates (Infinity: whatever their date). */
function renewsWithin(by: RenewalBy, role: 'control-plane' | 'worker'): number {
  if (by === 'k3s rotate') return Infinity
  if (by === 'k3s start') return K3S_RENEW_WITHIN_DAYS
  return role === 'control-plane' ? Infinity : KUBELET_RENEW_WITHIN_DAYS
}

export function certRenewal(
  faults: readonly FaultSpec[],
  node: { name: string; role: 'control-plane' | 'worker' },
  nodes: readonly string[],
  by: RenewalBy,
): CertRenewal {
  const out: CertRenewal = { off: [], on: [] }
  const within = renewsWithin(by, node.role)
  const serverExpired = faults.some((f) => f.fault === 'cert-expired' && !f.node)
  for (const f of faults) {
    if (f.fault !== 'cert-expired' && f.fault !== 'cert-expiring') continue
    if (f.fault === 'cert-expiring' && (Number(f.params?.['days']) || 10) > within) continue
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
