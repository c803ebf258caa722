import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'

/**
 * Progress on a real pseudo-terminal (util-linux `script`): the tree needs a terminal that says how large it is. One
 * nobody sized reports 0 × 0, where listr2's log-update drew nothing while the run went and, at its end, the tree one
 * character a line; such a terminal gets the plain lines. The mode is decided by the built CLI's own code.
 */
const dir = mkdtempSync(join(tmpdir(), 'kupgrade-tty-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const probe = join(dir, 'mode.mjs')
writeFileSync(probe, `const { outputMode } = await import(${JSON.stringify(join(process.cwd(), 'dist/cli/commands/run-shared.js'))})
const s = process.stdout
console.log(['mode', s.isTTY, s.columns, s.rows, outputMode({ output: 'text' }, { stdout: s, env: {} })].join(' '))\n`)

const onPty = async (sizing: string) => {
  const r = await execa('script', ['-qfec', `${sizing}${process.execPath} ${probe}`, '/dev/null'], { env: { ...process.env, TERM: 'xterm-256color', COLUMNS: '120', LINES: '40' }, reject: false })
  return /mode .*/.exec(r.stdout.replace(/\r/g, ''))?.[0]
}

describe('progress on a pseudo-terminal', () => {
  it('a terminal of no size gets the plain lines; one with a size, the tree', async () => {
    expect(await onPty('')).toBe('mode true 0 0 plain')
    expect(await onPty('stty cols 100 rows 30; ')).toBe('mode true 100 30 tty')
  })
})
