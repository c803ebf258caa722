import type { ClusterModel } from './cluster.js'
import type { NodeState } from './types.js'

/**
 * Which control-plane nodes serve the Kubernetes API right now. The apiserver runs inside the distribution's service
 * on a control-plane node: the k3s server process, the k0s controller, or (kubeadm) a static pod the kubelet runs.
 * Stopping that service, or rebooting the node, takes the node's apiserver away; starting it brings it back once the
 * service runs. The API address (api/control-plane-balancer.ts), the `kubernetes` Endpoints/EndpointSlice and
 * `/version` follow this list. The model emits 'apiservers' whenever it may have changed.
 */
export function servingApiServers(m: ClusterModel): NodeState[] {
  return [...m.nodes.values()].filter((n) => n.role === 'control-plane' && n.kubeletActive && !n.apiserverFailing)
}
