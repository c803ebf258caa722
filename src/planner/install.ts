import type { ClusterInstall } from '../drivers/types.js'
import type { ClusterSpec } from '../plan/schema.js'

/** Where a k3s/k0s cluster's binaries come from: its `install` settings, else the distribution's installer. */
export function installOf(cluster: ClusterSpec): ClusterInstall {
  const i = cluster.install
  const apiEndpoint = cluster.apiEndpoint
  if (i?.mirror) return { source: { kind: 'mirror', base: i.mirror }, apiEndpoint }
  if (i?.path) return { source: { kind: 'path', dir: i.path }, apiEndpoint }
  return { source: { kind: 'installer' }, apiEndpoint }
}
