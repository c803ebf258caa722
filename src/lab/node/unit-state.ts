import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * A unit's state file, lab/units/UNIT: `STATE VERSION DUE_MS SINCE_S`. The `systemctl` stand-in and the lab both
 * read and write it. `activating` becomes `active` once DUE_MS (epoch ms) has passed: the service start delay needs
 * no process or timer to complete, so a start survives the exec that issued it being killed.
 */
export interface UnitState {
  /** auto-restart: the process exited and systemd restarts it every RestartSec (a kubelet without a kubeconfig). */
  state: 'active' | 'activating' | 'inactive' | 'failed' | 'auto-restart'
  version: string
  dueMs: number
  sinceS: number
}

export function readUnit(unitsDir: string, unit: string, now = Date.now()): UnitState | undefined {
  const file = join(unitsDir, unit)
  if (!existsSync(file)) return undefined
  const [state = 'inactive', version = '', due = '0', since = '0'] = readFileSync(file, 'utf8').trim().split(/\s+/)
  const u: UnitState = { state: state as UnitState['state'], version, dueMs: Number(due), sinceS: Number(since) }
  if (u.state === 'activating' && u.dueMs <= now) u.state = 'active'
  return u
}

/**
 * The unit as of a start's due time: libuv fires a timer when its cached loop time reaches it, which on a busy event
 * loop is before Date.now() does, and a start whose timer fired is active whatever the wall clock says yet.
 */
export const readUnitAsOf = (unitsDir: string, unit: string, due: number): UnitState | undefined => readUnit(unitsDir, unit, Math.max(Date.now(), due))

/** Replaced by rename, never truncated in place: a `systemctl is-active` reading mid-write would print nothing. */
export function writeUnit(unitsDir: string, unit: string, u: UnitState): void {
  const tmp = join(unitsDir, `.${unit}.${process.pid}.tmp`)
  writeFileSync(tmp, `${u.state} ${u.version} ${u.dueMs} ${u.sinceS}\n`)
  renameSync(tmp, join(unitsDir, unit))
}
