import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Lab and interop suites start servers on loopback; keep the 2-core machines from thrashing.
    maxWorkers: 2,
    // Two test files' labs share the machine's 127.0.0.1:10248/10249/10256 relay (src/lab/node/local-ports.ts), which
    // passes between lab processes when the holder stops; a request that lands in that handover gets an empty answer.
    // Retried up to twice so such a race is not a red CI; a broken feature still fails all three attempts.
    retry: 2,
  },
})
