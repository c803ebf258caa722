import type { Node } from 'kubernetes-types/core/v1.js'
import type { Wait } from '../drivers/program.js'
import { sleep } from '../transport/backoff.js'
import type { NodeTarget, Transport } from '../transport/types.js'
import type { KubectlChannel } from './kubectl-channel.js'
import { StepFailure } from './step-failure.js'

/**
 * The executor's waits (drivers say *what* to wait for; polling and timeouts live here). Each returns one line of
 * evidence, or throws a StepFailure with the last observation when its time is up.
 */
export interface WaitContext {
  ssh: Transport
  kubectl: KubectlChannel
  target?: NodeTarget
  signal?: AbortSignal
  /** The boot id read before the run (for `ssh-back` with `newBoot`). */
  before?: string
  pollMs?: number
}

export async function runWait(w: Wait, c: WaitContext): Promise<string> {
  switch (w.kind) {
    case 'node-ready':
      return waitNodeReady(c.kubectl, w.node, w.kubeletVersion, w.timeoutMs, c)
    case 'service-active':
      return poll(`${w.service} active`, w.timeoutMs, c, async () => {
        const r = await c.ssh.read(c.target!, ['systemctl', 'is-active', w.service], { okExitCodes: [0, 3, 4], timeoutMs: 10_000 })
        return { ok: r.stdout.trim() === 'active', observed: `systemctl is-active ${w.service}: ${r.stdout.trim() || `exit ${r.exitCode}`}` }
      })
    case 'ssh-back': {
      let sawDown = false
      return poll(w.newBoot ? 'SSH back after a reboot (new boot id)' : 'SSH back', w.timeoutMs, c, async () => {
        try {
          const r = await c.ssh.read(c.target!, ['cat', '/proc/sys/kernel/random/boot_id'], { timeoutMs: 5_000 })
          const id = r.stdout.trim()
          const fresh = !w.newBoot || (c.before !== undefined && id !== c.before) || (c.before === undefined && sawDown)
          return { ok: fresh, observed: `boot id ${id}${c.before ? ` (before: ${c.before})` : ''}${sawDown ? ', was unreachable' : ''}` }
        } catch (err) {
          sawDown = true
          return { ok: false, observed: `unreachable: ${(err as Error).message.split('\n')[0]}` }
        }
      })
    }
  }
}

export function nodeReadiness(n: Node): { ready: boolean; version: string } {
  const cond = n.status?.conditions?.find((x) => x.type === 'Ready')
  return { ready: cond?.status === 'True', version: n.status?.nodeInfo?.kubeletVersion ?? '' }
}

/** Polls the Node until Ready=True with the expected kubelet version (empty: any version). */
export function waitNodeReady(kubectl: KubectlChannel, node: string, kubeletVersion: string | undefined, timeoutMs: number, c: Pick<WaitContext, 'signal' | 'pollMs'>): Promise<string> {
  return poll(`${node} Ready${kubeletVersion ? ` with kubelet ${kubeletVersion}` : ''}`, timeoutMs, c, async () => {
    const n = JSON.parse(await kubectl.read(['get', 'node', node, '-o', 'json'])) as Node
    const r = nodeReadiness(n)
    return { ok: r.ready && (!kubeletVersion || r.version === kubeletVersion), observed: `${node}: Ready=${r.ready ? 'True' : 'False'}, kubelet ${r.version || '?'}` }
  })
}

async function poll(what: string, timeoutMs: number, c: Pick<WaitContext, 'signal' | 'pollMs'>, probe: () => Promise<{ ok: boolean; observed: string }>): Promise<string> {
  const started = Date.now()
  let last = 'not observed yet'
  for (;;) {
    try {
      const r = await probe()
      last = r.observed
      if (r.ok) return `waited ${Math.round((Date.now() - started) / 100) / 10}s for ${what}: ${r.observed}`
    } catch (err) {
      if (c.signal?.aborted) throw err
      last = (err as Error).message.split('\n')[0]!
    }
    if (Date.now() - started >= timeoutMs) throw new StepFailure(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}`, [`last observed: ${last}`])
    await sleep(c.pollMs ?? 250, c.signal)
  }
}
