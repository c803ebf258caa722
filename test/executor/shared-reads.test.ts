import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { programFor } from '../../src/drivers/registry.js'
import type { KubectlChannel } from '../../src/executor/kubectl-channel.js'
import { runProgram } from '../../src/executor/run-program.js'
import type { Step } from '../../src/planner/types.js'
import { commandLine, type RemoteCommand } from '../../src/transport/quote.js'
import type { NodeTarget, Transport } from '../../src/transport/types.js'

/**
 * A hold step checks each of its three packages against `apt-mark showhold`: one read answers all three, so a verify
 * reads it once, not three times over (each was an apt-mark, a touch and a sort on a node).
 */
const target = { cluster: 'c', node: 'w-1', host: '10.0.0.3' } as NodeTarget
const noKubectl = { cluster: 'c', read: async () => { throw new Error('no kubectl') }, mutate: async () => { throw new Error('no kubectl') } } as unknown as KubectlChannel
const hold: Step = {
  id: 's/c/hop1/w-1/hold-packages', title: '', phase: 'workers', stage: 's', cluster: 'c', hop: 1, node: 'w-1', role: 'worker', mutates: true,
  action: 'hold-packages', params: { packages: ['kubeadm', 'kubelet', 'kubectl'] },
} as Step

/**
 * A node whose shell runs what it is sent, with `apt-mark` a bash function printing `held`: the checks' batch is framed
 * and parsed as on a real node, not by a copy of its format.
 */
function node(held: string) {
  const reads: string[] = []
  const writes: string[] = []
  const ssh = {
    read: async (_t: NodeTarget, c: RemoteCommand) => {
      const line = commandLine(c)
      reads.push(line)
      const r = spawnSync('bash', ['-c', `apt-mark() { printf '%s' "$HELD"; }\n${line}`], { encoding: 'utf8', input: '', env: { ...process.env, HELD: held } })
      return { stdout: r.stdout, stderr: r.stderr, exitCode: r.status }
    },
    mutate: async (_t: NodeTarget, _why: string, c: RemoteCommand) => { writes.push(commandLine(c)); return { stdout: '', stderr: '', exitCode: 0 } },
    close: async () => {},
  } as unknown as Transport
  return { ssh, reads, writes }
}

const run = (n: ReturnType<typeof node>) => runProgram(programFor(hold, { distribution: 'kubeadm', node: { packageManager: 'apt' } as never }), { ssh: n.ssh, kubectl: noKubectl, target, dryRun: false }, { ssh: n.ssh, kubectl: noKubectl, target, pollMs: 1 })

describe('checks that share a read', () => {
  it('read it once, and each judges the one answer', async () => {
    const done = node('kubeadm\nkubectl\nkubelet\n')
    expect(await run(done)).toEqual({
      changed: false,
      evidence: ['✓ kubeadm is held (apt-mark showhold → exit 0: kubeadm ⏎ kubectl ⏎ kubelet)', '✓ kubelet is held (apt-mark showhold → exit 0: kubeadm ⏎ kubectl ⏎ kubelet)', '✓ kubectl is held (apt-mark showhold → exit 0: kubeadm ⏎ kubectl ⏎ kubelet)'],
    })
    expect(done.reads).toEqual(['apt-mark showhold'])
    expect(done.writes).toEqual([])
  })

  it('one package not held fails that check alone, and the step runs', async () => {
    const partly = node('kubeadm\nkubectl\n')
    await expect(run(partly)).rejects.toThrow('the commands succeeded but the effect is not there')
    expect(partly.reads).toEqual(['apt-mark showhold', 'apt-mark showhold'])
    expect(partly.writes).toEqual(['apt-mark hold kubeadm kubelet kubectl'])
  })
})
