import { createHmac, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkHostKey, HostKeyError, judgeHostKey } from '../../src/transport/ssh/host-key.js'
import { entryMatches, fingerprint, hostToken, keyTypeOf, parseKnownHosts } from '../../src/transport/ssh/known-hosts.js'
import { makeKey } from './helpers/ssh-server.js'

const k1 = makeKey().blob
const k2 = makeKey().blob
const b64 = (b: Buffer) => b.toString('base64')
const hashed = (name: string) => {
  const salt = randomBytes(20)
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

describe('transport/ssh/known-hosts', () => {
  it('parses plain, marked and commented lines with their line numbers', () => {
    const text = `# comment\n\nnode1,10.0.0.1 ssh-ed25519 ${b64(k1)} root@x\n@revoked * ssh-ed25519 ${b64(k2)}\n@bogus node9 ssh-ed25519 ${b64(k1)}\n`
    const e = parseKnownHosts(text, 'kh')
    expect(e.map((x) => [x.line, x.marker, x.hosts])).toEqual([[3, undefined, 'node1,10.0.0.1'], [4, 'revoked', '*']])
    expect(keyTypeOf(e[0]!.key)).toBe('ssh-ed25519')
  })

  it('matches [host]:port only on that port, and bare host only on 22', () => {
    expect(hostToken('10.0.0.1', 22)).toBe('10.0.0.1')
    expect(hostToken('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222')
    expect(entryMatches({ hosts: '[10.0.0.1]:2222' }, '10.0.0.1', 2222)).toBe(true)
    expect(entryMatches({ hosts: '[10.0.0.1]:2222' }, '10.0.0.1', 22)).toBe(false)
    expect(entryMatches({ hosts: '10.0.0.1' }, '10.0.0.1', 2222)).toBe(false)
  })

  it('matches wildcards and lets a negation win', () => {
    expect(entryMatches({ hosts: '*.lab,!bad.lab' }, 'good.lab', 22)).toBe(true)
    expect(entryMatches({ hosts: '*.lab,!bad.lab' }, 'bad.lab', 22)).toBe(false)
    expect(entryMatches({ hosts: 'node?' }, 'node1', 22)).toBe(true)
    expect(entryMatches({ hosts: 'node?' }, 'node10', 22)).toBe(false)
  })

  it('matches hashed entries (HMAC-SHA1 of the lookup name) including [host]:port', () => {
    expect(entryMatches({ hosts: hashed('10.1.2.3') }, '10.1.2.3', 22)).toBe(true)
    expect(entryMatches({ hosts: hashed('10.1.2.3') }, '10.1.2.4', 22)).toBe(false)
    expect(entryMatches({ hosts: hashed('[10.1.2.3]:2222') }, '10.1.2.3', 2222)).toBe(true)
    expect(entryMatches({ hosts: hashed('[10.1.2.3]:2222') }, '10.1.2.3', 22)).toBe(false)
  })

  it('judges trusted, changed, revoked, cert-authority and unknown', () => {
    const e = parseKnownHosts(
      [`a ssh-ed25519 ${b64(k1)}`, `b ssh-ed25519 ${b64(k1)}`, `@revoked c ssh-ed25519 ${b64(k2)}`, `@cert-authority *.ca ssh-ed25519 ${b64(k1)}`].join('\n'),
      'kh',
    )
    expect(judgeHostKey(e, 'a', 22, k1).status).toBe('trusted')
    const changed = judgeHostKey(e, 'b', 22, k2)
    expect(changed).toMatchObject({ status: 'changed', entry: { line: 2 } })
    expect(judgeHostKey(e, 'c', 22, k2)).toMatchObject({ status: 'revoked', entry: { line: 3 } })
    expect(judgeHostKey(e, 'x.ca', 22, k2)).toMatchObject({ status: 'cert-authority', entry: { line: 4 } })
    expect(judgeHostKey(e, 'zzz', 22, k1).status).toBe('unknown')
  })

  it('refuses a changed key naming file:line, and an unknown host unless acceptNew, which appends a line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kh-'))
    const file = join(dir, 'known_hosts')
    writeFileSync(file, `# first\n[h1]:2222 ssh-ed25519 ${b64(k1)}`) // no trailing newline on purpose
    expect(() => checkHostKey({ knownHosts: file, acceptNew: true }, 'c/n1', 'h1', 2222, k2)).toThrow(`${file}:2`)
    expect(() => checkHostKey({ knownHosts: file, acceptNew: false }, 'c/n2', 'h2', 2222, k2)).toThrow(/unknown.*--accept-new|unknown/)
    let err: unknown
    try {
      checkHostKey({ knownHosts: file, acceptNew: false }, 'c/n2', 'h2', 2222, k2)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(HostKeyError)
    expect((err as HostKeyError).message).toContain(fingerprint(k2))
    expect((err as HostKeyError).hint).toContain('--accept-new')
    checkHostKey({ knownHosts: file, acceptNew: true }, 'c/n2', 'h2', 2222, k2)
    const lines = readFileSync(file, 'utf8').split('\n')
    expect(lines[2]).toBe(`[h2]:2222 ssh-ed25519 ${b64(k2)}`)
    expect(lines[1]).toBe(`[h1]:2222 ssh-ed25519 ${b64(k1)}`)
    // Now known: accepted without acceptNew.
    checkHostKey({ knownHosts: file, acceptNew: false }, 'c/n2', 'h2', 2222, k2)
  })

  it('treats a missing known_hosts file as empty (unknown host), creating it only with acceptNew', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'kh-')), 'sub', 'known_hosts')
    expect(() => checkHostKey({ knownHosts: file, acceptNew: false }, 'n', 'h', 22, k1)).toThrow(HostKeyError)
    checkHostKey({ knownHosts: file, acceptNew: true }, 'n', 'h', 22, k1)
    expect(readFileSync(file, 'utf8')).toBe(`h ssh-ed25519 ${b64(k1)}\n`)
  })
})
