import { isIP } from 'node:net'

/** An IP address as a number, with its family: for comparing hosts and checking CIDRs by their bits, not their spelling. */
export interface IpValue {
  family: 4 | 6
  value: bigint
}

export function parseIp(text: string): IpValue | undefined {
  const family = isIP(text)
  if (family === 4) return { family: 4, value: v4(text) }
  if (family !== 6) return undefined
  // An embedded IPv4 tail (::ffff:10.0.0.1) is two groups written the IPv4 way.
  let s = text.toLowerCase()
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(s)
  if (tail) {
    const n = v4(tail[1]!)
    s = `${s.slice(0, -tail[1]!.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`
  }
  const [head, rest] = s.split('::') as [string, string | undefined]
  const left = head === '' ? [] : head.split(':')
  const right = rest === undefined || rest === '' ? [] : rest.split(':')
  const groups = rest === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
  return { family: 6, value: groups.reduce((acc, g) => (acc << 16n) | BigInt(`0x${g}`), 0n) }
}

const v4 = (text: string): bigint => text.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n)

const V4_MAPPED = 0xffffn << 32n

/**
 * One spelling per host, so 2001:db8::12 and 2001:DB8:0:0:0:0:0:12, NODE1.lan and node1.lan, and the IPv4-mapped
 * ::ffff:10.0.0.11 and 10.0.0.11 (the same machine over the same IPv4 socket) are seen as one.
 */
export function canonicalHost(host: string): string {
  const ip = parseIp(host)
  if (!ip) return host.toLowerCase()
  if (ip.family === 6 && ip.value >> 32n === V4_MAPPED >> 32n) return `v4:${ip.value & 0xffffffffn}`
  return `v${ip.family}:${ip.value}`
}

/**
 * Why a service CIDR is not a network address (10.96.0.0/12), or undefined: a prefix length with leading zeros or out
 * of range, /0 (every address would be a service address), or host bits set (10.96.0.1/12 — kube-apiserver refuses it,
 * and it is usually the cluster IP of the API service pasted by mistake).
 */
export function cidrProblem(text: string): string | undefined {
  const m = /^([^/]+)\/(\d+)$/.exec(text)
  if (!m) return 'is not a CIDR such as 10.96.0.0/12 or fd00:10:96::/108'
  const ip = parseIp(m[1]!)
  if (!ip) return `has ${JSON.stringify(m[1])}, which is not an IP address (IPv4 without leading zeros, or IPv6)`
  const width = ip.family === 4 ? 32 : 128
  if (/^0\d/.test(m[2]!)) return 'has a prefix length with leading zeros'
  const bits = Number(m[2])
  if (bits > width) return `has a prefix length past /${width}`
  if (bits === 0) return 'is /0: every address would be a service address'
  const host = (1n << BigInt(width - bits)) - 1n
  if ((ip.value & host) !== 0n) return `has host bits set: the network address is ${format(ip.value & ~host, ip.family)}/${bits}`
  return undefined
}

function format(value: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.')
  const groups = Array.from({ length: 8 }, (_, i) => ((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16))
  // The canonical form (RFC 5952) via URL: the longest run of zero groups becomes ::.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1)
}
