import { describe, expect, it } from 'vitest'
import type { GateResult, GateStatus } from '../../src/gates/types.js'
import { waitForGate } from '../../src/gates/wait.js'

const r = (status: GateStatus, observed: string = status): GateResult => ({ status, summary: `saw ${observed}`, evidence: [{ source: 'test', observed }], incident: 'x' })

/** A check that answers from a script, with a fake clock that each sleep advances. */
function scripted(...answers: GateStatus[]) {
  let t = 0
  let i = 0
  const sleeps: number[] = []
  return {
    check: async () => r(answers[Math.min(i++, answers.length - 1)]!, `#${i}`),
    opts: { now: () => t, sleep: async (ms: number) => { sleeps.push(ms); t += ms } },
    sleeps,
    calls: () => i,
  }
}

describe('the one wait loop', () => {
  it('a single check when there is no timeout (check, plan --live)', async () => {
    const s = scripted('fail', 'pass')
    const out = await waitForGate(s.check, { ...s.opts })
    expect([out.status, out.attempts, s.calls()]).toEqual(['fail', 1, 1])
  })

  it('a post-gate passes only after stableFor consecutive passes (default 3)', async () => {
    const s = scripted('fail', 'fail', 'pass', 'pass', 'pass')
    const out = await waitForGate(s.check, { ...s.opts, timeoutMs: 60_000, intervalMs: 1_000 })
    expect([out.status, out.attempts]).toEqual(['pass', 5])
  })

  it('a result that held and then broke is a fail, with both observations as evidence', async () => {
    const s = scripted('pass', 'pass', 'fail')
    const out = await waitForGate(s.check, { ...s.opts, timeoutMs: 60_000, stableFor: 3 })
    expect(out.status).toBe('fail')
    expect(out.flapped).toBe(true)
    expect(out.evidence.map((e) => e.observed)).toEqual(['check 2 (pass): #2', 'check 3 (fail): #3'])
    expect(out.summary).toMatch(/^flapping: pass for 2 checks/)
  })

  it('unknown is never a pass: it breaks a streak like a fail', async () => {
    const s = scripted('pass', 'unknown')
    const out = await waitForGate(s.check, { ...s.opts, timeoutMs: 60_000 })
    expect([out.status, out.flapped]).toEqual(['fail', true])
    const never = scripted('unknown')
    const o2 = await waitForGate(never.check, { ...never.opts, timeoutMs: 10_000, intervalMs: 1_000 })
    expect(o2.status).toBe('unknown')
  })

  it('gives up at the timeout with the last observation, backing off in between', async () => {
    const s = scripted('fail')
    const out = await waitForGate(s.check, { ...s.opts, timeoutMs: 10_000, intervalMs: 1_000, backoff: 2, maxIntervalMs: 4_000 })
    expect(out.status).toBe('fail')
    expect(out.summary).toMatch(/still after \d+ checks/)
    expect(s.sleeps.slice(0, 3)).toEqual([1_000, 2_000, 4_000])
    expect(s.sleeps.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(10_000)
  })

  it('checks are an interval apart from start to start; a check slower than the interval still rests a quarter of it', async () => {
    const timed = (checkMs: number) => {
      let t = 0
      const starts: number[] = []
      const sleeps: number[] = []
      const check = async () => {
        starts.push(t)
        t += checkMs
        return r('pass')
      }
      return { check, starts, sleeps, opts: { now: () => t, sleep: async (ms: number) => { sleeps.push(ms); t += ms } } }
    }
    const quick = timed(400)
    expect((await waitForGate(quick.check, { ...quick.opts, timeoutMs: 60_000, intervalMs: 1_000, stableFor: 3, backoff: 1 })).status).toBe('pass')
    expect(quick.starts).toEqual([0, 1_000, 2_000])
    expect(quick.sleeps).toEqual([600, 600])
    const slow = timed(1_500)
    await waitForGate(slow.check, { ...slow.opts, timeoutMs: 60_000, intervalMs: 1_000, stableFor: 3, backoff: 1 })
    expect(slow.sleeps).toEqual([250, 250])
    expect(slow.starts).toEqual([0, 1_750, 3_500])
  })

  it('a warn inside a stable streak is reported, not hidden by later passes', async () => {
    const s = scripted('pass', 'warn', 'pass')
    const out = await waitForGate(s.check, { ...s.opts, timeoutMs: 60_000 })
    expect(out.status).toBe('warn')
  })
})
