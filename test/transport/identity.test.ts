import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { IdentityStore, SshAuthError } from '../../src/transport/ssh/identity.js'
import { makeKey } from './helpers/ssh-server.js'

const dir = mkdtempSync(join(tmpdir(), 'kupgrade-identity-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const write = (name: string, text: string) => {
  const f = join(dir, name)
  writeFileSync(f, text, { mode: 0o600 })
  return f
}

describe('transport/ssh/identity', () => {
  it('asks for a passphrase once per key file, however many nodes load it at once', async () => {
    const file = write('enc', makeKey('correct horse').privatePem)
    const questions: string[] = []
    const store = new IdentityStore({ env: {}, prompt: async (q) => { questions.push(q); return 'correct horse' } })
    const keys = await Promise.all(Array.from({ length: 10 }, () => store.load(file)))
    expect(new Set(keys).size).toBe(1)
    expect(questions).toEqual([`Enter passphrase for ${file}: `])
  })

  it('prefers KUPGRADE_SSH_PASSPHRASE over prompting', async () => {
    const file = write('enc2', makeKey('from-env').privatePem)
    const store = new IdentityStore({ env: { KUPGRADE_SSH_PASSPHRASE: 'from-env' }, prompt: async () => { throw new Error('must not prompt') } })
    await expect(store.load(file)).resolves.toBeTruthy()
  })

  it('fails clearly for a missing file, a non-key and an encrypted key without any passphrase source', async () => {
    const store = new IdentityStore({ env: {} })
    await expect(store.load(join(dir, 'nope'))).rejects.toThrow(`cannot read identity file ${join(dir, 'nope')}: no such file`)
    await expect(store.load(write('junk', 'not a key'))).rejects.toThrow(SshAuthError)
    const err = await store.load(write('enc3', makeKey('x').privatePem)).catch((e) => e)
    expect(err.message).toContain('is encrypted and no passphrase is available')
    expect(err.hint).toContain('KUPGRADE_SSH_PASSPHRASE')
  })
})
