/**
 * Exponential backoff with full jitter (delay uniform in [0, min(cap, base·2^attempt)]): many nodes failing at once
 * (sshd MaxStartups, an API server shedding load with 429) must not retry in lockstep.
 */
export interface BackoffOptions {
  baseMs: number
  capMs: number
  random?: () => number
}

export const backoffDelay = (attempt: number, o: BackoffOptions): number =>
  Math.floor((o.random ?? Math.random)() * Math.min(o.capMs, o.baseMs * 2 ** attempt))

/** Resolves after `ms`, or rejects at once when the signal aborts (so Ctrl-C never waits out a backoff). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal!.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
