/**
 * Kubernetes resource quantities, as far as the lab needs them: CPU in millicores (`100m`, `2`, `0.5`) and bytes
 * (`128Mi`, `8Gi`, `1G`, `500M`, plain numbers). Kept in integers so capacity arithmetic in the scheduler is exact.
 */
const BYTE_SUFFIX: Record<string, number> = {
  '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4,
}

export function parseCpu(q: string | number): number | undefined {
  const s = String(q).trim()
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(s)
  if (!m) return undefined
  return m[2] === 'm' ? Math.round(Number(m[1])) : Math.round(Number(m[1]) * 1000)
}

export function parseBytes(q: string | number): number | undefined {
  const s = String(q).trim()
  const m = /^(\d+(?:\.\d+)?)(k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(s)
  if (!m) return undefined
  return Math.round(Number(m[1]) * BYTE_SUFFIX[m[2] ?? '']!)
}

export const formatCpu = (milli: number): string => (milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`)

export function formatBytes(bytes: number): string {
  for (const [suffix, size] of [['Gi', 1024 ** 3], ['Mi', 1024 ** 2], ['Ki', 1024]] as const) {
    if (bytes % size === 0 && bytes >= size) return `${bytes / size}${suffix}`
  }
  return String(bytes)
}
