import type { Service } from 'kubernetes-types/core/v1.js'
import { errorText } from '../evidence.js'
import type { GateContext } from '../types.js'

/** The `kubernetes` Service ClusterIP is the first address of the service CIDR (facts §4.5). IPv4 only here. */
export function firstServiceIP(cidr: string): string | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr.trim())
  if (!m) return undefined
  const bits = Number(m[5])
  if (bits > 30) return undefined
  const n = (m.slice(1, 5).map(Number).reduce((a, b) => a * 256 + b, 0) >>> 0) & (bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0)
  const ip = (n + 1) >>> 0
  return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.')
}

/** What the plan says the ClusterIP is, and what the live Service says. */
export async function kubernetesServiceIP(ctx: GateContext): Promise<{ planned?: string; live?: string; error?: string }> {
  const planned = ctx.serviceCIDR ? firstServiceIP(ctx.serviceCIDR) : undefined
  try {
    const svc = await ctx.kubectl.json<Service>(['get', 'service', 'kubernetes', '-n', 'default', '-o', 'json'])
    return { ...(planned ? { planned } : {}), ...(svc.spec?.clusterIP ? { live: svc.spec.clusterIP } : {}) }
  } catch (err) {
    return { ...(planned ? { planned } : {}), error: errorText(err) }
  }
}
