/**
 * A minimal DER (ASN.1) writer: just the types an X.509 certificate needs. Pure TypeScript so the lab's CA works on a
 * machine without the `openssl` CLI and costs no process start per certificate (a 100-node lab issues many).
 */

const length = (n: number): Buffer => {
  if (n < 0x80) return Buffer.from([n])
  const bytes: number[] = []
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

export const tlv = (tag: number, ...content: Buffer[]): Buffer => {
  const body = Buffer.concat(content)
  return Buffer.concat([Buffer.from([tag]), length(body.length), body])
}

export const sequence = (...items: Buffer[]): Buffer => tlv(0x30, ...items)
export const set = (...items: Buffer[]): Buffer => tlv(0x31, ...items)
export const octetString = (b: Buffer): Buffer => tlv(0x04, b)
export const bitString = (b: Buffer): Buffer => tlv(0x03, Buffer.from([0]), b)
export const utf8String = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'))
export const boolean = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]))
/** Context-specific constructed tag [n] (EXPLICIT wrapping). */
export const explicit = (n: number, content: Buffer): Buffer => tlv(0xa0 | n, content)
/** Context-specific primitive tag [n] (IMPLICIT, e.g. GeneralName choices). */
export const implicit = (n: number, content: Buffer): Buffer => tlv(0x80 | n, content)

/** A non-negative INTEGER from big-endian bytes: strip leading zeros, add one back if the top bit is set. */
export const unsignedInteger = (bytes: Buffer): Buffer => {
  let i = 0
  while (i < bytes.length - 1 && bytes[i] === 0) i++
  let b = bytes.subarray(i)
  if ((b[0] ?? 0) & 0x80) b = Buffer.concat([Buffer.from([0]), b])
  return tlv(0x02, b)
}
export const smallInteger = (n: number): Buffer => unsignedInteger(Buffer.from([n]))

export const oid = (dotted: string): Buffer => {
  const parts = dotted.split('.').map(Number)
  const out: number[] = [40 * (parts[0] ?? 0) + (parts[1] ?? 0)]
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f]
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80)
    out.push(...chunk)
  }
  return tlv(0x06, Buffer.from(out))
}

/** RFC 5280: UTCTime through 2049, GeneralizedTime after. */
export const time = (d: Date): Buffer => {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) // YYYYMMDDHHMMSS
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`))
}
