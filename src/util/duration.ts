/**
 * Durations as users write them in plans and flags: `90s`, `5m`, `1h30m`, `250ms`, `2d`. Plain numbers are refused:
 * "timeout: 300" is ambiguous (seconds? ms?), and an ambiguous drain timeout is how drains end up waiting forever.
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g

export const parseDuration = (text: string): number | undefined => {
  const s = text.trim()
  if (!WHOLE.test(s)) return undefined
  let total = 0
  for (const [, n, unit] of s.matchAll(PART)) total += Number(n) * UNIT_MS[unit!]!
  return Math.round(total)
}

export const formatDuration = (ms: number): string => {
  if (ms === 0) return '0s'
  if (ms < 1000) return `${ms}ms`
  const parts: string[] = []
  let rest = Math.round(ms / 1000)
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`)
      rest %= size
    }
  }
  return parts.join('')
}
