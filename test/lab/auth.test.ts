import { request } from 'node:https'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCA, issue } from '../../src/lab/pki/x509.js'
import { smallTopology, startLab, type TestLab } from './helpers.js'

/** Authentication as a real apiserver does it: token, client certificate, anonymous, and 401 for bad credentials. */
describe('lab API authentication', () => {
  let t: TestLab
  beforeAll(async () => {
    t = await startLab(smallTopology('127.0.39'))
  })
  afterAll(async () => t?.stop())

  const call = (path: string, o: { token?: string; cert?: { certPem: string; keyPem: string } } = {}) => new Promise<number>((resolve, reject) => {
    const req = request(`https://127.0.39.1:6443${path}`, {
      ca: t.lab.ca.certPem, timeout: 10_000,
      headers: o.token ? { Authorization: `Bearer ${o.token}` } : {},
      ...(o.cert ? { cert: o.cert.certPem, key: o.cert.keyPem } : {}),
    }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.end()
  })
  const day = 86400_000

  it('accepts the lab token and a client certificate in system:masters', async () => {
    expect(await call('/api/v1/nodes', { token: t.lab.token })).toBe(200)
    const admin = issue(t.lab.ca, { commonName: 'someone', organization: 'system:masters', usage: 'client', notAfter: new Date(Date.now() + day) })
    expect(await call('/api/v1/nodes', { cert: admin })).toBe(200)
  })

  it('answers 401 to a wrong token and to a certificate from another CA', async () => {
    expect(await call('/api/v1/nodes', { token: 'wrong' })).toBe(401)
    expect(await call('/version', { token: 'wrong' })).toBe(401)
    const foreign = createCA('not-the-lab')
    const stranger = issue(foreign, { commonName: 'x', organization: 'system:masters', usage: 'client', notAfter: new Date(Date.now() + day) })
    expect(await call('/api/v1/nodes', { cert: stranger })).toBe(401)
  })

  it('lets anonymous callers read /version and health only', async () => {
    expect(await call('/version')).toBe(200)
    expect(await call('/readyz')).toBe(200)
    expect(await call('/api/v1/nodes')).toBe(403)
  })
})
