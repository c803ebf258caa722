import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import { isIP } from 'node:net'
import * as der from './der.js'

/**
 * The lab's certificate authority: ECDSA P-256 certificates built in pure TypeScript (see der.ts). Real TLS clients
 * (kubectl's Go crypto/tls, Node, curl) verify them like any cluster CA's, so expiry faults surface exactly as on a
 * real cluster ("x509: certificate has expired or is not yet valid").
 */

export interface IssuedCert {
  certPem: string
  keyPem: string
  notBefore: Date
  notAfter: Date
}

export interface CertAuthority extends IssuedCert {
  key: KeyObject
  subjectDer: Buffer
  keyId: Buffer
}

export interface LeafRequest {
  commonName: string
  organization?: string
  /** DNS names and IP addresses, mixed; each goes into subjectAltName with the right type. */
  altNames?: string[]
  usage: 'server' | 'client'
  notBefore?: Date
  notAfter: Date
}

const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
}

const sigAlg = der.sequence(der.oid(OID.ecdsaSha256))

const name = (cn: string, o?: string): Buffer =>
  der.sequence(
    ...(o ? [der.set(der.sequence(der.oid(OID.organization), der.utf8String(o)))] : []),
    der.set(der.sequence(der.oid(OID.commonName), der.utf8String(cn))),
  )

const extension = (id: string, critical: boolean, value: Buffer): Buffer =>
  der.sequence(der.oid(id), ...(critical ? [der.boolean(true)] : []), der.octetString(value))

/** KeyUsage bits as a DER BIT STRING with the unused trailing bits counted, as DER requires. */
const keyUsage = (byte: number): Buffer => {
  let unused = 0
  while (unused < 7 && !(byte & (1 << unused))) unused++
  return der.tlv(0x03, Buffer.from([unused, byte]))
}

const altName = (n: string): Buffer => {
  const family = isIP(n)
  if (family === 4) return der.implicit(7, Buffer.from(n.split('.').map(Number)))
  if (family === 6) throw new Error(`IPv6 subjectAltName not supported by the lab CA: ${n}`)
  return der.implicit(2, Buffer.from(n, 'ascii'))
}

const keyIdOf = (spki: Buffer): Buffer => createHash('sha1').update(spki).digest()

const pem = (label: string, body: Buffer): string =>
  `-----BEGIN ${label}-----\n${body.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`

function build(a: {
  subject: Buffer
  issuer: Buffer
  publicKey: KeyObject
  signer: KeyObject
  notBefore: Date
  notAfter: Date
  extensions: Buffer[]
}): Buffer {
  const spki = a.publicKey.export({ type: 'spki', format: 'der' })
  // 16 random bytes with the top bit cleared: positive and unique, as RFC 5280 asks of serial numbers.
  const serial = randomBytes(16)
  serial[0] = (serial[0] ?? 0) & 0x7f
  const tbs = der.sequence(
    der.explicit(0, der.smallInteger(2)),
    der.unsignedInteger(serial),
    sigAlg,
    a.issuer,
    der.sequence(der.time(a.notBefore), der.time(a.notAfter)),
    a.subject,
    spki,
    der.explicit(3, der.sequence(...a.extensions)),
  )
  const signature = sign('sha256', tbs, a.signer) // ECDSA signatures come out DER-encoded by default
  return der.sequence(tbs, sigAlg, der.bitString(signature))
}

const newKey = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' })

/** A self-signed CA valid from an hour ago (clock skew) for `years`. */
export function createCA(commonName: string, years = 10): CertAuthority {
  const { publicKey, privateKey } = newKey()
  const notBefore = new Date(Date.now() - 3600_000)
  const notAfter = new Date(notBefore.getTime() + years * 365 * 86400_000)
  const subject = name(commonName)
  const keyId = keyIdOf(publicKey.export({ type: 'spki', format: 'der' }))
  const cert = build({
    subject, issuer: subject, publicKey, signer: privateKey, notBefore, notAfter,
    extensions: [
      extension(OID.basicConstraints, true, der.sequence(der.boolean(true))),
      extension(OID.keyUsage, true, keyUsage(0x86)), // digitalSignature, keyCertSign, cRLSign
      extension(OID.subjectKeyId, false, der.octetString(keyId)),
    ],
  })
  return {
    certPem: pem('CERTIFICATE', cert),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    key: privateKey,
    subjectDer: subject,
    keyId,
    notBefore,
    notAfter,
  }
}

/** A leaf certificate signed by `ca`: a TLS server cert (with SANs) or a client cert (CN = user, O = group). */
export function issue(ca: CertAuthority, req: LeafRequest): IssuedCert {
  const { publicKey, privateKey } = newKey()
  const notBefore = req.notBefore ?? new Date(Math.min(Date.now() - 3600_000, req.notAfter.getTime() - 86400_000))
  const spki = publicKey.export({ type: 'spki', format: 'der' })
  const exts = [
    extension(OID.basicConstraints, true, der.sequence()),
    extension(OID.keyUsage, true, keyUsage(0xa0)), // digitalSignature, keyEncipherment
    extension(OID.extKeyUsage, false, der.sequence(der.oid(req.usage === 'server' ? OID.serverAuth : OID.clientAuth))),
    extension(OID.subjectKeyId, false, der.octetString(keyIdOf(spki))),
    extension(OID.authorityKeyId, false, der.sequence(der.implicit(0, ca.keyId))),
  ]
  if (req.altNames?.length) exts.push(extension(OID.subjectAltName, false, der.sequence(...req.altNames.map(altName))))
  const cert = build({
    subject: name(req.commonName, req.organization), issuer: ca.subjectDer, publicKey, signer: ca.key,
    notBefore, notAfter: req.notAfter, extensions: exts,
  })
  return {
    certPem: pem('CERTIFICATE', cert),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    notBefore,
    notAfter: req.notAfter,
  }
}
