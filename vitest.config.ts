import { availableParallelism } from 'node:os'
import { defineConfig } from 'vitest/config'

// The lab end-to-end files mostly wait on simulated delays (restarts, Ready, gate intervals): two of them side by side
// kept a 2-core machine about 40 % busy. Three files per core use the waits (the suite on 2 cores: 887 s with 2
// workers, 631 s with 4, 513 s with 6); beyond six was not measured. Each file has loopback addresses of its own, so
// they do not collide; a test that races with a busy loop shows up here first (test/lab/node/off-loop-spawn.test.ts).
const workers = Math.max(2, Math.min(6, availableParallelism() * 3))

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: workers,
  },
})
