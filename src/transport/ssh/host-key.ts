import { appendFileSync, mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { KupgradeError } from '../../errors.js'
import { FileReadError, MiB, readRegularText } from '../../util/read-file.js'
import { shellJoin } from '../quote.js'
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

/** A known_hosts with 100,000 hosts is about 10 MiB. */
const MAX_KNOWN_HOSTS_BYTES = 64 * MiB

function readText(file: string): string | undefined {
  try {
    // Bounded, regular files only: a FIFO or /dev/zero as known_hosts must not hang or eat memory.
    return readRegularText(file, { maxBytes: MAX_KNOWN_HOSTS_BYTES })
  } catch (err) {
    if (err instanceof FileReadError && err.code === 'ENOENT') return undefined
    throw new HostKeyError(`cannot read known_hosts file ${file}: ${err instanceof FileReadError ? err.reason : (err as Error).message}`, {
      hint: 'set knownHosts (or UserKnownHostsFile) to a regular known_hosts file',
    })
  }
}

function readEntries(file: string): KnownHostEntry[] {
  const text = readText(file)
  return text === undefined ? [] : parseKnownHosts(text, file)
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
        // The command is meant to be pasted into a shell: the file name is quoted as any other argument would be.
        { hint: `if the node was legitimately rebuilt, remove line ${verdict.entry.line} of ${file} (${shellJoin(['ssh-keygen', '-R', token, '-f', file])}) and verify the new key` },
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
  const text = readText(file)
  return text !== undefined && text.length > 0 && !text.endsWith('\n')
}
