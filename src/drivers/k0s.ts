import type { Driver, NodeRole } from './types.js'

/** k0s: stop, replace the binary, reinstall the service, start (facts §3.2; k0sctl's upgrade phases). */
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
  planNodeUpgrade: (hop, node) => [
    {
      action: 'replace-binary',
      title: `replace k0s binary ${hop.from} → ${hop.to.release}`,
      undo: 'restore the previous k0s binary (kept as /usr/local/bin/k0s.kupgrade-prev)',
      params: { binary: '/usr/local/bin/k0s', version: hop.to.release },
    },
    {
      action: 'restart',
      title: `restart ${serviceName(node.role)} (k0s stop, k0s start)`,
      undo: `restart ${serviceName(node.role)} on the restored binary`,
      params: { service: serviceName(node.role) },
    },
  ],
}
