import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'

/**
 * The package as users get it: `npm pack`, installed from the tarball into an empty directory (dependencies from
 * the npm cache or registry), then `kupgrade --help` and `kupgrade demo` run from there — the demo's real apply of
 * the lab fleet, staging → production, with its summary. The one test of `kupgrade demo`: the demo fleet has fixed
 * addresses, so two demos in parallel test files would collide.
 */
describe('packed package', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kupgrade-pack-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('installs from the tarball and runs --help and the demo (a real apply on the lab)', async () => {
    // --ignore-scripts: dist/ is built by the suite already (npm test builds first); prepare would rebuild it.
    await execa('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: process.cwd() })
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'))!
    const app = join(dir, 'app')
    await execa('mkdir', ['-p', app])
    await execa('npm', ['init', '-y'], { cwd: app })
    await execa('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, tgz)], { cwd: app, timeout: 600_000 })
    const bin = join(app, 'node_modules', '.bin', 'kupgrade')
    const help = await execa(bin, ['--help'], { cwd: app })
    for (const c of ['apply', 'resume', 'status', 'runs', 'demo', 'plan']) expect(help.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'))
    const demo = await execa(bin, ['demo'], { cwd: app, reject: false, timeout: 900_000, env: { ...process.env, NO_COLOR: '1', CI: '1' } })
    expect(demo.exitCode, demo.stdout.slice(-3000) + demo.stderr).toBe(0)
    expect(demo.stdout).toContain('== starting the demo lab')
    expect(demo.stdout).toMatch(/production \(kubeadm\)\s+prod-cp-1\s+control-plane\s+v1\.29\.6\s+Ready/)
    expect(demo.stdout).toContain('== dry-run: kupgrade plan ')
    expect(demo.stdout).toMatch(/== apply: kupgrade apply \S+ --yes/)
    expect(demo.stdout).toMatch(/stage staging: done in/)
    expect(demo.stdout).toMatch(/stage production: done in/)
    expect(demo.stdout).toMatch(/Summary of run \S+: done \(exit 0\)/)
    expect(demo.stdout).toMatch(/production \(kubeadm\)\s+prod-cp-1\s+control-plane\s+v1\.30\.4\s+Ready/)
    expect(demo.stdout).toContain('lab stopped and removed')
  }, 1_200_000)
})
