/**
 * Worker batches: a canary batch first (at most `canary` nodes), then batches of `maxUnavailable`. A percentage is
 * of the cluster's workers, rounded down, and never less than 1 — so "25%" of 3 workers is 1, not 0 (k0sctl's
 * integer division bug made its batch size silently 1; here the rounding is stated and tested).
 */
export function batchSize(maxUnavailable: number | string, workers: number): number {
  if (typeof maxUnavailable === 'number') return Math.max(1, maxUnavailable)
  const pct = Number(maxUnavailable.replace('%', ''))
  return Math.max(1, Math.floor((workers * pct) / 100))
}

export function workerBatches<T>(workers: readonly T[], maxUnavailable: number | string, canary: number): T[][] {
  const size = batchSize(maxUnavailable, workers.length)
  const batches: T[][] = []
  let i = 0
  const canaryCount = Math.min(canary, size, workers.length)
  if (canaryCount > 0) {
    batches.push(workers.slice(0, canaryCount))
    i = canaryCount
  }
  for (; i < workers.length; i += size) batches.push(workers.slice(i, i + size))
  return batches
}
