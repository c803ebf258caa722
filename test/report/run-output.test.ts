import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import type { ExecutorEvent, StepRef } from '../../src/executor/events.js'
import { createRunOutput, type OutputMode } from '../../src/report/run-output.js'

/**
 * A run prints what nodes, hooks and clusters said (a command's stderr, a hook's output, a gate's evidence). Their
 * control characters must be shown, not obeyed by the terminal or a CI log: an ESC sequence can clear the screen or
 * recolour it, a CR hide what came before it on the line.
 */
const T = '2026-12-06T17:00:00.000Z'
const step: StepRef = { id: 's/c/hop1/n-1/restart', stage: 's', cluster: 'c', node: 'n-1', action: 'restart', title: 'restart k3s', mutates: true }
const hostile = 'k3s: failed\u001b[2J\rall good\nsecond line of stderr\u0007'

async function run(mode: OutputMode): Promise<{ out: string; report: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'kupgrade-run-output-'))
  let out = ''
  const stdout = new Writable({ write(c, _e, cb) { out += String(c); cb() } })
  const o = await createRunOutput({ mode, stdout, env: {}, verbose: true, color: false })
  const journal = join(dir, 'journal.jsonl')
  const events = [
    { type: 'run-started', time: T, runId: 'r1', plan: '/p/plan.yaml', journal, dryRun: false, resumed: false, stages: ['s'], outline: [], warnings: ['cluster c: held by "evil\u001b]0;pwned\u0007"'] },
    { type: 'step-output', time: T, step, stream: 'stderr', line: 'progress\u001b[1A\u001b[K 100%' },
    { type: 'step-failed', time: T, step, attempt: 1, durationMs: 10, error: hostile, evidence: ['after: \u001b[31mred\u001b[0m'] },
    { type: 'run-finished', time: T, runId: 'r1', outcome: 'failed', exitCode: 1, durationMs: 20, journal, message: `s/c/n-1: ${hostile}` },
  ] as ExecutorEvent[]
  for (const e of events) o.sink(e)
  await o.finish()
  return { out, report: readFileSync(join(dir, 'report.md'), 'utf8') }
}

describe('run output: what the cluster said is shown, not obeyed', () => {
  it('plain lines (and the summary, and report.md) escape ESC, BEL and CR and keep a multi-line error\'s lines', async () => {
    const { out, report } = await run('plain')
    for (const text of [out, report]) {
      expect(text).not.toMatch(/[\u0007\u001b\r]/)
    }
    expect(out).toContain('✗ restart k3s: k3s: failed\\e[2J\\rall good\nsecond line of stderr\\a')
    expect(out).toContain('! progress\\e[1A\\e[K 100%')
    expect(out).toContain('    after: \\e[31mred\\e[0m')
    expect(out).toContain('warning: cluster c: held by "evil\\e]0;pwned\\a"')
  })

  it('json keeps the values as they were (JSON escapes them itself)', async () => {
    const { out } = await run('json')
    const failed = out.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.type === 'step-failed')
    expect(failed.error).toBe(hostile)
    expect(out).not.toMatch(/[\u0007\u001b\r]/)
  })
})
