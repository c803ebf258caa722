import { defineConfig } from 'vitest/config'
import { E2eFirstSequencer } from './test/helpers/sequencer.js'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Lab and interop suites start servers on loopback and spend most of their time in the lab nodes' commands. Two
    // workers left a quarter of a 2-core machine idle (2,067 s busy in a 1,366 s run) while tests waited on the lab's
    // simulated delays; three keep it busy. Tests that observe a window in time wait on the lab's own signals, and
    // the suite passed with three workers under twice the load of a CI run. Six thrashed (a unit's 1.5 s start delay
    // missed, test/lab/node/k3s.test.ts, before that test waited on signals).
    maxWorkers: 3,
    sequence: { sequencer: E2eFirstSequencer },
  },
})
