import { describe, expect, it } from 'vitest'
import { programFor } from '../../src/drivers/registry.js'
import { RemoteCommandError } from '../../src/errors.js'
import type { KubectlChannel } from '../../src/executor/kubectl-channel.js'
import type { Seen } from '../../src/transport/kubectl/observe.js'
import { runProgram } from '../../src/executor/run-program.js'
import type { Step } from '../../src/planner/types.js'
import type { RemoteCommand } from '../../src/transport/quote.js'
import type { ExecResult, NodeTarget, Transport } from '../../src/transport/types.js'

/**
 * The reboot program through the executor's runProgram, on a scripted node and API: the reboot's dropped session is
 * its success; the wait needs SSH on a new boot id and then the Node Ready on that boot (a Ready left from the old
 * boot does not count); an exit code from `systemctl reboot` is a failure.
 */
const step = {
  id: 'c/c/hop1/n1/reboot', title: '', action: 'reboot', phase: 'workers', stage: 's', cluster: 'c', hop: 1, node: 'n1', role: 'worker', mutates: true,
  params: { policy: 'if-required', timeout: '5s' },
} as unknown as Step
const target: NodeTarget = { cluster: 'c', node: 'n1', host: '127.0.0.1' } as NodeTarget
const ok = (stdout: string, exitCode = 0): ExecResult => ({ stdout, stderr: '', exitCode, retries: 0, durationMs: 1 }) as ExecResult
const argv = (cmd: RemoteCommand): string => (Array.isArray(cmd) ? cmd.join(' ') : JSON.stringify(cmd))

/** A node that reboots when told to: boot id b1 before, b2 after (unreachable for `downReads` reads in between). */
function node(reboot: 'drops' | 'exit-1') {
  let boot = 'b1'
  let flagged = true
  let down = 0
  const transport: Transport = {
    read: async (_t, cmd) => {
      if (down > 0) {
        down--
        throw new Error('connect ECONNREFUSED')
      }
      const line = argv(cmd)
      if (line.includes('boot_id')) return ok(`${boot}\n`)
      if (line.startsWith('test ! -e /var/run/reboot-required')) return ok('', flagged ? 1 : 0)
      throw new Error(`unexpected read ${line}`)
    },
    mutate: async (_t, _why, cmd) => {
      expect(argv(cmd)).toBe('systemctl reboot')
      if (reboot === 'exit-1') throw new RemoteCommandError({ node: 'n1', host: '127.0.0.1', command: 'systemctl reboot', exitCode: 1, stderr: 'Failed to reboot' })
      boot = 'b2'
      flagged = false
      down = 2
      throw new RemoteCommandError({ node: 'n1', host: '127.0.0.1', command: 'systemctl reboot', exitCode: null, stderr: '' })
    },
    close: async () => {},
  }
  return transport
}

/** The API: the Node stays Ready on the old boot for `staleReads` observations, then reports the new boot, Ready.
 *  Followed as a watch would print it: one object per change, each handed to the wait's decide. */
function api(staleReads: number): { kubectl: KubectlChannel; reads: () => number } {
  let n = 0
  const nodeNow = () => {
    n++
    const bootID = n > staleReads ? 'b2' : 'b1'
    return { status: { nodeInfo: { bootID, kubeletVersion: 'v1.29.6' }, conditions: [{ type: 'Ready', status: 'True' }] } }
  }
  const kubectl = {
    cluster: 'c',
    read: async () => JSON.stringify(nodeNow()),
    observe: async <T, R>(target: string[], decide: (seen: Seen<T>) => R | undefined) => {
      expect(target).toEqual(['node', 'n1'])
      for (;;) {
        const answer = decide({ obj: nodeNow() as T })
        if (answer !== undefined) return answer
        await new Promise((r) => setTimeout(r, 1))
      }
    },
    mutate: async () => { throw new Error('no writes expected') },
    client: undefined as never,
  } as KubectlChannel
  return { kubectl, reads: () => n }
}

describe('reboot program in runProgram', () => {
  it('treats the dropped session as the reboot, then waits for the new boot id over SSH and the Node Ready on that boot', async () => {
    const ssh = node('drops')
    const { kubectl, reads } = api(3)
    const program = programFor(step, { distribution: 'k3s', node: { packageManager: 'apt' } })
    const r = await runProgram(program, { ssh, kubectl, target, dryRun: false }, { ssh, kubectl, target, pollMs: 5 })
    expect(r.changed).toBe(true)
    expect(r.evidence).toEqual([
      'ran: systemctl reboot',
      expect.stringMatching(/^waited [\d.]+s for SSH back after a reboot \(new boot id\): boot id b2 \(before: b1\), was unreachable$/),
      expect.stringMatching(/^waited [\d.]+s for n1 Ready after boot b2: n1: Ready=True, kubelet v1\.29\.6, boot id b2$/),
      "✓ /var/run/reboot-required is absent (test '!' -e /var/run/reboot-required → exit 0)",
    ])
    // Ready on the old boot was seen and not taken.
    expect(reads()).toBe(4)
  })

  it('fails when systemctl reboot exits with an error', async () => {
    const ssh = node('exit-1')
    const { kubectl } = api(0)
    const program = programFor(step, { distribution: 'k3s', node: { packageManager: 'apt' } })
    await expect(runProgram(program, { ssh, kubectl, target, dryRun: false }, { ssh, kubectl, target, pollMs: 5 })).rejects.toThrow(/reboot: the OS says a reboot is required: command failed on n1 .* exit code 1/)
  })
})
