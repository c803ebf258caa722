import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { execEnv, spawnInNode } from '../../../src/lab/node/exec.js'
import { probeIsolation, type NodeEntry } from '../../../src/lab/node/namespace.js'
import { enterProgram } from '../../../src/lab/node/native-build.js'
import { pathsOf, type NodePaths } from '../../../src/lab/node/paths.js'
import { startNode, type TestNode } from './helpers.js'
import { promisify } from 'node:util'

/**
 * The lab enters a node with one program (native/lab-enter.c) where it can build it, and with unshare, mount and bash
 * where it cannot. A command must not be able to tell which: the same mounts, the same shell, the same exit.
 */
let t: TestNode
let paths: NodePaths
let program: string
beforeAll(async () => {
  t = await startNode({ address: '127.0.164.1', name: 'enter-1' })
  paths = pathsOf(join(t.dir, 'root'))
  const built = await enterProgram()
  if (!built) throw new Error('the lab could not build native/lab-enter.c (is cc installed?)')
  program = built
})
afterAll(() => t?.cleanup())

function run(entry: NodeEntry, command: string, p: NodePaths = paths): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const child = spawnInNode(p, entry, command, execEnv({ name: 'root', sudo: true }, {}))
  child.stdin.end()
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  return new Promise((resolve) => child.on('close', (code) => resolve({ stdout, stderr, code })))
}

// mountinfo without the mount ids and device numbers (new ones in every namespace, for every overlay).
const MOUNTS = "awk '{ $1 = $2 = $3 = \"\"; print }' /proc/self/mountinfo"
const SHELL = 'echo "$0 $PWD $(id -u)"; echo "$SHLVL $BASH_SUBSHELL"; shopt -p | md5sum; set -o | md5sum; exit 7'

describe('entering a lab node: one program, or unshare + mount + bash', () => {
  for (const isolation of ['mount-ns', 'user-ns'] as const) {
    it(`${isolation}: the same mounts, shell and exit status either way`, async () => {
      // user-ns where this machine has it (root always may); mount-ns is what the probe picks as root.
      if (isolation === 'mount-ns') expect(await probeIsolation()).toBe('mount-ns')
      const fallback = await run({ isolation }, `${MOUNTS}; ${SHELL}`)
      const direct = await run({ isolation, program }, `${MOUNTS}; ${SHELL}`)
      expect(fallback.code).toBe(7)
      expect(fallback.stdout).toContain(' /etc/kubernetes ')
      expect(fallback.stdout).toContain('\nbash /root 0\n')
      expect(direct).toEqual(fallback)
    })
  }

  it('under disk-full both add the same full overlays, and writes fail with ENOSPC', async () => {
    t.node.setFault('disk-full', true)
    try {
      const probe = `${MOUNTS}; { head -c 8192 /dev/zero > /var/lib/big; } 2>&1; echo "rc=$?"`
      const fallback = await run({ isolation: 'mount-ns' }, probe)
      const direct = await run({ isolation: 'mount-ns', program }, probe)
      expect(fallback.stdout).toContain('lab-disk-full')
      expect(fallback.stdout).toMatch(/No space left on device\nrc=1\n$/)
      expect(direct).toEqual(fallback)
    } finally {
      t.node.setFault('disk-full', false)
    }
    expect((await run({ isolation: 'mount-ns', program }, MOUNTS)).stdout).not.toContain('lab-disk-full')
  })

  it('a mount that fails stops the command with exit 125 and says why', async () => {
    const broken = pathsOf(join(t.dir, 'root'))
    broken.fstab = join(t.dir, 'broken-fstab')
    writeFileSync(broken.fstab, `${join(t.dir, 'root')} /mnt none bind 0 0\n${join(t.dir, 'no-such-dir')} /etc/kubernetes none bind 0 0\n`)
    const direct = await run({ isolation: 'mount-ns', program }, 'echo ran', broken)
    expect(direct).toMatchObject({ code: 125, stdout: '' })
    expect(direct.stderr).toBe('kupgrade lab: cannot mount the node root in a private namespace: none /etc/kubernetes: No such file or directory\n')
    const fallback = await run({ isolation: 'mount-ns' }, 'echo ran', broken)
    expect(fallback).toMatchObject({ code: 125, stdout: '' })
  })
})

describe('where the entry program cannot run', () => {
  it('a temporary directory mounted noexec: the lab enters with unshare, mount and bash instead', async () => {
    // A private mount namespace with a noexec tmpfs as TMPDIR, where the program is built (from dist: npm test builds).
    const script = [
      'mkdir -p /tmp/kupgrade-noexec-probe && mount -t tmpfs -o noexec lab-noexec /tmp/kupgrade-noexec-probe',
      `TMPDIR=/tmp/kupgrade-noexec-probe ${JSON.stringify(process.execPath)} -e 'import(process.argv[1]).then(async (m) => console.log(String(await m.enterProgram())))' ${JSON.stringify(join(import.meta.dirname, '../../../dist/lab/node/native-build.js'))}`,
    ].join(' && ')
    const r = await promisify(execFile)('unshare', ['-m', '--propagation', 'private', 'bash', '-c', script])
    expect(r.stdout).toBe('undefined\n')
    expect(program).toMatch(/kupgrade-lab-lab-enter-/)
  })
})
