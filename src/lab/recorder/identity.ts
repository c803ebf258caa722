import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'

/**
 * Who sent a request, as the recorder names it: the client certificate's CN, a digest of the bearer token (a token is
 * a secret and is never recorded), or anonymous. SSH keys by their OpenSSH fingerprint.
 */
export function apiClient(req: IncomingMessage): string {
  const auth = req.headers.authorization
  if (auth) {
    const token = auth.replace(/^Bearer\s+/i, '')
    return `token:sha256:${createHash('sha256').update(token).digest('hex').slice(0, 12)}`
  }
  const cert = (req.socket as TLSSocket).getPeerCertificate?.()
  const cn = cert?.subject?.CN
  if (cn) return `cert:CN=${Array.isArray(cn) ? cn.join(',') : cn}`
  return 'anonymous'
}

/** `SHA256:…` as `ssh-keygen -lf` prints it: unpadded base64 of the SHA-256 of the public key blob. */
export function sshFingerprint(publicKeyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicKeyBlob).digest('base64').replace(/=+$/, '')}`
}

/** The node-side client string; user names are checked so the value is safe inside the stand-ins' JSON lines. */
export function sshClient(user: string, fingerprint: string): string {
  return `ssh:${user.replace(/[^A-Za-z0-9._-]/g, '?')} ${fingerprint}`
}
