import { describe, expect, it } from 'vitest'
import type { GateResult, GateStatus } from '../../src/gates/types.js'
import { waitForGate } from '../../src/gates/wait.js'
import { OUTAGE_BUDGET_MS } from '../../src/transport/outage.js'

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

  it('unknown is never a pass: without a hold first it is answered at the timeout', async () => {
    const never = scripted('unknown')
    const o2 = await waitForGate(never.check, { ...never.opts, timeoutMs: 10_000, intervalMs: 1_000 })
    expect(o2.status).toBe('unknown')
    expect(o2.gaps).toBeUndefined()
  })

  it('a result that held and then could not look has not flapped: the streak starts again and it passes once it holds', async () => {
    const s = scripted('pass', 'unknown', 'unknown', 'pass', 'pass', 'pass')
    const out = await waitForGate(s.check, { ...s.opts, timeoutMs: 60_000, intervalMs: 1_000, stableFor: 3 })
    expect([out.status, out.flapped, out.attempts]).toEqual(['pass', undefined, 6])
    expect(out.gaps).toEqual({ count: 2, first: 'check 2: saw #2' })
    expect(out.summary).toBe('saw #6 (could not look after it had held: check 2: saw #2, and 1 check more)')
    // Once the view is lost, checks go back to the first interval (they had grown 1.5× each).
    expect(s.sleeps.slice(0, 3)).toEqual([1_000, 1_000, 1_500])
  })

  it('a gap is ridden out for the outage budget even past the timeout, then answered unknown', async () => {
    // Held twice, then never able to look again; the timeout (10 s) falls inside the gap.
    const s = scripted('pass', 'pass', 'unknown')
    const out = await waitForGate(s.check, { ...s.opts, timeoutMs: 10_000, intervalMs: 1_000, stableFor: 3, backoff: 1 })
    expect(out.status).toBe('unknown')
    expect(out.flapped).toBeUndefined()
    // The gap began at the third check (t = 2 s): checking went on, a second apart, until 2 s + OUTAGE_BUDGET_MS.
    expect(s.sleeps.reduce((a, b) => a + b, 0)).toBe(2_000 + OUTAGE_BUDGET_MS)
    expect(out.summary).toMatch(/^saw #\d+ \(still after \d+ checks\) \(could not look after it had held: check 3: saw #3, and \d+ checks more\)$/)
  })

  it('a fail seen after a gap breaks what had held: a flap', async () => {
    const s = scripted('pass', 'unknown', 'fail')
    const out = await waitForGate(s.check, { ...s.opts, timeoutMs: 60_000, intervalMs: 1_000, stableFor: 3 })
    expect([out.status, out.flapped]).toEqual(['fail', true])
    expect(out.evidence.map((e) => e.observed)).toEqual(['check 1 (pass): #1', 'check 3 (fail): #3'])
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
