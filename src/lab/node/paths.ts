import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Where a node keeps things. The node root mirrors a real filesystem; lab/ holds what only the lab needs. */
export interface NodePaths {
  root: string
  /** LAB_DIR for the stand-ins: node.env, lib.sh, events, unit states, faults, journal, mirror. */
  lab: string
  bin: string
  events: string
  fstab: string
  faults: string
  units: string
  journal: string
  state: string
  mirror: string
  hostKey: string
}

/** The node network shim (native-build.ts) in the node's lab folder. */
export const VIP_SHIM = 'vip-connect.so'

export function pathsOf(root: string): NodePaths {
  const lab = join(root, 'lab')
  return {
    root,
    lab,
    bin: join(root, 'bin'),
    events: join(lab, 'events.jsonl'),
    fstab: join(lab, 'fstab'),
    faults: join(lab, 'faults'),
    units: join(lab, 'units'),
    journal: join(lab, 'journal'),
    state: join(lab, 'state'),
    mirror: join(lab, 'mirror'),
    hostKey: join(lab, 'ssh_host_ed25519_key'),
  }
}

/** The stand-in scripts ship as files next to this module's source; from dist/ they are found in the source tree. */
export function standinsDir(): string {
  const here = fileURLToPath(new URL('./standins/', import.meta.url))
  if (existsSync(here)) return here
  const fromDist = fileURLToPath(new URL('../../../src/lab/node/standins/', import.meta.url))
  if (existsSync(fromDist)) return fromDist
  throw new Error(`lab node: stand-in scripts not found (looked in ${here} and ${fromDist})`)
}
