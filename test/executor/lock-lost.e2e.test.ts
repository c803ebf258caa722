import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KUBECTL } from '../lab/helpers.js'
import { cliKillable, events, startExecLab, topology, type ExecLab } from './helpers.js'

const run = promisify(execFile)

/**
 * Losing the lock mid-run (execution.md "The cluster lock"): someone else writes the Lease, the next renewal is a 409,
 * and the run stops safely — the current step finishes or stops, the journal says where, exit 4 — and the process
 * exits: no renewal timer, SSH connection or kubectl left holding it open. The CLI runs from dist as a real process
 * (npm run build first): an in-process run cannot show a process that never exits.
 */
describe('apply: the lock lost mid-run', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.121', [{ name: 'll', distribution: 'k3s', controlPlanes: 1, workers: 2 }]))
  }, 60_000)
  afterAll(async () => l?.stop())

  it('stops with exit 4 naming the lost lock, journals where it stopped, and the process exits', async () => {
    const kubectl = (args: string[]) => run(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'll', ...args])
    let stolen: Promise<unknown> | undefined
    // Once the run holds the lock and works on a node, another holder takes the Lease (a plain write, as a second tool
    // that ignores the lock would make).
    const child = cliKillable(l, ['apply', l.plan, '--output', 'json'], (e) => {
      if (!stolen && e.type === 'step-started' && e.step.action === 'cordon') {
        stolen = kubectl(['-n', 'kube-system', 'patch', 'lease', 'kupgrade-lock', '--type', 'merge', '-p', '{"spec":{"holderIdentity":"someone-else"}}'])
      }
      return undefined
    })
    // A process that never exits fails here, by the test's own timeout.
    const r = await child
    await stolen
    expect(stolen, 'the run reached a node').toBeDefined()
    expect(r.code, `${r.err}\n${r.out.slice(-3000)}`).toBe(4)
    const ev = events(r.out)
    expect(ev.find((e) => e.type === 'lock-lost')).toMatchObject({ cluster: 'll' })
    const fin = ev.at(-1)
    expect(fin).toMatchObject({ type: 'run-finished', exitCode: 4 })
    expect(fin.message).toMatch(/the run lock was lost: cluster ll/)
    // It never acted after the loss: no step started after the lock-lost event.
    const lost = ev.findIndex((e) => e.type === 'lock-lost')
    expect(ev.slice(lost).filter((e) => e.type === 'step-started').map((e) => e.step.id)).toEqual([])
    // Someone else holds the Lease now: the run did not clear it on the way out.
    const lease = JSON.parse((await kubectl(['-n', 'kube-system', 'get', 'lease', 'kupgrade-lock', '-o', 'json'])).stdout)
    expect(lease.spec.holderIdentity).toBe('someone-else')
  }, 300_000)
})
