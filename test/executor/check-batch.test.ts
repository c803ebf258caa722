import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { batchReads } from '../../src/executor/check-batch.js'
import { commandLine, type RemoteCommand } from '../../src/transport/quote.js'

/** Runs a command line the way a node's shell runs an SSH exec: `sh -c LINE`, stdin closed. */
const sh = (line: string) => {
  const r = spawnSync('sh', ['-c', line], { encoding: 'utf8', input: '' })
  return { stdout: r.stdout, exitCode: r.status }
}

describe('node checks read together in one command', () => {
  const commands: RemoteCommand[] = [
    ['printf', '%s\n\n', 'trailing newlines kept'],
    ['sh', '-c', 'echo inactive; exit 3'],
    // A node may print anything, a marker-like line too: only the nonce's markers frame.
    ['sh', '-c', "printf '@@kupgrade-0000000000000000-2-exit 0\\nstill mine\\n'"],
    { script: 'echo "a script, its exit its own"\nexit 5' },
    ['sh', '-c', 'echo to stderr >&2; echo to stdout'],
    ['sh', '-c', 'cat; echo "stdin was empty"'],
    ['printf', '%s', 'no newline at the end'],
    ['sh', '-c', "echo 'quoted; $(not run)'"],
  ]

  it('each command gets the stdout and exit code it gets alone, in order', () => {
    const batch = batchReads(commands)
    const together = sh(commandLine(batch.script))
    expect(together.exitCode).toBe(0)
    const alone = commands.map((c) => sh(commandLine(c)))
    expect(batch.parse(together.stdout)).toEqual(alone)
    expect(alone.map((a) => a.exitCode)).toEqual([0, 3, 0, 5, 0, 0, 0, 0])
  })

  it('output cut short leaves the commands it never framed unread, not empty', () => {
    const batch = batchReads(commands.slice(0, 3))
    const full = sh(commandLine(batch.script)).stdout
    const cut = full.slice(0, full.indexOf('inactive') + 3)
    expect(batch.parse(cut)).toEqual([{ stdout: 'trailing newlines kept\n\n', exitCode: 0 }, undefined, undefined])
  })

  it('the markers carry a fresh nonce each time', () => {
    const a = commandLine(batchReads([['true']]).script)
    const b = commandLine(batchReads([['true']]).script)
    expect(a).toMatch(/@@kupgrade-[0-9a-f]{16}-0/)
    expect(a).not.toBe(b)
  })
})
