import type { Node } from 'kubernetes-types/core/v1.js'
import { coreOf, parseKubeVersion } from '../../plan/versions.js'
import { kubeNodesInScope } from '../context.js'
import { verdict, type Finding } from '../evidence.js'
import type { Gate } from '../types.js'

export interface NodesReadyParams { timeout: string }

const PRESSURE = ['DiskPressure', 'MemoryPressure', 'PIDPressure', 'NetworkUnavailable']

/**
 * Every node of the plan (or the one node) exists in the API, is Ready (facts §4.1: status True, not Unknown), has no
 * pressure condition, and in a node check reports the kubelet version it was upgraded to. `timeout` is how long the
 * caller's wait loop keeps asking; this check looks once.
 */
export const nodesReadyGate: Gate<NodesReadyParams> = {
  id: 'nodes-ready',
  async check(ctx) {
    const list = await ctx.kubectl.nodes()
    const byName = new Map((list.items ?? []).map((n) => [n.metadata?.name ?? '', n]))
    // A machine that runs no kubelet (k0s controller without --enable-worker, per its facts) has no Node to be Ready.
    const listed = new Set(ctx.nodes.map((x) => x.name))
    const findings: Finding[] = kubeNodesInScope(ctx).map((planned) => {
      const n = byName.get(planned.name)
      const f = judge(planned.name, n, ctx.node ? ctx.expectedVersion : undefined)
      // Named otherwise in the API (a plan with FQDNs for nodes registered by their short hostname, a typo): say which.
      const same = n ? undefined : sameMachine(planned.name, planned.target.host, (list.items ?? []).filter((x) => !listed.has(x.metadata?.name ?? '')))
      return same ? { ...f, problem: `${f.problem}; the API has ${same.name}, whose ${same.by}: the plan must name each node as the API does (kubectl get nodes)` } : f
    })
    return verdict('nodes-ready', findings, {
      ok: `${findings.length} node${findings.length === 1 ? '' : 's'} Ready`,
      hint: 'look at the node: kubelet service and logs (journalctl -u kubelet / k3s / k0sworker), disk, certificates, CNI',
    })
  },
}

export function judge(name: string, n: Node | undefined, expectedVersion?: string): Finding {
  const source = `kubectl get node ${name}`
  if (!n) return { status: 'fail', source, observed: 'no Node object with this name', problem: `${name} is not registered in the API` }
  const conds = n.status?.conditions ?? []
  const ready = conds.find((c) => c.type === 'Ready')
  const version = n.status?.nodeInfo?.kubeletVersion ?? '?'
  const base = `Ready=${ready?.status ?? 'missing'}${ready?.reason ? ` (${ready.reason}${ready.message ? `: ${ready.message}` : ''})` : ''}, kubelet ${version}${n.spec?.unschedulable ? ', cordoned' : ''}`
  if (ready?.status !== 'True') return { status: 'fail', source, observed: base, problem: `${name} ${ready?.status === 'Unknown' ? 'NotReady (kubelet stopped posting status)' : 'NotReady'}` }
  const pressure = conds.filter((c) => PRESSURE.includes(c.type) && c.status === 'True')
  if (pressure.length) return { status: 'fail', source, observed: `${base}; ${pressure.map((c) => `${c.type}=True${c.message ? ` (${c.message})` : ''}`).join(', ')}`, problem: `${name} has ${pressure.map((c) => c.type).join(', ')}` }
  if (expectedVersion && !sameCore(version, expectedVersion)) {
    return { status: 'fail', source, observed: `${base}; expected kubelet ${expectedVersion}`, problem: `${name} reports kubelet ${version}, expected ${expectedVersion}` }
  }
  return { status: 'pass', source, observed: base }
}

const sameCore = (a: string, b: string): boolean => {
  const x = parseKubeVersion(a)
  const y = parseKubeVersion(b)
  return Boolean(x && y && coreOf(x) === coreOf(y))
}

/**
 * The API's Node that is the plan's node under another name: one with the plan's host among its addresses, or whose
 * name and the plan's agree up to the first dot (short hostname against FQDN).
 */
function sameMachine(name: string, host: string, nodes: Node[]): { name: string; by: string } | undefined {
  const short = (s: string) => s.split('.')[0]!.toLowerCase()
  for (const n of nodes) {
    const other = n.metadata?.name ?? ''
    const address = (n.status?.addresses ?? []).find((a) => a.address === host)
    if (address) return { name: other, by: `${address.type} is ${host}, this node's host in the plan` }
    if (other && short(other) === short(name)) return { name: other, by: `name has the same hostname as ${name}` }
  }
  return undefined
}
