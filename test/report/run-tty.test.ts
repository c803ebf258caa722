import { PassThrough, Writable } from 'node:stream'
import { describe, expect, it, vi } from 'vitest'
import type { ExecutorEvent } from '../../src/executor/events.js'
import { createTtyRenderer } from '../../src/report/run-tty.js'

/**
 * The listr2 tree, driven by a run's events on a terminal-like stream; what is judged is its last frame, the one left
 * on the screen. A failed stage and cluster must not be drawn as done, a stage that never ran is one skipped line,
 * and a failure is said in full once, on its node's line.
 */
class Screen extends Writable {
  isTTY = true
  columns = 200
  rows = 60
  raw = ''
  override _write(chunk: Buffer, _: BufferEncoding, done: () => void): void {
    this.raw += chunk.toString()
    done()
  }
  /** log-update starts each frame by erasing the last one and moving to column 1 (`ESC[G`). */
  lastFrame(): string[] {
    return this.raw.split('\u001b[G').at(-1)!.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').split('\n').map((l) => l.trimEnd()).filter(Boolean)
  }
}

const time = '2026-12-06T06:00:00.000Z'
/** An event without its time (each member of the union on its own: Omit over the union would keep common keys only). */
type Untimed = ExecutorEvent extends infer E ? (E extends unknown ? Omit<E, 'time'> : never) : never
// Short enough for one line of the 80 columns listr2 assumes where the process has no terminal.
const failure = 'step w-1/wait-ready failed: timed out'

/**
 * The last frame; with `frameAfter`, also the frame drawn while the run is at each such event, into `frames`: the
 * first one `shows` accepts (listr2 redraws on its own timer), else the one there after 5 s.
 */
async function draw(events: Untimed[], o: { frameAfter?: (e: Untimed) => boolean; shows?: (frame: string[]) => boolean; frames?: string[][] } = {}): Promise<string[]> {
  const screen = new Screen()
  // log-update hides and shows the cursor on the process's own stderr: not this test's output.
  const cursor = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
  try {
    const tty = createTtyRenderer({ stdout: screen, color: false })
    for (const e of events) {
      tty.sink({ ...e, time } as ExecutorEvent)
      await new Promise((r) => setTimeout(r, 5))
      // listr2 draws every 50 ms or so: the frame shown while the run is at this event.
      if (o.frameAfter?.(e)) {
        for (let waited = 0; waited < 5_000 && !o.shows?.(screen.lastFrame()); waited += 20) await new Promise((r) => setTimeout(r, 20))
        o.frames?.push(screen.lastFrame())
      }
    }
    await tty.stop()
    await new Promise((r) => setTimeout(r, 50))
  } finally {
    cursor.mockRestore()
  }
  return screen.lastFrame()
}

describe('terminal progress tree', () => {
  it('a failed stage and its cluster are drawn failed, the failure said once, with its rollback; a stage after it is one line, not run', async () => {
    const frame = await draw([
      { type: 'run-started', runId: 'r', plan: 'p.yaml', journal: 'j', dryRun: false, resumed: false, warnings: [], stages: ['staging', 'production'], outline: [
        { stage: 'staging', clusters: [{ name: 'stg', distribution: 'k3s', nodes: ['cp-1', 'w-1', 'w-2'] }] },
        { stage: 'production', clusters: [{ name: 'prd', distribution: 'kubeadm', nodes: ['p-cp-1', 'p-w-1'] }] },
      ] },
      { type: 'stage-started', stage: 'staging' },
      { type: 'cluster-started', stage: 'staging', cluster: 'stg' },
      { type: 'node-started', stage: 'staging', cluster: 'stg', node: 'cp-1' },
      { type: 'node-done', stage: 'staging', cluster: 'stg', node: 'cp-1', durationMs: 8_800 },
      { type: 'node-started', stage: 'staging', cluster: 'stg', node: 'w-1' },
      { type: 'node-failed', stage: 'staging', cluster: 'stg', node: 'w-1', error: failure, cordoned: true },
      { type: 'rollback-started', cluster: 'stg', node: 'w-1', path: 'previous-version', detail: 'the kept binary', reason: failure },
      { type: 'rollback-done', cluster: 'stg', node: 'w-1', durationMs: 5_000, evidence: [], kept: [{ step: 'staging/stg/hop1/w-1/os-upgrade', why: 'OS packages are rolled forward' }] },
      { type: 'cluster-failed', stage: 'staging', cluster: 'stg', error: `stg/w-1: ${failure}` },
      { type: 'stage-failed', stage: 'staging', error: `stg/w-1: ${failure}` },
      { type: 'run-finished', runId: 'r', outcome: 'failed', exitCode: 1, durationMs: 90_000, journal: 'j', message: 'failed' },
    ] as Untimed[])
    expect(frame).toEqual([
      expect.stringMatching(/^❯ stage staging: see below/),
      expect.stringMatching(/^ {2}❯ stg: stg\/w-1: see below/),
      '    ✔ cp-1 ✓ 8.8s',
      // Rolled back, so no longer cordoned: the line says what became of the node, and what it kept of the run.
      // (wrapped at the pseudo-terminal's 80 columns)
      `    ✖ w-1: ${failure}; rolled back 5.0s; kept:`,
      '      os-upgrade',
      '    ↓ w-2: not upgraded',
      '↓ stage production: not run',
    ])
  })

  it('the onFailure hooks that run after a stage failed are drawn on its line while they run; the last frame is as without them', async () => {
    const hook = { id: 'staging/hook/on-failure/1', title: 'hook onFailure: hooks/notify.mjs', action: 'hook', mutates: false, stage: 'staging' } as const
    const events = [
      { type: 'run-started', runId: 'r', plan: 'p.yaml', journal: 'j', dryRun: false, resumed: false, warnings: [], stages: ['staging'], outline: [
        { stage: 'staging', clusters: [{ name: 'stg', distribution: 'k3s', nodes: ['w-1'] }] },
      ] },
      { type: 'stage-started', stage: 'staging' },
      { type: 'cluster-started', stage: 'staging', cluster: 'stg' },
      { type: 'node-started', stage: 'staging', cluster: 'stg', node: 'w-1' },
      { type: 'node-failed', stage: 'staging', cluster: 'stg', node: 'w-1', error: failure, cordoned: true },
      { type: 'cluster-failed', stage: 'staging', cluster: 'stg', error: `stg/w-1: ${failure}` },
      { type: 'stage-failed', stage: 'staging', error: `stg/w-1: ${failure}` },
      { type: 'step-started', step: hook, attempt: 1 },
      { type: 'step-done', step: hook, attempt: 1, durationMs: 2_000, changed: false, evidence: [] },
      { type: 'run-finished', runId: 'r', outcome: 'failed', exitCode: 1, durationMs: 90_000, journal: 'j', message: 'failed' },
    ] as Untimed[]
    const frames: string[][] = []
    const frame = await draw(events, { frameAfter: (e) => e.type === 'step-started', shows: (f) => f.some((l) => l.includes('notify.mjs')), frames })
    expect(frames[0]?.slice(0, 2)).toEqual([expect.stringMatching(/^. stage staging$/), '  › hook onFailure: hooks/notify.mjs …'])
    expect(frame).toEqual([
      expect.stringMatching(/^❯ stage staging: see below/),
      expect.stringMatching(/^ {2}❯ stg: stg\/w-1: see below/),
      `    ✖ w-1 (cordoned): ${failure}`,
    ])
  })

  it('a stage that waits for an approval it did not get says so, with the command', async () => {
    const frame = await draw([
      { type: 'run-started', runId: 'r', plan: 'p.yaml', journal: 'j', dryRun: false, resumed: false, warnings: [], stages: ['staging', 'production'], outline: [
        { stage: 'staging', clusters: [{ name: 'stg', distribution: 'k3s', nodes: ['cp-1'] }] },
        { stage: 'production', clusters: [{ name: 'prd', distribution: 'kubeadm', nodes: ['p-cp-1'] }] },
      ] },
      { type: 'stage-started', stage: 'staging' },
      { type: 'cluster-started', stage: 'staging', cluster: 'stg' },
      { type: 'node-started', stage: 'staging', cluster: 'stg', node: 'cp-1' },
      { type: 'node-done', stage: 'staging', cluster: 'stg', node: 'cp-1', durationMs: 1_000 },
      { type: 'cluster-done', stage: 'staging', cluster: 'stg', durationMs: 1_500, changed: true },
      { type: 'stage-done', stage: 'staging', durationMs: 2_000 },
      { type: 'approval-needed', stage: 'production', command: 'kupgrade resume r --approve production' },
      { type: 'run-finished', runId: 'r', outcome: 'awaiting-approval', exitCode: 4, durationMs: 3_000, journal: 'j', message: 'awaiting approval' },
    ] as Untimed[])
    expect(frame[0]).toMatch(/^✔ stage staging ✓ 2\.0s/)
    expect(frame.slice(-2).map((l) => l.trim()).join(' ')).toBe('↓ stage production: waits for approval (kupgrade resume r --approve production)')
    expect(frame.join('\n')).not.toMatch(/p-cp-1/)
  })

  it('a node left cordoned (onFailure: pause) says so', async () => {
    const frame = await draw([
      { type: 'run-started', runId: 'r', plan: 'p.yaml', journal: 'j', dryRun: false, resumed: false, warnings: [], stages: ['staging'], outline: [{ stage: 'staging', clusters: [{ name: 'stg', distribution: 'k3s', nodes: ['w-1'] }] }] },
      { type: 'stage-started', stage: 'staging' },
      { type: 'cluster-started', stage: 'staging', cluster: 'stg' },
      { type: 'node-started', stage: 'staging', cluster: 'stg', node: 'w-1' },
      { type: 'node-failed', stage: 'staging', cluster: 'stg', node: 'w-1', error: failure, cordoned: true },
      { type: 'run-finished', runId: 'r', outcome: 'paused', exitCode: 4, durationMs: 3_000, journal: 'j', message: 'paused' },
    ] as Untimed[])
    expect(frame.at(-1)).toBe(`    ✖ w-1 (cordoned): ${failure}`)
  })

  it('kupgrade rollback: no stage events, only its clusters and nodes; the stage is drawn done, each node rolled back', async () => {
    const frame = await draw([
      { type: 'run-started', runId: 'r', plan: 'p.yaml', journal: 'j', dryRun: false, resumed: false, warnings: [], stages: ['staging', 'production'], outline: [
        { stage: 'staging', clusters: [{ name: 'stg', distribution: 'k3s', nodes: ['w-1', 'w-2'] }] },
        { stage: 'production', clusters: [{ name: 'prd', distribution: 'kubeadm', nodes: ['p-1'] }] },
      ] },
      { type: 'cluster-started', stage: 'staging', cluster: 'stg' },
      { type: 'rollback-started', cluster: 'stg', node: 'w-2', path: 'previous-version', detail: '', reason: 'kupgrade rollback' },
      { type: 'rollback-done', cluster: 'stg', node: 'w-2', durationMs: 3_000, evidence: [] },
      { type: 'rollback-started', cluster: 'stg', node: 'w-1', path: 'previous-version', detail: '', reason: 'kupgrade rollback' },
      { type: 'rollback-done', cluster: 'stg', node: 'w-1', durationMs: 2_500, evidence: [] },
      { type: 'cluster-done', stage: 'staging', cluster: 'stg', durationMs: 6_000, changed: true },
      { type: 'cluster-skipped', stage: 'production', cluster: 'prd', reason: 'this run changed no node here' },
      { type: 'run-finished', runId: 'r', outcome: 'done', exitCode: 0, durationMs: 6_500, journal: 'j', message: 'rolled back' },
    ] as Untimed[])
    expect(frame).toEqual(['✔ stage staging', '  ✔ stg ✓ 6.0s', '    ✔ w-1 ↩ rolled back 2.5s', '    ✔ w-2 ↩ rolled back 3.0s', '↓ stage production: not run'])
  })

  it('an interrupted run: the node and the lines above it say so, not done', async () => {
    const frame = await draw([
      { type: 'run-started', runId: 'r', plan: 'p.yaml', journal: 'j', dryRun: false, resumed: false, warnings: [], stages: ['staging'], outline: [{ stage: 'staging', clusters: [{ name: 'stg', distribution: 'k3s', nodes: ['w-1'] }] }] },
      { type: 'stage-started', stage: 'staging' },
      { type: 'cluster-started', stage: 'staging', cluster: 'stg' },
      { type: 'node-started', stage: 'staging', cluster: 'stg', node: 'w-1' },
      { type: 'run-finished', runId: 'r', outcome: 'interrupted', exitCode: 130, durationMs: 3_000, journal: 'j', message: 'interrupted' },
    ] as Untimed[])
    expect(frame).toEqual(['❯ stage staging: interrupted', '  ❯ stg: interrupted', '    ✖ w-1: interrupted'])
  })
})

describe('a stage\'s approval asked on the terminal', () => {
  const outline: Untimed[] = [
    { type: 'run-started', runId: 'r', plan: 'p.yaml', journal: 'j', dryRun: false, resumed: false, warnings: [], stages: ['production'], outline: [{ stage: 'production', clusters: [{ name: 'prd', distribution: 'k3s', nodes: ['p-1'] }] }] },
  ]
  /** Asks with `stdin`, and says what the screen showed while the answer was awaited. */
  async function asking(answer: (stdin: PassThrough, abort: AbortController) => void): Promise<{ yes: boolean; whileAsking: string[] }> {
    const screen = new Screen()
    const cursor = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    try {
      const stdin = new PassThrough()
      const tty = createTtyRenderer({ stdout: screen, stdin, color: false })
      for (const e of outline) tty.sink({ ...e, time } as ExecutorEvent)
      const abort = new AbortController()
      const yes = tty.ask('production', 'Stage production requires approval. Start it now?', abort.signal)
      await new Promise((r) => setTimeout(r, 300))
      const whileAsking = screen.lastFrame()
      answer(stdin, abort)
      const result = await yes
      tty.sink({ type: 'run-finished', time, runId: 'r', outcome: 'awaiting-approval', exitCode: 4, durationMs: 1, journal: 'j', message: 'm' } as ExecutorEvent)
      await tty.stop()
      return { yes: result, whileAsking }
    } finally {
      cursor.mockRestore()
    }
  }

  it('is on the stage\'s line while it waits; y is yes', async () => {
    const r = await asking((stdin) => stdin.write('y\n'))
    expect(r.whileAsking.join('\n')).toContain('stage production\n  › Stage production requires approval. Start it now? [y/N]')
    expect(r.yes).toBe(true)
  })

  it('anything else, or an interrupt while it waits, is no', async () => {
    expect((await asking((stdin) => stdin.write('sure\n'))).yes).toBe(false)
    expect((await asking((_, abort) => abort.abort())).yes).toBe(false)
  })
})
