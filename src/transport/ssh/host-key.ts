import { appendFileSync, mkdirSync, readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { KupgradeError } from '../../errors.js'
import { entryMatches, fingerprint, keyTypeOf, knownHostsLine, parseKnownHosts, type KnownHostEntry } from './known-hosts.js'

/** A host key we refuse to trust. Never retried: retrying cannot make a wrong key right. */
export class HostKeyError extends KupgradeError {}

export type HostKeyVerdict =
  | { status: 'trusted'; entry: KnownHostEntry }
  | { status: 'unknown' }
  | { status: 'changed'; entry: KnownHostEntry }
  | { status: 'revoked'; entry: KnownHostEntry }
  | { status: 'cert-authority'; entry: KnownHostEntry }

/** The pure decision, separated from file I/O so every branch is testable. */
export function judgeHostKey(entries: KnownHostEntry[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const forHost = entries.filter((e) => entryMatches(e, host, port))
  const revoked = forHost.find((e) => e.marker === 'revoked' && e.key.equals(key))
  if (revoked) return { status: 'revoked', entry: revoked }
  const plain = forHost.filter((e) => e.marker === undefined)
  const same = plain.find((e) => e.key.equals(key))
  if (same) return { status: 'trusted', entry: same }
  // A different key of the same type is the classic "REMOTE HOST IDENTIFICATION HAS CHANGED". A known key of another
  // type only is treated the same way: the pool asks for known types first, so a server offering another type is odd.
  const type = keyTypeOf(key)
  const old = plain.find((e) => e.keyType === type) ?? plain[0]
  if (old) return { status: 'changed', entry: old }
  const ca = forHost.find((e) => e.marker === 'cert-authority')
  if (ca) return { status: 'cert-authority', entry: ca }
  return { status: 'unknown' }
}

/** Key types already recorded for a host, so the handshake can ask for those first (as OpenSSH does). */
export function knownKeyTypes(file: string, host: string, port: number): string[] {
  const entries = readEntries(file)
  return [...new Set(entries.filter((e) => e.marker === undefined && entryMatches(e, host, port)).map((e) => e.keyType))]
}

function readEntries(file: string): KnownHostEntry[] {
  try {
    return parseKnownHosts(readFileSync(file, 'utf8'), file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw new HostKeyError(`cannot read known_hosts file ${file}: ${(err as Error).message}`)
  }
}

export interface HostKeyPolicy {
  knownHosts: string
  /** Record keys of hosts not yet in known_hosts (CLI `--accept-new`); a changed key is refused regardless. */
  acceptNew: boolean
}

/**
 * Checks a presented host key; throws HostKeyError with the file and line to look at. The file is read per check,
 * not cached, so a key accepted for one node (or fixed by the user) is seen by the next connection.
 */
export function checkHostKey(policy: HostKeyPolicy, who: string, host: string, port: number, key: Buffer): void {
  const file = policy.knownHosts
  const verdict = judgeHostKey(readEntries(file), host, port, key)
  const presented = `${keyTypeOf(key)} ${fingerprint(key)}`
  const token = port === 22 ? host : `[${host}]:${port}`
  switch (verdict.status) {
    case 'trusted':
      return
    case 'changed':
      throw new HostKeyError(
        `host key for ${who} (${token}) has CHANGED: it presents ${presented}, but ${file}:${verdict.entry.line} holds a different ${verdict.entry.keyType} key. ` +
          'Someone could be intercepting the connection, or the node was rebuilt.',
        { hint: `if the node was legitimately rebuilt, remove line ${verdict.entry.line} of ${file} (ssh-keygen -R '${token}' -f ${file}) and verify the new key` },
      )
    case 'revoked':
      throw new HostKeyError(`host key for ${who} (${token}) is revoked: ${file}:${verdict.entry.line} marks ${presented} @revoked`)
    case 'cert-authority':
      throw new HostKeyError(
        `${file}:${verdict.entry.line}: @cert-authority entries are not supported by kupgrade, and ${who} (${token}) has no plain host key entry`,
        { hint: `add the host's own key to ${file} (for example with ssh-keyscan after verifying its fingerprint ${presented})` },
      )
    case 'unknown':
      if (!policy.acceptNew) {
        throw new HostKeyError(`host key for ${who} (${token}) is unknown: ${file} has no entry for it (it presents ${presented})`, {
          hint: 'verify the fingerprint out of band, then run again with --accept-new to record it',
        })
      }
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
      // O_APPEND writes of one short line are atomic, so nodes accepted concurrently never interleave.
      appendFileSync(file, `${endsWithoutNewline(file) ? '\n' : ''}${knownHostsLine(host, port, key)}\n`, { mode: 0o600 })
  }
}

function endsWithoutNewline(file: string): boolean {
  try {
    const text = readFileSync(file)
    return text.length > 0 && text[text.length - 1] !== 0x0a
  } catch {
    return false
  }
}
