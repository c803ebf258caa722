import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..', '..')

const newest = (dir: string): number =>
  readdirSync(dir).reduce((m, f) => {
    const p = join(dir, f)
    const s = statSync(p)
    return Math.max(m, s.isDirectory() ? newest(p) : s.mtimeMs)
  }, 0)

/**
 * Tests that run the real CLI (`node bin/kupgrade.js`) run dist/bundle/. `npm test` builds first; when the bundle is
 * missing or dist is older than src (a plain `npx vitest run`), it is built here once.
 */
export function ensureBuilt(): void {
  if (existsSync(join(root, 'dist', 'bundle', 'main.js')) && newest(join(root, 'src')) <= newest(join(root, 'dist'))) return
  const build = spawnSync('npm', ['run', 'build'], { cwd: root, encoding: 'utf8' })
  if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`)
}
