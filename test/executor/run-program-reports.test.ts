import { describe, expect, it } from 'vitest'
import { programFor } from '../../src/drivers/registry.js'
import type { KubectlChannel } from '../../src/executor/kubectl-channel.js'
import { runProgram } from '../../src/executor/run-program.js'
import type { Step } from '../../src/planner/types.js'
import type { NodeTarget, Transport } from '../../src/transport/types.js'

/**
 * kubectl cordon and uncordon say what they did (`node/NAME cordoned` | `node/NAME already cordoned`): their answer is
 * the step's check, so no `kubectl get` runs before or after them (issue 10: four kubectl processes per node of a
 * run). An answer that says neither falls back to reading the Node; a dry-run, which records the write and gets no
 * answer, reads first as before.
 */
const target = { cluster: 'c', node: 'w-1', host: '10.0.0.3' } as NodeTarget
const noSsh = { read: async () => { throw new Error('no ssh') }, mutate: async () => { throw new Error('no ssh') }, close: async () => {} } as unknown as Transport
const step = (action: 'cordon' | 'uncordon'): Step => ({ id: `s/c/hop1/w-1/${action}`, title: '', phase: 'workers', stage: 's', cluster: 'c', hop: 1, node: 'w-1', role: 'worker', mutates: true, action, params: {} } as Step)

function api(answer: string, unschedulable: string) {
  const calls: string[] = []
  const kubectl = {
    cluster: 'c',
    read: async (args: string[]) => { calls.push(`read ${args.join(' ')}`); return unschedulable },
    mutate: async (_why: string, args: string[]) => { calls.push(`write ${args.join(' ')}`); return answer },
  } as unknown as KubectlChannel
  return { kubectl, calls }
}

const run = (action: 'cordon' | 'uncordon', a: ReturnType<typeof api>, dryRun = false) =>
  runProgram(programFor(step(action), { distribution: 'k3s' }), { ssh: noSsh, kubectl: a.kubectl, target, dryRun }, { ssh: noSsh, kubectl: a.kubectl, target, pollMs: 1 })

describe("cordon and uncordon: kubectl's answer is the check", () => {
  it('changed or not, from the answer alone: one kubectl process, no reads', async () => {
    const fresh = api('node/w-1 cordoned\n', '')
    expect(await run('cordon', fresh)).toMatchObject({ changed: true, evidence: ['ran: kubectl cordon w-1', 'it answered: node/w-1 cordoned'] })
    expect(fresh.calls).toEqual(['write cordon w-1'])
    const again = api('node/w-1 already cordoned\n', 'true')
    expect(await run('cordon', again)).toMatchObject({ changed: false })
    expect(again.calls).toEqual(['write cordon w-1'])
    const back = api('node/w-1 uncordoned\n', '')
    expect(await run('uncordon', back)).toMatchObject({ changed: true })
    expect(back.calls).toEqual(['write uncordon w-1'])
  })

  it("an answer about another node, or none, is no answer: the Node is read after", async () => {
    const other = api('node/w-10 cordoned\n', 'true')
    expect(await run('cordon', other)).toMatchObject({ changed: true })
    expect(other.calls).toEqual(['write cordon w-1', 'read get node w-1 -o jsonpath={.spec.unschedulable}'])
    const notThere = api('', '')
    await expect(run('cordon', notThere)).rejects.toThrow('the commands succeeded but the effect is not there')
  })

  it('a dry-run reads first, as it records the write and gets no answer', async () => {
    const dry = api('', 'true')
    expect(await run('cordon', dry, true)).toMatchObject({ changed: false })
    expect(dry.calls).toEqual(['read get node w-1 -o jsonpath={.spec.unschedulable}'])
  })
})
