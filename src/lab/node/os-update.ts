import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FLATCAR_NEXT, kernelsOf } from './os-release.js'
import type { NodePaths } from './paths.js'
import type { NodeArch, NodeOs } from './types.js'

/**
 * At boot, an OS update that apt/dnf/update_engine staged (lab/state/os-staged) takes effect: the new kernel runs
 * (`uname -r`), Flatcar's release number moves on, and the package tools see the system as up to date.
 */
export function applyStagedOsUpdate(paths: NodePaths, os: NodeOs, arch?: NodeArch): void {
  const staged = join(paths.state, 'os-staged')
  if (!existsSync(staged)) return
  writeFileSync(join(paths.state, 'kernel'), kernelsOf(os, arch)[1] + '\n')
  if (os === 'flatcar') {
    const osr = join(paths.root, 'etc/os-release')
    writeFileSync(osr, readFileSync(osr, 'utf8').replace(/\b3815\.2\.5\b/g, FLATCAR_NEXT))
  }
  rmSync(staged, { force: true })
  writeFileSync(join(paths.state, 'os-updated'), new Date().toISOString() + '\n')
}
