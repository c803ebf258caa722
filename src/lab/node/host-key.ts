import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import ssh2 from 'ssh2'

const { utils } = ssh2

export interface HostKey {
  /** OpenSSH private key text, as ssh2's Server takes it. */
  privateKey: string
  /** `ssh-ed25519 AAAA…` without a comment: what a known_hosts line carries after the host pattern. */
  publicKey: string
}

/**
 * An ed25519 key pair in OpenSSH format that ssh2 can read back. ssh2's own generator drops a leading zero byte of
 * the public key about once in 200 keys (measured: 16 of 3000), leaving a pair that neither ssh2 nor OpenSSH
 * parses; such pairs are thrown away.
 */
export function generateEd25519KeyPair(): { private: string; public: string } {
  for (let i = 0; i < 100; i++) {
    const pair = utils.generateKeyPairSync('ed25519')
    if (!(utils.parseKey(pair.private) instanceof Error) && !(utils.parseKey(pair.public) instanceof Error)) return pair
  }
  throw new Error('lab node: could not generate a valid ed25519 key pair')
}

/** The OpenSSH public line (`type base64`) of any key ssh2 can parse. */
export function publicLineOf(keyText: string | Buffer): string {
  const parsed = utils.parseKey(keyText)
  if (parsed instanceof Error) throw new Error(`lab node: cannot parse host key: ${parsed.message}`)
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  return `${key.type} ${key.getPublicSSH().toString('base64')}`
}

/**
 * The node's ed25519 host key: the given one, else the one persisted in `file`, else a new one written there, so a
 * node restarted on the same root keeps the identity its clients pinned in known_hosts.
 */
export function loadHostKey(file: string, given?: string | Buffer): HostKey {
  if (given !== undefined) {
    const privateKey = given.toString()
    return { privateKey, publicKey: publicLineOf(privateKey) }
  }
  if (!existsSync(file)) {
    const pair = generateEd25519KeyPair()
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, pair.private, { mode: 0o600 })
  }
  const privateKey = readFileSync(file, 'utf8')
  return { privateKey, publicKey: publicLineOf(privateKey) }
}
