import { describe, expect, it } from 'vitest'
import { readNode } from '../../src/gates/read/node.js'
import type { GateContext } from '../../src/gates/types.js'
import type { NodeFacts } from '../../src/facts/types.js'
import type { ExecResult, Transport } from '../../src/transport/types.js'

const target = { node: 'w-1', host: '10.0.0.9' }
function counting(): { transport: Transport; calls: () => number } {
  let n = 0
  const transport = {
    read: async (): Promise<ExecResult> => {
      n++
      return { stdout: 'ok\n', stderr: '', exitCode: 0, durationMs: 1 } as ExecResult
    },
  } as unknown as Transport
  return { transport, calls: () => n }
}
const ctx = (ssh: Transport, o: Partial<GateContext>): GateContext =>
  ({ cluster: 'c', distribution: 'k3s', scope: 'node', node: 'w-1', nodes: [], ssh, kubectl: {} as never, now: () => new Date(), ...o })
const down = { name: 'w-1', unreachable: true, error: 'cannot connect to c/w-1 (root@10.0.0.9:22) after 6 attempts: connect ECONNREFUSED' } as NodeFacts

describe('readNode and a node the facts could not reach', () => {
  it('a one-shot check (unreachable set from its facts) reports the facts’ error without connecting', async () => {
    const t = counting()
    const r = await readNode(ctx(t.transport, { nodeFacts: { 'w-1': down }, unreachable: new Map([['w-1', down.error!]]) }), target, ['true'])
    expect(r).toEqual({ ok: false, stdout: '', stderr: '', exitCode: null, error: down.error })
    expect(t.calls()).toBe(0)
  })

  it('a run’s gates, which carry the run’s start facts but no unreachable set, always try: the node may be back', async () => {
    const t = counting()
    const r = await readNode(ctx(t.transport, { nodeFacts: { 'w-1': down } }), target, ['true'])
    expect(r).toMatchObject({ ok: true, stdout: 'ok\n' })
    expect(t.calls()).toBe(1)
  })
})
