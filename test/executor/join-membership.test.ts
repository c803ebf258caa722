import { describe, expect, it } from 'vitest'
import { programFor } from '../../src/drivers/registry.js'
import type { KubectlChannel } from '../../src/executor/kubectl-channel.js'
import { runProgram } from '../../src/executor/run-program.js'
import { StepFailure } from '../../src/executor/step-failure.js'
import type { Step } from '../../src/planner/types.js'
import type { RemoteCommand } from '../../src/transport/quote.js'
import type { ExecResult, NodeTarget, Transport } from '../../src/transport/types.js'

/**
 * A k0s controller that joins (a rebuild's join-node, a restore's rejoin-datastore) is done only once another
 * controller lists it as an etcd member. k0s runs as Type=simple: while its join is refused, the process starts, exits
 * and is restarted, so its unit is `active` for moments at a time and `k0s status` may answer; the membership is what
 * a refused join never gets.
 */
const cp1: NodeTarget = { cluster: 'c', node: 'cp-1', host: '10.0.0.1' } as NodeTarget
const cp2: NodeTarget = { cluster: 'c', node: 'cp-2', host: '10.0.0.2' } as NodeTarget
const ok = (stdout: string, exitCode = 0): ExecResult => ({ stdout, stderr: '', exitCode, retries: 0, durationMs: 1 }) as ExecResult
const line = (cmd: RemoteCommand): string => (Array.isArray(cmd) ? cmd.join(' ') : (cmd as { script: string }).script)
const kubectl = { cluster: 'c', read: async () => '', mutate: async () => '' } as unknown as KubectlChannel
const RELEASE = 'v1.29.6+k0s.0'

const join = { id: 'c/c/hop1/cp-2/rebuild/6-join-node', title: '', action: 'join-node', phase: 'control-plane', stage: 's', cluster: 'c', hop: 1, node: 'cp-2', role: 'control-plane', mutates: true, params: { kind: 'k0s-controller', service: 'k0scontroller', release: RELEASE } } as unknown as Step
const rejoin = { id: 'c/c/hop1/restore/4-cp-2-rejoin-datastore', title: '', action: 'rejoin-datastore', phase: 'control-plane', stage: 's', cluster: 'c', hop: 1, node: 'cp-2', role: 'control-plane', mutates: true, params: { kind: 'k0s', dir: `/var/lib/kupgrade/backup/${RELEASE}`, binary: '/usr/local/bin/k0s', backup: `/var/lib/kupgrade/backup/${RELEASE}/files/usr/local/bin/k0s`, release: RELEASE, service: 'k0scontroller' } } as unknown as Step

/** cp-2 starts (active, k0s status answers) once its commands ran; cp-1 lists it after `listedAfter` member-list reads. */
function fleet(listedAfter: number) {
  let started = false
  let lists = 0
  const memberReads: string[] = []
  const transport: Transport = {
    read: async (t, cmd) => {
      const l = line(cmd)
      if (l === 'k0s etcd member-list') {
        memberReads.push(t.node)
        const listed = started && ++lists > listedAfter
        return ok(`{"members":{"cp-1":"https://10.0.0.1:2380"${listed ? ',"cp-2":"https://10.0.0.2:2380"' : ''}}}\n`)
      }
      if (l === 'k0s status') return started ? ok(`Version: ${RELEASE}\nProcess ID: 42\n`) : ok('', 1)
      if (l === 'systemctl is-active k0scontroller') return ok(started ? 'active\n' : 'inactive\n', started ? 0 : 3)
      throw new Error(`unexpected read on ${t.node}: ${l}`)
    },
    mutate: async (_t, _why, cmd) => {
      if (line(cmd).startsWith('k0s token create')) return ok('H4sIAAAAAAAC/token\n')
      if (line(cmd) === 'k0s start') started = true
      return ok('')
    },
    close: async () => {},
  }
  return { transport, memberReads }
}

const quick = (p: ReturnType<typeof programFor>) => ({ ...p, wait: (p.wait ?? []).map((w) => ({ ...w, timeoutMs: 200 })) })

describe('a k0s controller join is done when another controller lists its etcd member, not when its unit is active', () => {
  for (const [name, step, at] of [['join-node (rebuild)', join, 'the peer'], ['rejoin-datastore (restore)', rejoin, 'the first controller']] as const) {
    it(`${name}: waits until ${at} lists it`, async () => {
      const f = fleet(3)
      const program = quick(programFor(step, { distribution: 'k0s' }))
      const r = await runProgram(program, { ssh: f.transport, kubectl, target: cp2, firstControlPlane: cp1, peerControlPlane: cp1, dryRun: false }, { ssh: f.transport, kubectl, target: cp2, pollMs: 1 })
      expect(r.changed).toBe(true)
      expect(r.evidence.join('\n')).toMatch(/k0s etcd member-list on (another|the first) controller names cp-2/)
      // Read on the other controller, never on the joining one; polled past the reads that did not list it yet.
      expect(new Set(f.memberReads)).toEqual(new Set(['cp-1']))
      expect(f.memberReads.length).toBeGreaterThan(3)
    })

    it(`${name}: a join that is never listed fails, active unit and all`, async () => {
      const f = fleet(Number.POSITIVE_INFINITY)
      const program = quick(programFor(step, { distribution: 'k0s' }))
      const err = await runProgram(program, { ssh: f.transport, kubectl, target: cp2, firstControlPlane: cp1, peerControlPlane: cp1, dryRun: false }, { ssh: f.transport, kubectl, target: cp2, pollMs: 1 }).catch((e: Error) => e)
      expect(err).toBeInstanceOf(StepFailure)
      expect((err as Error).message).toMatch(/names cp-2/)
    })
  }
})
