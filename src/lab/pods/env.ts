import type { ClusterModel } from '../fleet/cluster.js'
import type { NodeState, PodState } from '../fleet/types.js'
import type { Distribution } from '../versions.js'

/** The `kubernetes` Service's ClusterIP: the first address of the service CIDR (k3s 10.43.0.0/16, else 10.96.0.0/12). */
export const serviceClusterIp = (d: Distribution): string => (d === 'k3s' ? '10.43.0.1' : '10.96.0.1')

/**
 * A container's environment as the kubelet builds it: the `kubernetes` Service variables (docker-links style, as every
 * pod in the default namespace gets them), HOSTNAME, then the container's own `env` (values and the downward-API
 * fields the lab knows), which win over the service variables.
 */
export function podEnv(m: ClusterModel, p: PodState, n: NodeState): Record<string, string> {
  const ip = serviceClusterIp(m.distribution)
  const env: Record<string, string> = {
    HOSTNAME: p.name,
    KUBERNETES_SERVICE_HOST: ip,
    KUBERNETES_SERVICE_PORT: '443',
    KUBERNETES_SERVICE_PORT_HTTPS: '443',
    KUBERNETES_PORT: `tcp://${ip}:443`,
    KUBERNETES_PORT_443_TCP: `tcp://${ip}:443`,
    KUBERNETES_PORT_443_TCP_PROTO: 'tcp',
    KUBERNETES_PORT_443_TCP_PORT: '443',
    KUBERNETES_PORT_443_TCP_ADDR: ip,
  }
  const fields: Record<string, string | undefined> = {
    'metadata.name': p.name, 'metadata.namespace': p.namespace, 'metadata.uid': p.uid, 'spec.nodeName': n.name,
    'spec.serviceAccountName': 'default', 'status.podIP': p.ip, 'status.hostIP': n.address,
  }
  for (const e of p.bare?.spec.env ?? []) {
    const v = e.value ?? (e.fieldPath ? fields[e.fieldPath] : undefined)
    env[e.name] = v ?? ''
  }
  return env
}
