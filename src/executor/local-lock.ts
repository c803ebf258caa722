import { readFileSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs'
import { hostname } from 'node:os'
import { dirname } from 'node:path'
import { ExitCode, KupgradeError } from '../errors.js'

/** The local lock's file name in the runs directory. */
export const LOCAL_LOCK = 'apply.lock'

/**
 * The local lock file beside the runs (`.kupgrade/runs/apply.lock`): stops two runs of plans in one directory on one
 * machine before they reach any API. A lock whose process is gone (same host) is stale and replaced.
 */
export interface LocalLockInfo {
  runId: string
  pid: number
  host: string
  since: string
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export function acquireLocalLock(path: string, info: LocalLockInfo): () => void {
  mkdirSync(dirname(path), { recursive: true })
  for (let tries = 0; tries < 2; tries++) {
    try {
      writeFileSync(path, `${JSON.stringify(info)}\n`, { flag: 'wx' })
      return () => {
        try {
          const held = JSON.parse(readFileSync(path, 'utf8')) as LocalLockInfo
          if (held.runId === info.runId && held.pid === info.pid) unlinkSync(path)
        } catch { /* already gone */ }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    let held: LocalLockInfo | undefined
    try {
      held = JSON.parse(readFileSync(path, 'utf8')) as LocalLockInfo
    } catch { /* torn or unreadable: treat as stale */ }
    if (held && held.host === info.host && held.pid !== info.pid && alive(held.pid)) {
      throw new KupgradeError(`another kupgrade run (${held.runId}, pid ${held.pid}) holds ${path} since ${held.since}`, {
        exitCode: ExitCode.paused, hint: 'wait for it to finish; if that process is gone, remove the file',
      })
    }
    if (held && held.host !== info.host) {
      throw new KupgradeError(`${path} is held by run ${held.runId} on host ${held.host} since ${held.since}`, { exitCode: ExitCode.paused, hint: 'this directory is shared with another machine: run from one place, or remove the file if that run is gone' })
    }
    try {
      unlinkSync(path)
    } catch { /* raced */ }
  }
  throw new KupgradeError(`could not take the local lock ${path}`, { exitCode: ExitCode.paused })
}

/**
 * Who holds the lock file now: a run whose process is alive on this host, or any run of another host (whose process
 * cannot be looked at from here); nobody when the file is missing, unreadable or left by a process that is gone.
 */
export function localLockHolder(path: string): LocalLockInfo | undefined {
  try {
    const held = JSON.parse(readFileSync(path, 'utf8')) as LocalLockInfo
    return held.host !== hostname() || alive(held.pid) ? held : undefined
  } catch {
    return undefined
  }
}
