import type { Pod } from 'kubernetes-types/core/v1.js'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { runProbePod } from '../../src/gates/read/probe-pod.js'
import type { GateContext } from '../../src/gates/types.js'
import type { KubectlClient } from '../../src/transport/kubectl/client.js'
import type { Transport } from '../../src/transport/types.js'

/**
 * How often a probe pod is asked about, on fake timers and a scripted kubectl: the pod's phase turns Succeeded
 * `doneAfterMs` after it was created. The gate's answer waits for the first poll after that, so the polls' spacing
 * is time a node's turn is held for nothing.
 */
function cluster(doneAfterMs: number) {
  const polls: number[] = []
  let created = 0
  const kubectl = {
    run: async (args: string[]) => {
      if (args[0] === 'create') created = Date.now()
      return args[0] === 'logs' ? 'probe https://10.96.0.1:443/readyz exit=0 200\n' : ''
    },
    json: async <T>(args: string[]): Promise<T> => {
      expect(args.slice(0, 2)).toEqual(['get', 'pod'])
      polls.push(Date.now() - created)
      const done = Date.now() - created >= doneAfterMs
      const pod: Pod = done
        ? { status: { phase: 'Succeeded', containerStatuses: [{ name: 'probe', image: 'curl', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 0 } } }] } }
        : { status: { phase: 'Pending' } }
      return pod as T
    },
  } as unknown as KubectlClient
  const ctx = { cluster: 'prod', distribution: 'kubeadm', scope: 'cluster', nodes: [], ssh: {} as Transport, kubectl, now: () => new Date() } as GateContext
  return { ctx, polls }
}

const probe = (ctx: GateContext) => runProbePod(ctx, { purpose: 'api-vip', image: 'curlimages/curl:8.11.1', script: 'true', timeoutMs: 90_000 })

describe('a probe pod is polled closely while it is quick, and less often once it is slow', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('a pod done 1.8 s after its creation is seen done within half a second of it', async () => {
    const { ctx, polls } = cluster(1_800)
    const outcome = probe(ctx)
    await vi.advanceTimersByTimeAsync(5_000)
    expect(await outcome).toMatchObject({ phase: 'Succeeded', exitCode: 0, deleted: true })
    expect(polls).toEqual([0, 250, 750, 1250, 1750, 2250])
  })

  it('a pod still pulling its image after ten seconds is asked every two seconds from then on', async () => {
    const { ctx, polls } = cluster(30_000)
    const outcome = probe(ctx)
    await vi.advanceTimersByTimeAsync(40_000)
    expect(await outcome).toMatchObject({ phase: 'Succeeded' })
    // Every half second for the first ten seconds, then 1 s once and 2 s after that.
    expect(polls.filter((t) => t <= 10_000)).toHaveLength(21)
    const later = polls.filter((t) => t > 10_250)
    expect(later.slice(1).map((t, i) => t - later[i]!)).toEqual(Array(later.length - 1).fill(2_000))
    expect(polls.at(-1)! - 30_000).toBeLessThan(2_000)
  })
})
