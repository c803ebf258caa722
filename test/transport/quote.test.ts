import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { shellJoin, shellQuote, withSudo } from '../../src/transport/quote.js'
import { HOSTILE } from './helpers/hostile.js'


/** Runs a command line through a real POSIX shell and returns the argv it saw (NUL-separated via printf). */
const argvSeenBySh = (line: string): string[] => {
  const out = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${line}`], { encoding: 'utf8' })
  return out.split('\0').slice(0, -1)
}

describe('transport/quote', () => {
  it.each(HOSTILE.map((s) => [JSON.stringify(s), s]))('%s reaches the shell as one literal argument', (_, s) => {
    expect(argvSeenBySh(shellQuote(s))).toEqual([s])
  })

  it('joins an argv so the shell sees the same argv', () => {
    expect(argvSeenBySh(shellJoin(HOSTILE))).toEqual(HOSTILE)
  })

  it('leaves safe words bare and quotes everything else', () => {
    expect(shellJoin(['k3s', '--version'])).toBe('k3s --version')
    expect(shellQuote('v1.30.4+k3s1')).toBe('v1.30.4+k3s1')
    expect(shellQuote('a b')).toBe("'a b'")
    expect(shellQuote("it's")).toBe(`'it'\\''s'`)
    expect(shellQuote('--from=v1')).toBe('--from=v1')
    expect(shellQuote('=ls')).toBe(`'=ls'`)
  })

  it('refuses an empty argv rather than sending an empty command', () => {
    expect(() => shellJoin([])).toThrow(TypeError)
  })

  it('wraps for sudo -n and keeps arguments literal', () => {
    expect(withSudo(['systemctl', 'restart', 'k3s'])).toBe('sudo -n -- systemctl restart k3s')
    expect(withSudo({ script: 'echo a; echo b' })).toBe(`sudo -n -- sh -c 'echo a; echo b'`)
  })
})
