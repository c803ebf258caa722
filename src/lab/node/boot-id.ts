import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { NodePaths } from './paths.js'

/**
 * The node's boot id, as the kernel gives one per boot in /proc/sys/kernel/random/boot_id: every exec in the node
 * sees this file there (bound over the host's, namespace.ts), and a reboot draws a new one. Tools that tell "the
 * machine rebooted" from "SSH came back" read it (kupgrade's wait after a reboot, the kubelet's Node bootID), so the
 * lab must not show the host's, which never changes while a lab node reboots.
 */
export const BOOT_ID_FILE = 'lab/state/boot_id'

const fileOf = (paths: NodePaths): string => join(paths.root, BOOT_ID_FILE)

/** A node root's first start: its first boot. Later starts keep the id (the lab process restarting is no reboot). */
export function ensureBootId(paths: NodePaths): void {
  if (!existsSync(fileOf(paths))) writeFileSync(fileOf(paths), randomUUID() + '\n')
}

/** A reboot: the next boot's id. */
export function drawBootId(paths: NodePaths): string {
  const id = randomUUID()
  writeFileSync(fileOf(paths), id + '\n')
  return id
}

export function readBootId(paths: NodePaths): string | undefined {
  try {
    return readFileSync(fileOf(paths), 'utf8').trim() || undefined
  } catch {
    return undefined
  }
}
