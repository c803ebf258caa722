import { readFile, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { KupgradeError } from '../errors.js'

/**
 * lab.json: how other processes find a running lab (its pid, control socket and files). Written by the lab process
 * once everything listens, removed when it stops; a lab.json whose pid is dead is stale and ignored.
 */
export interface LabStateFile {
  name: string
  pid: number
  dir: string
  control: string
  startedAt: string
  kubeconfig: string
  plan: string
  knownHosts: string
  identityFile: string
  nodesHaveSsh: boolean
  clusters: { name: string; distribution: string; api: string; context: string; nodes: { name: string; role: string; host: string; port: number }[] }[]
}

export const DEFAULT_LAB_DIR = '.kupgrade/lab'
export const labDir = (cwd: string, dir?: string): string => resolve(cwd, dir ?? DEFAULT_LAB_DIR)
export const stateFile = (dir: string): string => join(dir, 'lab.json')
/** Unix socket paths are limited to ~107 bytes; the lab dir is usually short, but fall back to /tmp if not. */
export const controlSocket = (dir: string): string => {
  const p = join(dir, 'control.sock')
  return Buffer.byteLength(p) < 100 ? p : join('/tmp', `kupgrade-lab-${Buffer.from(dir).toString('base64url').slice(-40)}.sock`)
}

export async function writeState(s: LabStateFile): Promise<void> {
  await writeFile(stateFile(s.dir), `${JSON.stringify(s, null, 2)}\n`)
}

export async function readState(dir: string): Promise<LabStateFile | undefined> {
  try {
    return JSON.parse(await readFile(stateFile(dir), 'utf8')) as LabStateFile
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new KupgradeError(`cannot read ${stateFile(dir)}: ${(err as Error).message}`)
  }
}

export async function removeState(dir: string): Promise<void> {
  await rm(stateFile(dir), { force: true })
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * The lab a command on a running lab means: DIR when given; else the default one, or the current directory when no
 * lab runs in the default one and this directory's does (one `cd`s into the lab dir to run its plan.yaml).
 */
export async function runningLabFor(cwd: string, dir: string | undefined): Promise<{ dir: string; state: LabStateFile }> {
  const chosen = labDir(cwd, dir)
  if (dir === undefined) {
    const here = await readState(cwd).catch(() => undefined)
    const atDefault = await readState(chosen).catch(() => undefined)
    if (here && pidAlive(here.pid) && !(atDefault && pidAlive(atDefault.pid))) return { dir: resolve(cwd), state: here }
  }
  return { dir: chosen, state: await runningLab(chosen) }
}

/** The running lab in `dir`, or a KupgradeError saying none runs there. */
export async function runningLab(dir: string): Promise<LabStateFile> {
  const s = await readState(dir)
  if (!s || !pidAlive(s.pid)) {
    throw new KupgradeError(`no lab is running in ${dir}`, { hint: 'start one with `kupgrade lab up --detach` (or pass --dir)' })
  }
  return s
}
