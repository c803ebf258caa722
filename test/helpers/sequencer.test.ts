import { describe, expect, it } from 'vitest'
import type { TestSpecification, Vitest } from 'vitest/node'
import { E2eFirstSequencer } from './sequencer.js'

const ROOT = '/repo'
const project = { name: '', config: { sequence: { groupOrder: 0 }, isolate: true } }
const spec = (file: string) => ({ project, moduleId: `${ROOT}/${file}` }) as unknown as TestSpecification

function sequencer(sizes: Record<string, number>, durations?: Record<string, number>): E2eFirstSequencer {
  const ctx = {
    config: { root: ROOT },
    cache: {
      getFileStats: (key: string) => ({ size: sizes[key.slice(1)]! }),
      getFileTestResults: (key: string) => (durations ? { duration: durations[key.slice(1)]!, failed: false } : undefined),
    },
  }
  return new E2eFirstSequencer(ctx as unknown as Vitest)
}

const order = async (s: E2eFirstSequencer, files: string[]) => (await s.sort(files.map(spec))).map((f) => f.moduleId.slice(ROOT.length + 1))

describe('the suite\'s file order', () => {
  const sizes = { 'test/a/big-unit.test.ts': 90_000, 'test/cli/pack-demo.e2e.test.ts': 2_000, 'test/x/apply.e2e.test.ts': 9_000, 'test/a/small.test.ts': 500 }

  it('without recorded durations: the e2e files first, each group larger files first (not by size alone)', async () => {
    expect(await order(sequencer(sizes), Object.keys(sizes))).toEqual(['test/x/apply.e2e.test.ts', 'test/cli/pack-demo.e2e.test.ts', 'test/a/big-unit.test.ts', 'test/a/small.test.ts'])
  })

  it('with recorded durations: vitest\'s longest first', async () => {
    const durations = { 'test/a/big-unit.test.ts': 5, 'test/cli/pack-demo.e2e.test.ts': 130_000, 'test/x/apply.e2e.test.ts': 40_000, 'test/a/small.test.ts': 60_000 }
    expect(await order(sequencer(sizes, durations), Object.keys(sizes))).toEqual(['test/cli/pack-demo.e2e.test.ts', 'test/a/small.test.ts', 'test/x/apply.e2e.test.ts', 'test/a/big-unit.test.ts'])
  })
})
