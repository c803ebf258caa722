import type { Pod } from 'kubernetes-types/core/v1.js'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { describeProbe, runProbePod } from '../../src/gates/read/probe-pod.js'
import type { GateContext } from '../../src/gates/types.js'
import type { KubectlClient } from '../../src/transport/kubectl/client.js'
import type { Transport } from '../../src/transport/types.js'

/**
 * How a probe pod is followed, on fake timers and a scripted kubectl: the pod's phase turns Succeeded `doneAfterMs`
 * after it was created. With a watch, the gate's answer comes with that change; where kubectl cannot watch, it waits
 * for the first poll after it, so the polls' spacing is time a node's turn is held for nothing.
 */
function cluster(doneAfterMs: number, o: { watch: boolean; createFails?: string }) {
  const polls: number[] = []
  const watches: string[][] = []
  const deletes: string[][] = []
  let created = 0
  const pod = (): Pod => (Date.now() - created >= doneAfterMs
    ? { status: { phase: 'Succeeded', containerStatuses: [{ name: 'probe', image: 'curl', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 0 } } }] } }
    : { status: { phase: 'Pending' } })
  const kubectl = {
    run: async (args: string[]) => {
      if (args[0] === 'create') created = Date.now()
      if (args[0] === 'create' && o.createFails) throw new Error(o.createFails)
      if (args[0] === 'delete') deletes.push(args)
      return args[0] === 'logs' ? 'probe https://10.96.0.1:443/readyz exit=0 200\n' : ''
    },
    json: async <T>(args: string[]): Promise<T> => {
      expect(args.slice(0, 2)).toEqual(['get', 'pod'])
      polls.push(Date.now() - created)
      return pod() as T
    },
    watch: (target: string[], onObject: (o: unknown) => void, signal: AbortSignal) => {
      watches.push(target)
      if (!o.watch) return Promise.resolve({ exitCode: 1, stderr: 'Error from server (Forbidden): cannot watch resource "pods"', stopped: false })
      onObject(pod())
      const change = setTimeout(() => onObject(pod()), Math.max(0, created + doneAfterMs - Date.now()))
      return new Promise((resolve) => signal.addEventListener('abort', () => (clearTimeout(change), resolve({ exitCode: null, stderr: '', stopped: true })), { once: true }))
    },
  } as unknown as KubectlClient
  const ctx = { cluster: 'prod', distribution: 'kubeadm', scope: 'cluster', nodes: [], ssh: {} as Transport, kubectl, now: () => new Date() } as GateContext
  return { ctx, polls, watches, deletes }
}

describe('a probe pod whose create got no answer', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('AlreadyExists for its own name: an earlier send landed, so the pod is followed as created, then deleted', async () => {
    const { ctx, deletes } = cluster(1_000, { watch: true, createFails: 'kubectl create -f - -o name: exit 1: Error from server (AlreadyExists): error when creating "STDIN": pods "kupgrade-probe-api-vip-0a1b2c" already exists' })
    const outcome = probe(ctx)
    await vi.advanceTimersByTimeAsync(2_000)
    expect(await outcome).toMatchObject({ phase: 'Succeeded', exitCode: 0, deleted: true })
    expect((await outcome).problem).toBeUndefined()
    expect(deletes).toHaveLength(1)
  })

  it('a Timeout: the gate has no answer, and the pod, which may have been made anyway, is deleted by its name', async () => {
    const { ctx, deletes, watches } = cluster(1_000, { watch: true, createFails: 'Error from server (Timeout): error when creating "STDIN": Timeout: request did not complete within requested timeout - context deadline exceeded' })
    const o = await probe(ctx)
    expect(o.problem).toMatch(/^could not create the probe pod: .*Timeout/)
    expect(o.deleted).toBe(true)
    expect(watches).toEqual([])
    expect(deletes).toEqual([['delete', 'pod', o.pod, '-n', 'default', '--ignore-not-found', '--wait=false']])
  })

  it('a create never sent (no such context) or refused (Forbidden) made no pod: none is deleted, none said left behind', async () => {
    for (const createFails of ['command failed on prod/kubectl (prod) with exit code 1: kubectl create -f - -o name\n    error: context "prod" does not exist', 'Error from server (Forbidden): pods is forbidden: User "ci" cannot create resource "pods" in the namespace "default"']) {
      const { ctx, deletes, watches } = cluster(1_000, { watch: true, createFails })
      const o = await probe(ctx)
      expect(o.problem).toMatch(/^could not create the probe pod: /)
      expect(o.deleted).toBe(true)
      expect(describeProbe(o)).not.toContain('NOT deleted')
      expect([watches, deletes]).toEqual([[], []])
    }
  })
})

const probe = (ctx: GateContext) => runProbePod(ctx, { purpose: 'api-vip', image: 'curlimages/curl:8.11.1', script: 'true', timeoutMs: 90_000 })

describe('a probe pod is watched to its end; where kubectl cannot watch, polled closely while quick and less often once slow', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('one watch sees the pod done when it is done; a quiet stretch is bridged by a fresh read every two seconds', async () => {
    const { ctx, polls, watches } = cluster(4_500, { watch: true })
    let seenAt = -1
    const outcome = probe(ctx).then((o) => ((seenAt = Date.now()), o))
    const t0 = Date.now()
    await vi.advanceTimersByTimeAsync(5_000)
    expect(await outcome).toMatchObject({ phase: 'Succeeded', exitCode: 0, deleted: true, logs: expect.stringContaining('200') })
    expect(seenAt - t0).toBe(4_500)
    expect(watches).toEqual([['pod', expect.stringMatching(/^kupgrade-probe-api-vip-[0-9a-f]{6}$/), '-n', 'default']])
    expect(polls).toEqual([2_000, 4_000])
  })

  it('without watch: a pod done 1.8 s after its creation is seen done within half a second of it', async () => {
    const { ctx, polls } = cluster(1_800, { watch: false })
    const outcome = probe(ctx)
    await vi.advanceTimersByTimeAsync(5_000)
    expect(await outcome).toMatchObject({ phase: 'Succeeded', exitCode: 0, deleted: true })
    expect(polls).toEqual([0, 500, 1_000, 1_500, 2_000])
  })

  it('without watch: a pod still pulling its image after ten seconds is asked every two seconds from then on', async () => {
    const { ctx, polls } = cluster(30_000, { watch: false })
    const outcome = probe(ctx)
    await vi.advanceTimersByTimeAsync(40_000)
    expect(await outcome).toMatchObject({ phase: 'Succeeded' })
    // Every half second for the first ten seconds, then every 2 s.
    expect(polls.filter((t) => t < 10_000)).toHaveLength(20)
    const later = polls.filter((t) => t >= 10_000)
    expect(later.slice(1).map((t, i) => t - later[i]!)).toEqual(Array(later.length - 1).fill(2_000))
    expect(polls.at(-1)! - 30_000).toBeLessThan(2_000)
  })
})
