import { homedir } from 'node:os'
import { planPath } from '../plan/paths.js'
import type { ClusterSpec, NodeSpec } from '../plan/schema.js'
import type { NodeTarget } from '../transport/types.js'

/** A node's SSH settings: the cluster's, overridden field by field by the node's own, then node.port. */
export function nodeTarget(cluster: ClusterSpec, node: NodeSpec, planDir: string, home = homedir()): NodeTarget {
  const ssh = { ...cluster.ssh, ...node.ssh }
  const port = node.port ?? ssh.port
  return {
    cluster: cluster.name,
    node: node.name,
    host: node.host,
    ...(port !== undefined ? { port } : {}),
    ...(ssh.user ? { user: ssh.user } : {}),
    ...(ssh.identityFile ? { identityFiles: [planPath(ssh.identityFile, planDir, home)] } : {}),
    ...(ssh.knownHosts ? { knownHosts: planPath(ssh.knownHosts, planDir, home) } : {}),
    ...(ssh.sudo !== undefined ? { sudo: ssh.sudo } : {}),
    ...(ssh.proxyJump ? { proxyJump: ssh.proxyJump } : {}),
  }
}

