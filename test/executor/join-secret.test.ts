import { describe, expect, it } from 'vitest'
import { programFor } from '../../src/drivers/registry.js'
import type { KubectlChannel } from '../../src/executor/kubectl-channel.js'
import { runProgram } from '../../src/executor/run-program.js'
import type { Step } from '../../src/planner/types.js'
import type { RemoteCommand } from '../../src/transport/quote.js'
import type { ExecResult, NodeTarget, OutputLine, Transport } from '../../src/transport/types.js'

/**
 * A rebuild's join (onFailure: rebuild): the token is made on the first control-plane node and handed to the rebuilt
 * node on stdin — never in an argv, the evidence, the streamed output or an error — and the kubeadm join command it
 * carries is only run in the shape kubeadm prints it, as words.
 */
const TOKEN = 'abcdef.0123456789abcdef'
const JOIN = `kubeadm join 10.0.0.1:6443 --token ${TOKEN} --discovery-token-ca-cert-hash sha256:${'a'.repeat(64)}\n`
const cp: NodeTarget = { cluster: 'c', node: 'cp', host: '10.0.0.2' } as NodeTarget
const w1: NodeTarget = { cluster: 'c', node: 'w1', host: '10.0.0.3' } as NodeTarget
const ok = (stdout: string, exitCode = 0): ExecResult => ({ stdout, stderr: '', exitCode, retries: 0, durationMs: 1 }) as ExecResult
const line = (cmd: RemoteCommand): string => (Array.isArray(cmd) ? cmd.join(' ') : (cmd as { script: string }).script)
const kubectl = { cluster: 'c', read: async () => '', mutate: async () => '' } as unknown as KubectlChannel

const step = (params: Step['params']): Step =>
  ({ id: 'c/c/hop1/w1/rebuild/6-join-node', title: '', action: 'join-node', phase: 'workers', stage: 's', cluster: 'c', hop: 1, node: 'w1', role: 'worker', mutates: true, params }) as unknown as Step

function fleet(printed: string) {
  const calls: { node: string; command: string; stdin?: string | Buffer }[] = []
  let joined = false
  const transport: Transport = {
    read: async (t, cmd) => {
      const l = line(cmd)
      if (l.startsWith('test -s /etc/kubernetes/kubelet.conf')) return ok('', joined ? 0 : 1)
      if (l.startsWith('systemctl is-active')) return ok('active\n')
      throw new Error(`unexpected read on ${t.node}: ${l}`)
    },
    mutate: async (t, _why, cmd, opts) => {
      calls.push({ node: t.node, command: line(cmd), ...(opts?.stdin !== undefined ? { stdin: opts.stdin } : {}) })
      opts?.onOutput?.({ stream: 'stdout', line: 'output' } as OutputLine)
      if (line(cmd).startsWith('kubeadm token create')) return ok(printed)
      // The node runs the script; the test checks what it was given (the script's own logic is run in the lab).
      joined = true
      return ok('[preflight] Running pre-flight checks\n')
    },
    close: async () => {},
  }
  return { transport, calls }
}

describe('join-node: the secret goes from the first control-plane node to the node on stdin only', () => {
  it('kubeadm: token create on the first control plane, its printed join command on the node\'s stdin, nowhere else', async () => {
    const f = fleet(JOIN)
    const streamed: string[] = []
    const program = programFor(step({ kind: 'kubeadm' }), { distribution: 'kubeadm' })
    const r = await runProgram(program, { ssh: f.transport, kubectl, target: w1, firstControlPlane: cp, dryRun: false, onOutput: (o) => streamed.push(o.line) }, { ssh: f.transport, kubectl, target: w1, pollMs: 1 })
    expect(f.calls.map((c) => [c.node, c.command.split('\n')[0]])).toEqual([['cp', 'kubeadm token create --print-join-command --ttl 15m'], ['w1', 'set -e']])
    expect(f.calls[1]!.stdin).toBe(JOIN)
    expect(f.calls[0]!.stdin).toBeUndefined()
    // Not in any command line, not in the evidence, and the token command's output is not streamed.
    expect(f.calls.some((c) => c.command.includes(TOKEN))).toBe(false)
    expect(JSON.stringify(r.evidence)).not.toContain(TOKEN)
    expect(streamed).toEqual(['output'])
    expect(r.evidence.join('\n')).toMatch(/ran: kubeadm token create --print-join-command --ttl 15m \(on the first control plane node\)/)
    // The node's script runs only the documented shape, as words: no eval, globbing off.
    const script = f.calls[1]!.command
    expect(script).toContain('"kubeadm join "*" --token "*" --discovery-token-ca-cert-hash sha256:"*) ;;')
    expect(script).toContain('set -f')
    expect(script).not.toMatch(/\beval\b/)
  })

  it('k0s: a worker token from the first controller into the token file the unit names, then k0s start', async () => {
    const f = fleet('H4sIAAAAAAAC/secret-k0s-token\n')
    const program = programFor(step({ kind: 'k0s', service: 'k0sworker', release: 'v1.30.4+k0s.0' }), { distribution: 'k0s' })
    expect(program.title).toBe('k0s token create --role=worker --expiry=1h on the first controller into the token file of /etc/systemd/system/k0sworker.service, systemctl daemon-reload, k0s start')
    const run = program.run.map((c) => (c.on === 'node' ? [c.at ?? 'node', c.secretOut ?? '', c.secretIn ?? ''] : []))
    expect(run).toEqual([['first-control-plane', 'token', ''], ['node', '', 'token'], ['node', '', ''], ['node', '', '']])
  })

  it('a command that needs a secret no earlier command made fails before it runs', async () => {
    const f = fleet(JOIN)
    const program = programFor(step({ kind: 'kubeadm' }), { distribution: 'kubeadm' })
    const broken = { ...program, run: program.run.slice(1) }
    await expect(runProgram(broken, { ssh: f.transport, kubectl, target: w1, firstControlPlane: cp, dryRun: false }, { ssh: f.transport, kubectl, target: w1, pollMs: 1 })).rejects.toThrow(/the secret join was not made by an earlier command/)
    expect(f.calls).toEqual([])
  })
})
