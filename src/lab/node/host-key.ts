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
    const pair = utils.generateKeyPairSync('ed25519')
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, pair.private, { mode: 0o600 })
  }
  const privateKey = readFileSync(file, 'utf8')
  return { privateKey, publicKey: publicLineOf(privateKey) }
}
