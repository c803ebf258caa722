import { binarySwapSteps } from './binary-swap.js'
import type { Driver, NodeRole } from './types.js'

/** k3s: servers one at a time, then agents; the binary is replaced and the service restarted (facts §3.1). */
const serviceName = (role: NodeRole): string => (role === 'control-plane' ? 'k3s' : 'k3s-agent')

export const k3s: Driver = {
  name: 'k3s',
  serviceName,
  planBackup: (hop) => [
    {
      action: 'backup',
      title: `etcd snapshot before ${hop.to.release} (k3s etcd-snapshot save --name kupgrade-pre-${hop.to.kubernetes})`,
      params: { name: `kupgrade-pre-${hop.to.kubernetes}` },
    },
  ],
  planNodeUpgrade: (hop, node) => binarySwapSteps({ distribution: 'k3s', binary: '/usr/local/bin/k3s', service: serviceName(node.role), hop }),
}
