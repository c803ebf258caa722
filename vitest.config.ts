import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Lab and interop suites start servers on loopback; keep the 2-core machines from thrashing. Six workers ran the
    // suite in 513 s instead of 887 s, but under that load lab tests that observe a window in time (a unit still
    // `activating` during its 1.5 s start delay, test/lab/node/k3s.test.ts) missed it: two per machine until they
    // wait on the lab's own signals instead.
    maxWorkers: 2,
  },
})
