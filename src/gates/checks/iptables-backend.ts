import { parseIptables } from '../../facts/parse-host.js'
import { nodesInScope } from '../context.js'
import { clip, verdict, type Finding } from '../evidence.js'
import { readNode, SCRIPT_ENV } from '../read/node.js'
import { sectionsOf } from '../read/sections.js'
import type { Gate } from '../types.js'

export type IptablesBackendParams = Record<string, never>

/** What one node's script printed, read: the host's backend and the finding for the node on its own. */
export interface IptablesNodeJudgement {
  host?: 'legacy' | 'nf_tables'
  finding: Finding
}

/**
 * One node (facts §4.3): the host's `iptables -V`, how many of the kubelet's KUBE-IPTABLES-HINT / KUBE-KUBELET-CANARY
 * chains each backend's save tool shows in `mangle` (kube-proxy's iptables-wrapper picks its backend the same way),
 * and kube-proxy's /proxyMode. In `iptables` and `ipvs` mode kube-proxy writes iptables rules (ipvs mode too: its
 * masquerade and filter chains), so its chains must be where the host's `iptables` looks; `nftables` mode does not
 * use iptables at all.
 */
export function judgeIptablesNode(node: string, stdout: string): IptablesNodeJudgement {
  const source = `node ${node}: iptables -V; iptables-{legacy,nft}-save -t mangle; curl :10249/proxyMode`
  const s = sectionsOf(stdout)
  const host = parseIptables(s.get('version') ?? '').backend
  const count = (k: string) => (/^\d+$/.test(s.get(k) ?? '') ? Number(s.get(k)) : NaN)
  const legacy = count('legacy')
  const nft = count('nft')
  const mode = (s.get('mode') ?? '').trim()
  const observed = `iptables -V: ${clip(s.get('version') ?? '', 80) || 'missing'}; hint chains legacy=${Number.isNaN(legacy) ? '?' : legacy} nf_tables=${Number.isNaN(nft) ? '?' : nft}; kube-proxy mode ${mode || '?'}`
  if (!host) return { finding: { status: 'unknown', source, observed, problem: `${node}: iptables backend unreadable` } }
  if (mode === 'nftables') return { host, finding: { status: 'pass', source, observed } }
  if (legacy > 0 && nft > 0) return { host, finding: { status: 'fail', source, observed, problem: `${node}: Kubernetes chains in both legacy and nf_tables` } }
  const used = legacy > 0 ? 'legacy' : nft > 0 ? 'nf_tables' : undefined
  if (used && used !== host) return { host, finding: { status: 'fail', source, observed, problem: `${node}: the kubelet / kube-proxy (mode ${mode || '?'}) use ${used}, host iptables is ${host}` } }
  return { host, finding: { status: 'pass', source, observed } }
}

/**
 * One iptables backend (incident k0s-upgrade-coredns-api-vip: host tools on nf_tables, kube-proxy on legacy, and no
 * pod reached the API). Fails when Kubernetes chains live in both backends on a node, when they live in a backend
 * other than the host's `iptables`, or when nodes disagree on the backend.
 */
export const iptablesBackendGate: Gate<IptablesBackendParams> = {
  id: 'iptables-backend',
  async check(ctx) {
    const findings: Finding[] = []
    const backends = new Map<string, string[]>()
    await Promise.all(nodesInScope(ctx).map(async (n) => {
      const script = [SCRIPT_ENV,
        "echo '@@version'; iptables -V 2>&1",
        "echo '@@legacy'; command -v iptables-legacy-save >/dev/null 2>&1 && iptables-legacy-save -t mangle 2>/dev/null | grep -cE '^:(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY) '",
        "echo '@@nft'; command -v iptables-nft-save >/dev/null 2>&1 && iptables-nft-save -t mangle 2>/dev/null | grep -cE '^:(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY) '",
        "echo '@@mode'; curl -sS --max-time 3 http://127.0.0.1:10249/proxyMode 2>/dev/null",
        'echo', 'exit 0'].join('\n')
      const r = await readNode(ctx, n.target, { script }, { privileged: true })
      if (r.error) return void findings.push({ status: 'unknown', source: `node ${n.name}`, observed: r.error, problem: `${n.name} unreachable over SSH` })
      const j = judgeIptablesNode(n.name, r.stdout)
      if (j.host) backends.set(j.host, [...(backends.get(j.host) ?? []), n.name])
      findings.push(j.finding)
    }))
    if (backends.size > 1) findings.push({ status: 'fail', source: 'iptables -V on every node', observed: [...backends].sort(([a], [b]) => a.localeCompare(b)).map(([b, ns]) => `${b}: ${ns.sort().join(', ')}`).join('; '), problem: `nodes disagree on the iptables backend (${[...backends.keys()].sort().join(' vs ')})` })
    return verdict('iptables-backend', findings, {
      ok: `one iptables backend (${[...backends.keys()].join(', ') || '?'}) on every node`,
      hint: 'pick one backend (update-alternatives --set iptables …) for the host and kube-proxy, and flush the other one’s KUBE-* chains',
    })
  },
}
