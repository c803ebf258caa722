import { binarySwapSteps } from './binary-swap.js'
import type { Driver, NodeRole } from './types.js'

/** k0s: stop, replace the binary, start (facts §3.2; k0sctl's upgrade phases). */
const serviceName = (role: NodeRole): string => (role === 'control-plane' ? 'k0scontroller' : 'k0sworker')

export const k0s: Driver = {
  name: 'k0s',
  serviceName,
  planBackup: (hop) => [
    {
      action: 'backup',
      title: `k0s backup before ${hop.to.release} (k0s backup --save-path /var/lib/k0s/kupgrade-backups)`,
      params: { savePath: '/var/lib/k0s/kupgrade-backups' },
    },
  ],
  planNodeUpgrade: (hop, node) =>
    binarySwapSteps({ distribution: 'k0s', binary: '/usr/local/bin/k0s', service: serviceName(node.role), restartHow: 'k0s stop, k0s start', hop }),
}
