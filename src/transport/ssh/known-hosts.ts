import { createHash, createHmac } from 'node:crypto'

/**
 * OpenSSH known_hosts, read the way `ssh` reads it (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): optional marker
 * (`@revoked`, `@cert-authority`), comma-separated host patterns (wildcards `*` `?`, negation `!`, `[host]:port`
 * for non-22 ports) or one hashed name `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`, key type, base64 key.
 */
export interface KnownHostEntry {
  file: string
  /** 1-based, so messages can say file:line. */
  line: number
  marker?: 'revoked' | 'cert-authority'
  hosts: string
  keyType: string
  key: Buffer
}

export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const fields = line.split(/\s+/)
    let marker: KnownHostEntry['marker']
    if (fields[0]!.startsWith('@')) {
      const m = fields.shift()!
      // An unknown marker makes OpenSSH ignore the line; doing the same keeps us from trusting what we can't read.
      if (m !== '@revoked' && m !== '@cert-authority') return
      marker = m === '@revoked' ? 'revoked' : 'cert-authority'
    }
    const [hosts, keyType, b64] = fields
    if (!hosts || !keyType || !b64) return
    const key = Buffer.from(b64, 'base64')
    if (key.length === 0) return
    entries.push({ file, line: i + 1, ...(marker ? { marker } : {}), hosts, keyType, key })
  })
  return entries
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export const hostToken = (host: string, port: number): string => (port === 22 ? host : `[${host}]:${port}`)

function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')
  return new RegExp(`^${body}$`, 'i')
}

function hashedMatches(hosts: string, token: string): boolean {
  const [, magic, salt, hash] = hosts.split('|')
  if (magic !== '1' || !salt || !hash) return false
  const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(token).digest('base64')
  return mac === hash
}

/** Does this entry's host field name `host:port`? Negations win over positive matches, as in OpenSSH's match_hostname. */
export function entryMatches(entry: Pick<KnownHostEntry, 'hosts'>, host: string, port: number): boolean {
  const token = hostToken(host, port)
  if (entry.hosts.startsWith('|')) return hashedMatches(entry.hosts, token)
  let matched = false
  for (const pattern of entry.hosts.split(',')) {
    const negated = pattern.startsWith('!')
    const p = negated ? pattern.slice(1) : pattern
    if (globToRegExp(p).test(token)) {
      if (negated) return false
      matched = true
    }
  }
  return matched
}

/** The key type inside an SSH public key blob (its first length-prefixed string). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown'
  const len = blob.readUInt32BE(0)
  return blob.subarray(4, 4 + len).toString('latin1')
}

/** `SHA256:…`, the fingerprint `ssh` and `ssh-keygen -l` print, so users can compare. */
export const fingerprint = (blob: Buffer): string =>
  `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`

export const knownHostsLine = (host: string, port: number, blob: Buffer): string =>
  `${hostToken(host, port)} ${keyTypeOf(blob)} ${blob.toString('base64')}`
