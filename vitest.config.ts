import { availableParallelism } from 'node:os'
import { defineConfig } from 'vitest/config'

// The lab end-to-end files mostly wait on simulated delays (restarts, Ready, gate intervals): two of them side by side
// kept a 2-core machine about 40 % busy. Three files per core fill it (the suite: 887 s with 2 workers, 631 s with 4,
// 513 s with 6 on 2 cores, all green); more would only trade waiting for contention. Each file has loopback
// addresses of its own, so they do not collide.
const workers = Math.max(2, Math.min(6, availableParallelism() * 3))

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: workers,
  },
})
