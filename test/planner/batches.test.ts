import { describe, expect, it } from 'vitest'
import { batchSize, workerBatches } from '../../src/planner/batches.js'

const workers = (n: number) => Array.from({ length: n }, (_, i) => `w${i + 1}`)
const sizes = (b: unknown[][]) => b.map((x) => x.length)

describe('batchSize', () => {
  it('a number is a node count, never less than 1', () => {
    expect(batchSize(2, 10)).toBe(2)
    expect(batchSize(1, 0)).toBe(1)
    expect(batchSize(50, 3)).toBe(50)
  })

  it.each([
    ['25%', 3, 1], // 0.75 rounds down to 0, then up to the floor of 1
    ['25%', 4, 1],
    ['25%', 7, 1],
    ['25%', 8, 2],
    ['34%', 6, 2],
    ['50%', 5, 2],
    ['99%', 100, 99],
    ['100%', 7, 7],
    ['1%', 1, 1],
    ['1%', 250, 2],
    ['30%', 10, 3],
    ['33%', 10, 3],
  ] as const)('%s of %d workers is %d (rounded down, at least 1)', (pct, n, want) => {
    expect(batchSize(pct, n)).toBe(want)
  })
})

describe('workerBatches', () => {
  it('canary first, then batches of maxUnavailable, in order, each worker once', () => {
    const b = workerBatches(workers(10), 3, 1)
    expect(sizes(b)).toEqual([1, 3, 3, 3])
    expect(b.flat()).toEqual(workers(10))
  })

  it('canary 0: no canary batch', () => {
    expect(sizes(workerBatches(workers(5), 2, 0))).toEqual([2, 2, 1])
  })

  it('the canary is never larger than maxUnavailable', () => {
    expect(sizes(workerBatches(workers(10), 2, 3))).toEqual([2, 2, 2, 2, 2])
    expect(sizes(workerBatches(workers(8), '25%', 3))).toEqual([2, 2, 2, 2])
  })

  it('the canary is never larger than the workers there are', () => {
    expect(sizes(workerBatches(workers(2), 5, 3))).toEqual([2])
  })

  it('no workers: no batches', () => {
    expect(workerBatches([], '50%', 1)).toEqual([])
  })

  it('percentages follow the rounding: 25% of 3 is batches of 1', () => {
    expect(sizes(workerBatches(workers(3), '25%', 1))).toEqual([1, 1, 1])
    expect(sizes(workerBatches(workers(6), '34%', 1))).toEqual([1, 2, 2, 1])
  })

  it('properties over many sizes: no batch above the size, each worker exactly once, order kept', () => {
    for (let n = 0; n <= 40; n++) {
      for (const mu of [1, 2, 3, 7, '1%', '10%', '25%', '33%', '50%', '100%'] as const) {
        for (let canary = 0; canary <= 3; canary++) {
          const size = batchSize(mu, n)
          const b = workerBatches(workers(n), mu, canary)
          expect(b.flat()).toEqual(workers(n))
          for (const batch of b) {
            expect(batch.length).toBeGreaterThan(0)
            expect(batch.length).toBeLessThanOrEqual(size)
          }
          if (n > 0 && canary > 0) expect(b[0]!.length).toBe(Math.min(canary, size, n))
        }
      }
    }
  })
})
