import type { Toleration } from '../pods/spec.js'
import type { DeploymentState, PodState } from './types.js'

/** What a Deployment that may run on the control plane (CoreDNS) carries in its pod template. */
const TOLERATE_CONTROL_PLANE: Toleration[] = [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }]

/**
 * A Deployment's pod template tolerations, which the lab's scheduler places its pods by and the API shows: CoreDNS's
 * as kubeadm's manifest has them (CriticalAddonsOnly, the control-plane taint); a workload's none, unless it may run
 * on the control plane.
 */
export function deploymentTolerations(d: Pick<DeploymentState, 'kind' | 'tolerateControlPlane'>): Toleration[] {
  return [...(d.kind === 'coredns' ? [{ key: 'CriticalAddonsOnly', operator: 'Exists' as const }] : []), ...(d.tolerateControlPlane ? TOLERATE_CONTROL_PLANE : [])]
}

/**
 * A pod's tolerations as the API serves them: its own (a DaemonSet's template tolerates everything, a Deployment's
 * as above, a bare pod's its spec's), and those the DefaultTolerationSeconds admission plugin adds to every pod that
 * does not tolerate the not-ready and unreachable NoExecute taints already: 300 s each.
 */
export function podTolerations(p: PodState, deployment?: Pick<DeploymentState, 'kind' | 'tolerateControlPlane'>): (Toleration & { tolerationSeconds?: number })[] {
  const own: Toleration[] = p.owner?.kind === 'DaemonSet' ? [{ operator: 'Exists' }]
    : p.bare ? p.bare.spec.tolerations
      : deployment ? deploymentTolerations(deployment) : []
  const defaults = ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']
    .filter((key) => !own.some((t) => (t.effect === undefined || t.effect === 'NoExecute') && (t.operator === 'Exists' ? (t.key ?? '') === '' || t.key === key : t.key === key)))
    .map((key) => ({ key, operator: 'Exists' as const, effect: 'NoExecute', tolerationSeconds: 300 }))
  return [...own, ...defaults]
}
