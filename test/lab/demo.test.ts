import { join } from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'

/** `kupgrade demo` end to end: lab up, the dry-run through the real `plan` command, a summary, teardown. */
describe('kupgrade demo', () => {
  it('starts the demo fleet, prints the dry-run of its plan and tears everything down', async () => {
    const r = await execa(process.execPath, [join(process.cwd(), 'bin/kupgrade.js'), 'demo'], { reject: false, timeout: 600_000, env: { NO_COLOR: '1' } })
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toContain('== starting the demo lab')
    expect(r.stdout).toMatch(/production \(kubeadm\)\s+prod-cp-1\s+control-plane\s+v1\.29\.6\s+Ready/)
    expect(r.stdout).toContain('== dry-run: kupgrade plan ')
    expect(r.stdout).toContain('v1.30.4')
    // Where `plan` reads the live fleet, the demo's dry-run shows the lab's real node versions first.
    if (r.stdout.includes('kupgrade plan --live')) expect(r.stdout).toMatch(/prod-worker-2\s+Ready\s+worker\s+v1\.29\.6/)
    expect(r.stdout).toContain('lab stopped and removed')
    // Whether or not this build has `apply`, the demo says what it did after the dry-run.
    expect(r.stdout).toMatch(/== apply: kupgrade apply \S+ --yes/)
    expect(r.stdout).toMatch(/Summary of run \S+: done \(exit 0\)/)
  }, 600_000)
})
