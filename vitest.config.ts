import { defineConfig } from 'vitest/config'
import { E2eFirstSequencer } from './test/helpers/sequencer.js'

/** Files that replace modules with vi.mock: they need a module graph of their own (see `isolate` below). */
const MOCKING = ['test/planner/scaling.test.ts']

const common = { testTimeout: 60_000, hookTimeout: 60_000 }

export default defineConfig({
  test: {
    // Lab and interop suites start servers on loopback and spend most of their time in the lab nodes' commands, while
    // tests wait on the lab's simulated delays between them. Measured on the 2-core CI machine, clean clone: two
    // workers left a quarter of it idle (2,067 s busy in a 1,366 s run); three ran 1,064 s; four 995 s with the machine
    // 95 % busy (2,001 s of 2,095 s), every test passing. Tests that observe a window in time wait on the lab's own
    // signals, and the suite also passed with three workers under twice a CI run's load. Six thrashed (a unit's
    // 1.5 s start delay missed, test/lab/node/k3s.test.ts, before that test waited on signals).
    maxWorkers: 4,
    sequence: { sequencer: E2eFirstSequencer },
    projects: [
      {
        test: {
          ...common,
          name: 'shared',
          include: ['test/**/*.test.ts'],
          exclude: MOCKING,
          // A worker runs file after file in one process and imports each module once, instead of a new process and a
          // fresh module graph per file. Measured on this 2-core machine, the whole suite: 1,062 s and 2,109 CPU-s
          // isolated, 929 s and 1,810 CPU-s shared, every test passing. Files therefore leave no state behind: labs
          // are stopped, fake timers restored, the working directory and listeners put back.
          isolate: false,
        },
      },
      { test: { ...common, name: 'isolated', include: MOCKING } },
    ],
  },
})
