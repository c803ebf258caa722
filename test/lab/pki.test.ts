import { X509Certificate } from 'node:crypto'
import { createServer } from 'node:https'
import { request } from 'node:https'
import { describe, expect, it } from 'vitest'
import { createCA, issue } from '../../src/lab/pki/x509.js'

/** The pure-TypeScript lab CA: its certificates verify with Node's X.509 and work for real TLS. */
describe('lab CA', () => {
  const ca = createCA('test-ca')
  const day = 86400_000

  it('issues server certificates that chain to the CA, with IP and DNS subjectAltNames', () => {
    const leaf = issue(ca, { commonName: 'kube-apiserver', usage: 'server', altNames: ['127.0.34.1', 'kubernetes'], notAfter: new Date(Date.now() + 30 * day) })
    const x = new X509Certificate(leaf.certPem)
    expect(x.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true)
    expect(x.checkIssued(new X509Certificate(ca.certPem))).toBe(true)
    expect(x.subjectAltName).toBe('IP Address:127.0.34.1, DNS:kubernetes')
    expect(x.ca).toBe(false)
    expect(new X509Certificate(ca.certPem).ca).toBe(true)
  })

  it('puts the group in O for client certificates (system:masters)', () => {
    const c = issue(ca, { commonName: 'admin', organization: 'system:masters', usage: 'client', notAfter: new Date(Date.now() + day) })
    expect(new X509Certificate(c.certPem).subject).toBe('O=system:masters\nCN=admin')
  })

  it('can issue already-expired certificates', () => {
    const c = issue(ca, { commonName: 'old', usage: 'server', notBefore: new Date(Date.now() - 10 * day), notAfter: new Date(Date.now() - day) })
    expect(new Date(new X509Certificate(c.certPem).validTo).getTime()).toBeLessThan(Date.now())
  })

  it('serves TLS that a client trusting only the CA accepts, with mutual TLS', async () => {
    const server = issue(ca, { commonName: 'srv', usage: 'server', altNames: ['127.0.34.1'], notAfter: new Date(Date.now() + day) })
    const client = issue(ca, { commonName: 'me', organization: 'system:masters', usage: 'client', notAfter: new Date(Date.now() + day) })
    const s = createServer({ key: server.keyPem, cert: server.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      res.end((req.socket as import('node:tls').TLSSocket).getPeerCertificate().subject.CN)
    })
    await new Promise<void>((r) => s.listen(16443, '127.0.34.1', r))
    try {
      const body = await new Promise<string>((resolve, reject) => {
        request('https://127.0.34.1:16443/', { ca: ca.certPem, key: client.keyPem, cert: client.certPem, timeout: 10_000 }, (res) => {
          let b = ''
          res.on('data', (c) => (b += c))
          res.on('end', () => resolve(b))
        }).on('error', reject).end()
      })
      expect(body).toBe('me')
    } finally {
      s.closeAllConnections()
      await new Promise((r) => s.close(r))
    }
  })
})
