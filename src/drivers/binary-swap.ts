import type { Hop } from '../planner/hops.js'
import type { NodeActionTemplate } from './types.js'

/**
 * The single-binary distributions (k3s, k0s) upgrade the same way: replace the binary, keeping the previous one
 * beside it, and restart the node's service; rollback is copying the old binary back and restarting.
 */
export function binarySwapSteps(a: { distribution: string; binary: string; service: string; restartHow?: string; hop: Hop }): NodeActionTemplate[] {
  return [
    {
      action: 'replace-binary',
      title: `replace ${a.distribution} binary ${a.hop.from} → ${a.hop.to.release}`,
      undo: `restore the previous ${a.distribution} binary (kept as ${a.binary}.kupgrade-prev)`,
      params: { binary: a.binary, version: a.hop.to.release },
    },
    {
      action: 'restart',
      title: `restart ${a.service}${a.restartHow ? ` (${a.restartHow})` : ''}`,
      undo: `restart ${a.service} on the restored binary`,
      params: { service: a.service },
    },
  ]
}
