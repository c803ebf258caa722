import ssh2, { type AuthContext, type ParsedKey } from 'ssh2'
import { timingSafeEqual } from 'node:crypto'

const { utils } = ssh2

/** Authorized keys parsed once: each entry may be a whole authorized_keys text with several lines. */
export function parseAuthorizedKeys(entries: Buffer[]): ParsedKey[] {
  const keys: ParsedKey[] = []
  for (const entry of entries) {
    const lines = entry.toString('utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    for (const line of lines.length ? lines : [entry.toString('utf8')]) {
      const parsed = utils.parseKey(line)
      if (parsed instanceof Error) throw new Error(`lab node: cannot parse authorized key "${line.slice(0, 40)}…": ${parsed.message}`)
      keys.push(...(Array.isArray(parsed) ? parsed : [parsed]))
    }
  }
  return keys
}

const same = (a: Buffer, b: Buffer) => a.length === b.length && timingSafeEqual(a, b)

/**
 * Public-key auth as sshd does it: the offered key must be authorized; a query without a signature is answered
 * "yes, try it" (accept), and the real attempt must carry a signature over the session blob that verifies.
 */
export function checkPublicKey(ctx: AuthContext, keys: ParsedKey[]): 'accept' | 'reject' {
  if (ctx.method !== 'publickey') return 'reject'
  // RSA keys sign as rsa-sha2-256/512 while the key's type stays ssh-rsa; compare the key bytes, which carry the type.
  const match = keys.find((k) => same(k.getPublicSSH(), ctx.key.data))
  if (!match) return 'reject'
  if (!ctx.signature || !ctx.blob) return 'accept'
  return match.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true ? 'accept' : 'reject'
}
