import { homedir } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import type { ClusterSpec, NodeSpec } from '../plan/schema.js'
import type { NodeTarget } from '../transport/types.js'

/** `~` → home; relative → against the plan file's directory (plan-format: paths are relative to the plan). */
export function planPath(p: string, planDir: string, home = homedir()): string {
  if (p === '~') return home
  if (p.startsWith('~/')) return join(home, p.slice(2))
  return isAbsolute(p) ? p : resolve(planDir, p)
}

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
