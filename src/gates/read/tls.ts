import { connect, type PeerCertificate } from 'node:tls'
import { request } from 'node:https'

export interface TlsObservation {
  /** The leaf certificate the endpoint served. */
  subject?: string
  validTo?: Date
  /** HTTP status of GET path, when one was asked for. */
  status?: number
  body?: string
  error?: string
}

/**
 * From the runner: open TLS to an https endpoint, note the served certificate, and GET a path (/readyz). The chain is
 * not verified here on purpose: this reads what is served (an expired certificate must still be observable); the
 * authenticated kubectl path verifies trust.
 */
export function probeHttps(url: string, path: string | undefined, timeoutMs: number): Promise<TlsObservation> {
  const u = new URL(url)
  return new Promise((resolve) => {
    const done = (o: TlsObservation) => resolve(o)
    if (!path) {
      const s = connect({ host: u.hostname, port: Number(u.port || 443), servername: servername(u.hostname), rejectUnauthorized: false, timeout: timeoutMs }, () => {
        const c = s.getPeerCertificate()
        s.destroy()
        done(certOf(c))
      })
      s.on('timeout', () => { s.destroy(); done({ error: `no TLS handshake within ${timeoutMs} ms` }) })
      s.on('error', (e) => done({ error: e.message }))
      return
    }
    const req = request({ host: u.hostname, port: Number(u.port || 443), path, method: 'GET', rejectUnauthorized: false, timeout: timeoutMs, servername: servername(u.hostname), agent: false }, (res) => {
      const cert = certOf((res.socket as import('node:tls').TLSSocket).getPeerCertificate?.() ?? ({} as PeerCertificate))
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { if (body.length < 4096) body += d })
      res.on('end', () => done({ ...cert, status: res.statusCode ?? 0, body }))
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', (e) => done({ error: e.message }))
    req.end()
  })
}

const servername = (h: string) => (/^[\d.]+$|:/.test(h) ? undefined : h) as string

function certOf(c: PeerCertificate): TlsObservation {
  if (!c || !c.valid_to) return {}
  return { subject: c.subject?.CN ? `CN=${c.subject.CN}` : JSON.stringify(c.subject), validTo: new Date(c.valid_to) }
}
