import { homedir } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'

/**
 * A path written in a plan (kubeconfig, identityFile, knownHosts, hooks): `~` is the home directory, a relative path
 * is relative to the plan file's directory, so a plan means the same thing whatever directory kupgrade runs from.
 */
export function planPath(p: string, planDir: string, home = homedir()): string {
  if (p === '~') return home
  if (p.startsWith('~/')) return join(home, p.slice(2))
  return isAbsolute(p) ? p : resolve(planDir, p)
}
