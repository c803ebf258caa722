import { UsageError } from '../errors.js'
import { parseDuration } from '../util/duration.js'

/** `--deadline 90s`: a positive duration of at most a day, as milliseconds. */
export function deadlineOption(text: string): number {
  const ms = parseDuration(text)
  if (ms === undefined || ms <= 0 || ms > 86_400_000) throw new UsageError(`--deadline must be a positive duration up to 24h, such as 60s or 5m; got ${JSON.stringify(text)}`)
  return ms
}

/** A repeatable option that also takes a comma-separated list: `--cluster a --cluster b,c` → [a, b, c]. */
export const list = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)]
