import type { Node } from 'kubernetes-types/core/v1.js'
import { describe, expect, it } from 'vitest'
import type { KubectlChannel } from '../../src/executor/kubectl-channel.js'
import { runWait, waitNodeReady, type Waiting } from '../../src/executor/waits.js'
import { plainLine } from '../../src/report/run-plain.js'
import type { Seen } from '../../src/transport/kubectl/observe.js'
import type { Transport } from '../../src/transport/types.js'

/** A Node that stays NotReady at the new kubelet, as after a failed upgrade, answered every poll. */
const notReady: Node = { metadata: { name: 'w-1' }, status: { conditions: [{ type: 'Ready', status: 'False' }], nodeInfo: { kubeletVersion: 'v1.30.4' } as NonNullable<Node['status']>['nodeInfo'] } }
const channel = (node: Node): KubectlChannel => ({
  observe: async <T, R>(_target: string[], decide: (seen: Seen<T>) => R | undefined, o: { pollMs?: number }) => {
    for (;;) {
      const r = decide({ obj: node as T })
      if (r !== undefined) return r
      await new Promise((res) => setTimeout(res, o.pollMs ?? 10))
    }
  },
}) as unknown as KubectlChannel

const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a timeout') }, (e: Error) => e)

describe('executor waits: a long wait is never silent', () => {
  it('a Ready wait says every heartbeat what it waits for and what it last saw, and stops saying it when it ends', async () => {
    const beats: Waiting[] = []
    const err = await failure(waitNodeReady(channel(notReady), 'w-1', 'v1.30.4', 1_000, { pollMs: 10, heartbeatMs: 90, onWaiting: (w) => beats.push(w) }))
    expect(err.message).toBe('timed out after 1s waiting for w-1 Ready with kubelet v1.30.4')
    expect(beats.length).toBeGreaterThanOrEqual(3)
    expect(beats[0]).toEqual({ waitingFor: 'w-1 Ready with kubelet v1.30.4', observed: 'w-1: Ready=False, kubelet v1.30.4', elapsedMs: expect.any(Number), timeoutMs: 1_000 })
    expect(beats.map((b) => b.elapsedMs)).toEqual([...beats.map((b) => b.elapsedMs)].sort((a, b) => a - b))
    const after = beats.length
    await new Promise((res) => setTimeout(res, 250))
    expect(beats).toHaveLength(after)
    expect(plainLine({ type: 'step-waiting', time: '2026-12-04T23:14:58.123Z', step: { id: 'p/c/hop1/w-1/wait-ready', stage: 'p', cluster: 'c', node: 'w-1', action: 'wait-ready', title: 'wait for w-1 Ready', mutates: false }, ...beats[0]!, elapsedMs: 30_000, timeoutMs: 300_000 }))
      .toBe('2026-12-04 23:14:58Z p › c › w-1: … still waiting for w-1 Ready with kubelet v1.30.4 (30s of 300s): w-1: Ready=False, kubelet v1.30.4')
  })

  it('a polled wait (a service coming up) beats with the latest reading, and not at all once it holds', async () => {
    let reads = 0
    const ssh = { read: async () => ({ stdout: ++reads < 25 ? 'activating\n' : 'active\n', stderr: '', exitCode: reads < 25 ? 3 : 0 }) } as unknown as Transport
    const beats: Waiting[] = []
    const line = await runWait({ kind: 'service-active', service: 'k3s', timeoutMs: 5_000 }, { ssh, kubectl: channel(notReady), target: { cluster: 'c', node: 'w-1', host: 'h', port: 22, user: 'root' } as never, pollMs: 10, heartbeatMs: 60, onWaiting: (w) => beats.push(w) })
    expect(line).toMatch(/^waited [\d.]+s for k3s active: systemctl is-active k3s: active$/)
    expect(beats.length).toBeGreaterThanOrEqual(1)
    expect(beats.every((b) => b.waitingFor === 'k3s active' && b.observed === 'systemctl is-active k3s: activating')).toBe(true)
    const after = beats.length
    await new Promise((res) => setTimeout(res, 150))
    expect(beats).toHaveLength(after)
  })
})
