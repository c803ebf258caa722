import { parseIptables } from '../../facts/parse-host.js'
import { nodesInScope } from '../context.js'
import { clip, verdict, type Finding } from '../evidence.js'
import { readNode, SCRIPT_ENV } from '../read/node.js'
import { sectionsOf } from '../read/sections.js'
import type { Gate } from '../types.js'

export type IptablesBackendParams = Record<string, never>

/**
 * One iptables backend (incident k0s-upgrade-coredns-api-vip: host tools on nf_tables, kube-proxy on legacy, and no
 * pod reached the API). Per node (facts §4.3): `iptables -V`, which backend holds the kubelet's KUBE-IPTABLES-HINT /
 * KUBE-KUBELET-CANARY chains (`iptables-legacy-save` vs `iptables-nft-save -t mangle`), and kube-proxy's /proxyMode.
 * Fails when Kubernetes chains live in both backends, when they live in a backend other than the host's
 * `iptables`, or when nodes disagree on the backend.
 */
export const iptablesBackendGate: Gate<IptablesBackendParams> = {
  id: 'iptables-backend',
  async check(ctx) {
    const findings: Finding[] = []
    const backends = new Map<string, string[]>()
    await Promise.all(nodesInScope(ctx).map(async (n) => {
      const script = [SCRIPT_ENV,
        "echo '@@version'; iptables -V 2>&1",
        "echo '@@legacy'; command -v iptables-legacy-save >/dev/null 2>&1 && iptables-legacy-save -t mangle 2>/dev/null | grep -cE '^:(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY)'",
        "echo '@@nft'; command -v iptables-nft-save >/dev/null 2>&1 && iptables-nft-save -t mangle 2>/dev/null | grep -cE '^:(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY)'",
        "echo '@@mode'; curl -sS --max-time 3 http://127.0.0.1:10249/proxyMode 2>/dev/null",
        'echo', 'exit 0'].join('\n')
      const r = await readNode(ctx, n.target, { script }, { privileged: true })
      const source = `node ${n.name}: iptables -V; iptables-{legacy,nft}-save -t mangle; curl :10249/proxyMode`
      if (r.error) return void findings.push({ status: 'unknown', source: `node ${n.name}`, observed: r.error, problem: `${n.name} unreachable over SSH` })
      const s = sectionsOf(r.stdout)
      const host = parseIptables(s.get('version') ?? '').backend
      const legacy = Number(s.get('legacy') || 'NaN')
      const nft = Number(s.get('nft') || 'NaN')
      const mode = (s.get('mode') ?? '').trim()
      const observed = `iptables -V: ${clip(s.get('version') ?? '', 80) || 'missing'}; hint chains legacy=${Number.isNaN(legacy) ? '?' : legacy} nf_tables=${Number.isNaN(nft) ? '?' : nft}; kube-proxy mode ${mode || '?'}`
      if (!host) return void findings.push({ status: 'unknown', source, observed, problem: `${n.name}: iptables backend unreadable` })
      backends.set(host, [...(backends.get(host) ?? []), n.name])
      if (mode === 'nftables' || mode === 'ipvs') return void findings.push({ status: 'pass', source, observed })
      if (legacy > 0 && nft > 0) return void findings.push({ status: 'fail', source, observed, problem: `${n.name}: Kubernetes chains in both legacy and nf_tables` })
      const used = legacy > 0 ? 'legacy' : nft > 0 ? 'nf_tables' : undefined
      if (used && used !== host) return void findings.push({ status: 'fail', source, observed, problem: `${n.name}: the kubelet / kube-proxy use ${used}, host iptables is ${host}` })
      findings.push({ status: 'pass', source, observed })
    }))
    if (backends.size > 1) findings.push({ status: 'fail', source: 'iptables -V on every node', observed: [...backends].map(([b, ns]) => `${b}: ${ns.join(', ')}`).join('; '), problem: `nodes disagree on the iptables backend (${[...backends.keys()].join(' vs ')})` })
    return verdict('iptables-backend', findings, {
      ok: `one iptables backend (${[...backends.keys()].join(', ') || '?'}) on every node`,
      hint: 'pick one backend (update-alternatives --set iptables …) for the host and kube-proxy, and flush the other one’s KUBE-* chains',
    })
  },
}
