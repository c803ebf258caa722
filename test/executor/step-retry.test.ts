import { describe, expect, it } from 'vitest'
import type { StepProgram } from '../../src/drivers/program.js'
import { RemoteCommandError } from '../../src/errors.js'
import type { KubectlChannel } from '../../src/executor/kubectl-channel.js'
import { runProgram, StepFailure } from '../../src/executor/run-program.js'
import { OUTAGE_BUDGET_MS } from '../../src/transport/outage.js'
import type { RemoteCommand } from '../../src/transport/quote.js'
import type { ExecResult, NodeTarget, Transport } from '../../src/transport/types.js'

/**
 * A step whose transport fails under it (the SSH connection drops mid-command, kubectl gets no answer from the API)
 * has an unknown effect: it is verified and tried again, never blindly repeated, and never retried when a command
 * answered with a failure of its own.
 */
const node: NodeTarget = { cluster: 'c', node: 'w1', host: '10.0.0.3' } as NodeTarget
const ok = (stdout: string, exitCode = 0): ExecResult => ({ stdout, stderr: '', exitCode, retries: 0, durationMs: 1 }) as ExecResult
const line = (cmd: RemoteCommand): string => (Array.isArray(cmd) ? cmd.join(' ') : (cmd as { script: string }).script)
const dropped = () => new RemoteCommandError({ cluster: 'c', node: 'w1', host: '10.0.0.3', command: 'install', exitCode: null, stderr: '', hint: 'connection lost while running "install"', transient: true })
const exited = () => new RemoteCommandError({ cluster: 'c', node: 'w1', host: '10.0.0.3', command: 'install', exitCode: 1, stderr: 'install: checksum mismatch' })
const noKubectl = { cluster: 'c', read: async () => '', mutate: async () => '' } as unknown as KubectlChannel

/** One step: install writes a marker; verify reads it. */
const program: StepProgram = {
  verify: [{ read: { on: 'node', command: ['cat', '/marker'], why: 'read the marker' }, describe: 'the marker says installed', expect: { stdoutIncludes: 'installed' } }],
  run: [{ on: 'node', command: ['install'], why: 'install' }],
  undo: { nothing: true },
}

/** A clock the retries' waits advance, so the outage budget is counted without waiting it out. */
function fakeClock() {
  const c = { t: 0, sleeps: [] as number[], now: () => c.t, sleep: async (ms: number) => { c.sleeps.push(ms); c.t += ms } }
  return c
}

/**
 * A node whose `install` behaves per attempt: 'drop-after' makes the effect and then loses the connection. With
 * `dropUntil`, every attempt before that time on the clock loses its connection (an outage), and the later ones work.
 */
function fleet(attempts: ('ok' | 'drop-before' | 'drop-after' | 'exit-1')[], dropUntil?: number) {
  let installed = false
  let n = 0
  const runs: string[] = []
  const clock = fakeClock()
  const transport: Transport = {
    read: async (_t, cmd) => {
      if (line(cmd) === 'cat /marker') return ok(installed ? 'installed\n' : '', installed ? 0 : 1)
      throw new Error(`unexpected read ${line(cmd)}`)
    },
    mutate: async (_t, _why, cmd) => {
      runs.push(line(cmd))
      const how = dropUntil !== undefined ? (clock.t < dropUntil ? 'drop-before' : 'ok') : (attempts[n++] ?? 'ok')
      if (how === 'drop-before') throw dropped()
      if (how === 'exit-1') throw exited()
      installed = true
      if (how === 'drop-after') throw dropped()
      return ok('')
    },
    close: async () => {},
  }
  return { transport, runs, clock }
}

const run = async (f: ReturnType<typeof fleet>, p: StepProgram = program, kubectl: KubectlChannel = noKubectl) => {
  const retries: { attempt: number; error: string }[] = []
  const r = await runProgram(p, { ssh: f.transport, kubectl, target: node, dryRun: false, onRetry: (x) => retries.push(x), clock: f.clock }, { ssh: f.transport, kubectl, target: node, pollMs: 1 })
  return { ...r, retries }
}

describe('a step whose transport fails mid-command is verified and tried again', () => {
  it('the lost attempt made its effect: verify finds it, nothing runs twice, and the step counts as changed', async () => {
    const f = fleet(['drop-after'])
    const r = await run(f)
    expect(f.runs).toEqual(['install'])
    expect(r.changed).toBe(true)
    expect(r.retries).toEqual([expect.objectContaining({ attempt: 2, error: expect.stringContaining('install') })])
    expect(r.evidence.join('\n')).toMatch(/attempt 1: the transport failed .*verifying and trying again/)
    expect(r.evidence.at(-1)).toMatch(/^✓ the marker says installed/)
  })

  it('the lost attempt made nothing: the step runs again from its first command', async () => {
    const f = fleet(['drop-before', 'ok'])
    const r = await run(f)
    expect(f.runs).toEqual(['install', 'install'])
    expect(r.changed).toBe(true)
    expect(r.retries).toHaveLength(1)
  })

  it('a command that answered (an exit code) fails the step at once', async () => {
    const f = fleet(['exit-1'])
    const err = await run(f).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StepFailure)
    expect((err as Error).message).toMatch(/checksum mismatch/)
    expect(f.runs).toEqual(['install'])
  })

  it('rides out an outage shorter than the budget: tried again, sooner then every ten seconds, until it works', async () => {
    const f = fleet([], 50_000)
    const r = await run(f)
    expect(r.changed).toBe(true)
    // Attempts at 0, 1, 3, 7, 15, 25, 35, 45 s lose their transport; the one at 55 s works.
    expect(f.clock.sleeps).toEqual([1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000, 10_000])
    expect(f.runs).toHaveLength(9)
    expect(r.evidence.filter((e) => /^attempt \d: the transport failed/.test(e))).toHaveLength(8)
  })

  it('gives up once the outage outlasts the budget, with every attempt\'s evidence', async () => {
    const f = fleet(['drop-before', 'drop-before', 'drop-before', 'drop-before', 'drop-before', 'drop-before', 'drop-before', 'drop-before', 'drop-before', 'drop-before', 'drop-before', 'ok'])
    const err = (await run(f).catch((e: unknown) => e)) as StepFailure
    expect(err).toBeInstanceOf(StepFailure)
    // The ninth attempt failed 55 s into the outage: another ten seconds' wait would pass the budget.
    expect(OUTAGE_BUDGET_MS).toBe(60_000)
    expect(f.runs).toHaveLength(9)
    expect(err.evidence.filter((e) => /^attempt \d: the transport failed/.test(e))).toHaveLength(8)
    expect(err.evidence.at(-1)).toBe('gave up after 9 attempts whose transport failed, 55s after it was first lost (a lost transport is ridden out for 1m)')
  })

  it('a kubectl write the API did not answer is tried again; one it refused (a 4xx) is not', async () => {
    const cordon: StepProgram = {
      verify: [{ read: { on: 'kubectl', args: ['get', 'node', 'w1', '-o', 'jsonpath={.spec.unschedulable}'], why: 'read' }, describe: 'w1 is cordoned', expect: { stdoutIncludes: 'true' } }],
      run: [{ on: 'kubectl', args: ['cordon', 'w1'], why: 'cordon w1' }],
      undo: { nothing: true },
    }
    const kubectl = (answers: (Error | undefined)[]) => {
      let cordoned = false
      const calls: string[] = []
      const ch = {
        cluster: 'c',
        read: async () => (cordoned ? 'true' : ''),
        mutate: async (_why: string, args: readonly string[]) => {
          calls.push(args.join(' '))
          const e = answers.shift()
          if (e) throw e
          cordoned = true
          return ''
        },
      } as unknown as KubectlChannel
      return { ch, calls }
    }
    const apiErr = (stderr: string, transient: boolean) => new RemoteCommandError({ cluster: 'c', node: 'kubectl', host: 'ctx', command: 'kubectl cordon w1', exitCode: 1, stderr, transient })
    const unanswered = kubectl([apiErr('Unable to connect to the server: net/http: TLS handshake timeout', true)])
    const r = await run(fleet([]), cordon, unanswered.ch)
    expect(unanswered.calls).toEqual(['cordon w1', 'cordon w1'])
    expect(r.retries).toHaveLength(1)
    const refused = kubectl([apiErr('Error from server (Forbidden): nodes "w1" is forbidden', false)])
    await expect(run(fleet([]), cordon, refused.ch)).rejects.toThrow(/Forbidden/)
    expect(refused.calls).toEqual(['cordon w1'])
  })
})
