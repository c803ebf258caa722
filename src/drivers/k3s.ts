import type { Driver, NodeRole } from './types.js'

/**
 * k3s: servers one at a time, then agents; the binary is replaced and the service restarted (facts §3.1). The
 * previous binary is kept beside the new one, which is what makes a rollback a file copy and a restart.
 */
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
  planNodeUpgrade: (hop, node) => [
    {
      action: 'replace-binary',
      title: `replace k3s binary ${hop.from} → ${hop.to.release}`,
      undo: 'restore the previous k3s binary (kept as /usr/local/bin/k3s.kupgrade-prev)',
      params: { binary: '/usr/local/bin/k3s', version: hop.to.release },
    },
    {
      action: 'restart',
      title: `restart ${serviceName(node.role)}`,
      undo: `restart ${serviceName(node.role)} on the restored binary`,
      params: { service: serviceName(node.role) },
    },
  ],
}
