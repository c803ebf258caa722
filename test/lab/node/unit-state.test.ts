import { spawn } from 'node:child_process'
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { readUnit, writeUnit } from '../../../src/lab/node/unit-state.js'

const lib = join(import.meta.dirname, '../../../src/lab/node/standins/lib.sh')

// systemd never answers `is-active` with nothing: a reader racing a writer sees the old state or the new one.
describe('unit state file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kupgrade-unit-'))
  mkdirSync(join(dir, 'units'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('a reader never sees a half-written state while the stand-in rewrites it', async () => {
    writeUnit(join(dir, 'units'), 'k3s', { state: 'inactive', version: 'v1', dueMs: 0, sinceS: 0 })
    const writer = spawn('bash', ['-c', `. "${lib}"; while :; do lab_unit_write k3s active v1 0 1; lab_unit_write k3s inactive v1 0 2; done`], {
      env: { ...process.env, LAB_DIR: dir },
      stdio: 'ignore',
      detached: true,
    })
    const seen = new Set<string>()
    const until = Date.now() + 1500
    while (Date.now() < until) {
      seen.add(readUnit(join(dir, 'units'), 'k3s')?.state ?? 'missing')
      await new Promise((r) => setImmediate(r))
    }
    // The loop and its `mv` together (its process group): a `mv` left running renamed `inactive` into place later.
    const gone = new Promise((r) => writer.on('close', r))
    process.kill(-writer.pid!, 'SIGKILL')
    await gone
    expect([...seen].sort()).toEqual(['active', 'inactive'])
  })

  it('a stand-in reader never sees a half-written state while the lab rewrites it', async () => {
    // Reads until it has seen both states (at most 20,000 reads): on a loaded machine 400 reads could all fall
    // between two of the writer's turns.
    // A unit of its own, there before the reader starts: nothing the first test started can write it.
    writeUnit(join(dir, 'units'), 'k3s-agent', { state: 'failed', version: 'v1', dueMs: 0, sinceS: 1 })
    const reader = spawn('bash', ['-c', `. "${lib}"; a=0 f=0; for ((i = 0; i < 20000 && (a == 0 || f == 0); i++)); do lab_unit_read k3s-agent; echo "[$U_STATE]"; case $U_STATE in active) a=1 ;; failed) f=1 ;; esac; done`], {
      env: { ...process.env, LAB_DIR: dir },
    })
    let out = ''
    reader.stdout.on('data', (d: Buffer) => (out += d.toString()))
    const done = new Promise((r) => reader.on('close', r))
    let flip = false
    let finished = false
    void done.then(() => (finished = true))
    while (!finished) {
      writeUnit(join(dir, 'units'), 'k3s-agent', { state: flip ? 'active' : 'failed', version: 'v1', dueMs: 0, sinceS: 1 })
      flip = !flip
      await new Promise((r) => setImmediate(r))
    }
    expect(new Set(out.trim().split('\n'))).toEqual(new Set(['[active]', '[failed]']))
  })
})
