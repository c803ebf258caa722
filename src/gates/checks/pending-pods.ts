import type { Pod } from 'kubernetes-types/core/v1.js'
import type { List } from '../../transport/kubectl/client.js'
import { verdict, type Finding } from '../evidence.js'
import type { Gate } from '../types.js'

export interface PendingPodsParams { max: number }

/**
 * No more than `max` pods Pending (incident etcd-hpa-cascading-failure: 450 unschedulable pods). Unschedulable ones
 * (PodScheduled=False) are named with the scheduler's reason; a cluster that cannot place today's pods cannot absorb
 * a drain.
 */
export const pendingPodsGate: Gate<PendingPodsParams> = {
  id: 'pending-pods',
  async check(ctx, p) {
    const pods = (await ctx.kubectl.json<List<Pod>>(['get', 'pods', '--all-namespaces', '--field-selector=status.phase=Pending', '-o', 'json'])).items ?? []
    const pending = pods.filter((x) => x.status?.phase === 'Pending' && x.metadata?.labels?.['app.kubernetes.io/managed-by'] !== 'kupgrade')
    const describe = (x: Pod) => {
      const c = x.status?.conditions?.find((k) => k.type === 'PodScheduled' && k.status === 'False')
      return `${x.metadata?.namespace}/${x.metadata?.name}${c ? ` ${c.reason ?? 'Unschedulable'}: ${c.message ?? ''}` : ' (scheduled, starting)'}`
    }
    const source = 'kubectl get pods -A --field-selector=status.phase=Pending'
    const f: Finding = pending.length > p.max
      ? { status: 'fail', source, observed: `${pending.length} Pending: ${pending.slice(0, 5).map(describe).join('; ')}${pending.length > 5 ? ` (+${pending.length - 5} more)` : ''}`, problem: `${pending.length} pods Pending (max ${p.max})` }
      : { status: 'pass', source, observed: `${pending.length} Pending (max ${p.max})` }
    return verdict('pending-pods', [f], { ok: `${pending.length} pods Pending (max ${p.max})`, hint: 'find why they cannot be scheduled (kubectl describe pod: FailedScheduling) before draining nodes' })
  },
}
