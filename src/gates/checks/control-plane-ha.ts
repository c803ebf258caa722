import { k0sControllers } from '../../facts/api-facts.js'
import { verdict, type Finding } from '../evidence.js'
import type { Gate } from '../types.js'

export interface ControlPlaneHaParams { policy: 'warn' | 'block' }

const CP_LABELS = ['node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master']

/**
 * At least 3 control-plane nodes and an odd count (incident single-master-spof): with 1, its upgrade takes the API
 * down; with an even count etcd tolerates no more failures than one fewer. Counted from the plan and from the API's
 * node roles; the larger of the two is believed (a control plane the plan forgot still counts for quorum).
 */
export const controlPlaneHaGate: Gate<ControlPlaneHaParams> = {
  id: 'control-plane-ha',
  async check(ctx, p) {
    const planned = ctx.nodes.filter((n) => n.role === 'control-plane').map((n) => n.name)
    // k0s controllers have a Node only with --enable-worker; each holds a lease while it runs, which k0s counts them by.
    const controllers = ctx.distribution === 'k0s' ? await k0sControllers(ctx.kubectl, ctx.now()) : undefined
    const nodes = controllers ? [] : (await ctx.kubectl.nodes()).items ?? []
    const live = controllers ?? nodes.filter((n) => CP_LABELS.some((l) => l in (n.metadata?.labels ?? {}))).map((n) => n.metadata?.name ?? '?')
    const etcd = ctx.facts?.etcdMembers
    const count = Math.max(planned.length, live.length)
    const seen = controllers ? `k0s controllers holding their lease (kube-node-lease/k0s-ctrl-*): ${live.length} (${live.join(', ') || 'none'})` : `API control-plane nodes: ${live.length} (${live.join(', ') || 'none labelled'})`
    const observed = `plan: ${planned.length} (${planned.join(', ')}); ${seen}${etcd ? `; etcd members: ${etcd.length}` : ''}`
    const problem = count < 3 ? `${count} control-plane node${count === 1 ? '' : 's'}: ${count === 1 ? 'a single point of failure' : 'losing one loses etcd quorum'}` : count % 2 === 0 ? `${count} control-plane nodes: an even count tolerates no more failures than ${count - 1}` : undefined
    const source = controllers ? 'plan + kubectl get leases -n kube-node-lease' : 'plan + kubectl get nodes'
    const f: Finding = problem
      ? { status: p.policy === 'block' ? 'fail' : 'warn', source, observed, problem }
      : { status: 'pass', source, observed }
    return verdict('control-plane-ha', [f], { ok: `${count} control-plane nodes (odd, ≥ 3)`, hint: 'add control-plane nodes (3 or 5) before upgrading, or accept the API outage during each control-plane step' })
  },
}
