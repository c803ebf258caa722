import { relative } from 'node:path'
import { BaseSequencer, type TestSpecification } from 'vitest/node'

/**
 * The order files start in, when vitest has no durations of its own (a clean clone, as CI is): the lab's whole-run
 * files (`*.e2e.test.ts`, minutes each) first, then the rest, each group larger files first. vitest's own order there
 * is by size alone, which started the packed-package demo (a small file that waits two minutes on npm and the demo's
 * simulated delays) among the last: the suite then ended on it with two workers idle. With durations recorded (a
 * second local run) vitest's longest-first order is kept.
 */
export class E2eFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const key = (f: TestSpecification): string => `${f.project.name}:${relative(this.ctx.config.root, f.moduleId)}`
    if (files.every((f) => this.ctx.cache.getFileTestResults(key(f)))) return super.sort(files)
    const size = (f: TestSpecification): number => this.ctx.cache.getFileStats(key(f))?.size ?? 0
    return [...files].sort((a, b) => Number(!isE2e(a.moduleId)) - Number(!isE2e(b.moduleId)) || size(b) - size(a))
  }
}

export const isE2e = (file: string): boolean => file.endsWith('.e2e.test.ts')
