import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import ssh2 from 'ssh2'
import type { ParsedKey } from 'ssh2'
import { KupgradeError } from '../../errors.js'
import { FileReadError, MiB, readRegularFile } from '../../util/read-file.js'
import { promptHidden } from './passphrase.js'

export class SshAuthError extends KupgradeError {}

const MAX_IDENTITY_BYTES = 1 * MiB

export interface PassphraseSource {
  env: NodeJS.ProcessEnv
  /** Interactive prompt; absent when there is no TTY (CI), so an encrypted key without env passphrase fails clearly. */
  prompt?: (question: string) => Promise<string>
}

export const defaultPassphraseSource = (env: NodeJS.ProcessEnv = process.env): PassphraseSource => ({
  env,
  ...(process.stdin.isTTY ? { prompt: (q: string) => promptHidden(q) } : {}),
})

/** The files `ssh` tries when none is configured. */
export const defaultIdentityFiles = (home = homedir()): string[] =>
  ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => join(home, '.ssh', f)).filter((f) => existsSync(f))

const isEncryptedError = (e: Error) => /encrypted|passphrase|bad decrypt/i.test(e.message)

/**
 * Loads and decrypts identity files once per process: many nodes share one key, and the user must be asked for a
 * passphrase at most once. The passphrase itself never enters a message or log line.
 */
export class IdentityStore {
  private readonly keys = new Map<string, Promise<ParsedKey>>()
  constructor(private readonly source: PassphraseSource) {}

  load(file: string): Promise<ParsedKey> {
    let key = this.keys.get(file)
    if (!key) {
      key = this.decrypt(file)
      this.keys.set(file, key)
    }
    return key
  }

  private async decrypt(file: string): Promise<ParsedKey> {
    let data: Buffer
    try {
      // A private key is a few KiB: /dev/zero or a FIFO named as an identity file must not eat memory or hang.
      data = readRegularFile(file, { maxBytes: MAX_IDENTITY_BYTES })
    } catch (err) {
      throw new SshAuthError(`cannot read identity file ${file}: ${err instanceof FileReadError ? err.reason : (err as Error).message}`)
    }
    const plain = first(ssh2.utils.parseKey(data))
    if (!(plain instanceof Error)) return plain
    if (!isEncryptedError(plain)) throw new SshAuthError(`identity file ${file} is not a private key ssh2 can read: ${plain.message}`)
    let passphrase = this.source.env.KUPGRADE_SSH_PASSPHRASE
    if (passphrase === undefined || passphrase === '') {
      if (!this.source.prompt) {
        throw new SshAuthError(`identity file ${file} is encrypted and no passphrase is available`, {
          hint: 'set KUPGRADE_SSH_PASSPHRASE, run on a terminal to be asked, or use ssh-agent (SSH_AUTH_SOCK)',
        })
      }
      passphrase = await this.source.prompt(`Enter passphrase for ${file}: `)
    }
    const key = first(ssh2.utils.parseKey(data, passphrase))
    if (key instanceof Error) throw new SshAuthError(`cannot decrypt identity file ${file}: wrong passphrase?`)
    return key
  }
}

// parseKey returns an array for files that hold several keys; the first is the one `ssh -i` would use.
const first = (k: ParsedKey | ParsedKey[] | Error): ParsedKey | Error => (Array.isArray(k) ? k[0]! : k)
