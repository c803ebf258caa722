import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { KubectlChannel } from '../../src/executor/kubectl-channel.js'
import { ClusterLease } from '../../src/executor/lease.js'
import { RemoteCommandError } from '../../src/errors.js'
import type { KubectlClient } from '../../src/transport/kubectl/client.js'

/**
 * What the Lease does when the API does not answer (a timeout on a busy API), on a scripted kubectl channel and fake
 * timers. The Lease against real kubectl and the lab's optimistic concurrency is test/executor/lease.e2e.test.ts.
 */
const TIMEOUT = new Error('command failed on c/kubectl (c) with exit code 1: kubectl replace -f - -o json\nUnable to connect to the server: net/http: request canceled (Client.Timeout exceeded)')
const lease = (rv: number) => JSON.stringify({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'kupgrade-lock', namespace: 'kube-system', resourceVersion: String(rv) }, spec: {} })

/** Answers each write from `script` in turn (an Error is thrown), then succeeds. */
function channel(script: Record<'create' | 'replace', (Error | 'ok')[]>) {
  const calls: string[] = []
  let rv = 1
  const ch: KubectlChannel = {
    cluster: 'c',
    client: {} as KubectlClient,
    read: async () => lease(rv),
    observe: async () => { throw new Error('the lock follows nothing') },
    mutate: async (_why, args) => {
      const verb = args[0] as 'create' | 'replace'
      calls.push(verb)
      const next = script[verb].shift() ?? 'ok'
      if (next instanceof Error) throw next
      return lease(++rv)
    },
  }
  return { ch, calls }
}

/** A 6 s lease whose every renewal fails with `err`, run for the lease's whole time: what was lost, and the calls. */
async function renewalsFailingWith(err: Error): Promise<{ lost: string[]; calls: string[] }> {
  const { ch, calls } = channel({ create: [], replace: Array(20).fill(err) })
  const l = new ClusterLease({ kubectl: ch, holder: 'run h', durationSeconds: 6, forceUnlock: false, dryRun: false })
  await l.acquire()
  const lost: string[] = []
  l.startRenewing(() => {}, (why) => lost.push(why))
  await vi.advanceTimersByTimeAsync(6000)
  return { lost, calls }
}

describe('the run lock when the API does not answer', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('a failed renewal is asked again a second later, not a period later, and the lock is kept', async () => {
    const { ch, calls } = channel({ create: [], replace: [TIMEOUT] })
    const l = new ClusterLease({ kubectl: ch, holder: 'run h', durationSeconds: 6, forceUnlock: false, dryRun: false })
    await l.acquire()
    const renewed: string[] = []
    const lost: string[] = []
    l.startRenewing((rv) => renewed.push(rv), (why) => lost.push(why))
    await vi.advanceTimersByTimeAsync(2000) // the period (6s / 3): the first renewal fails
    expect(renewed).toEqual([])
    await vi.advanceTimersByTimeAsync(1000) // one second on: asked again, renewed
    expect(renewed).toHaveLength(1)
    expect(calls).toEqual(['create', 'replace', 'replace'])
    expect(lost).toEqual([])
    l.stopRenewing()
  })

  it('a renewal that keeps failing is retried every second and the lock is lost before the lease would expire', async () => {
    const { lost, calls } = await renewalsFailingWith(TIMEOUT)
    expect(lost).toHaveLength(1)
    expect(lost[0]).toMatch(/renewal kept failing until the lease would expire/)
    // 2s, 3s, 4s: three tries within the lease's time (the last one at its renew-by point), then no more.
    expect(calls.filter((c) => c === 'replace')).toHaveLength(3)
  })

  it('the lost lock names what kubectl said, not only its exit code (the user needs the real reason)', async () => {
    // What the 50-node apply bench lost its lock to: kubectl's own message is on its later stderr lines.
    const handshake = new RemoteCommandError({
      cluster: 'c', node: 'kubectl', host: 'c', command: 'kubectl replace -f - -o json', exitCode: 1,
      stderr: 'error: error validating "STDIN": error validating data: failed to download openapi: Get "https://127.0.100.1:6443/openapi/v2?timeout=20s": net/http: TLS handshake timeout; if you choose to ignore these errors, turn validation off with --validate=false\n',
    })
    const { lost } = await renewalsFailingWith(handshake)
    expect(lost).toHaveLength(1)
    expect(lost[0]).toContain('exit code 1: kubectl replace -f - -o json: error: error validating "STDIN"')
    expect(lost[0]).toContain('net/http: TLS handshake timeout')
    expect(lost[0]).not.toContain('\n')
  })

  it('taking the lock asks again twice when the API gave no answer; an answer from the server decides at once', async () => {
    const flaky = channel({ create: [TIMEOUT, TIMEOUT], replace: [] })
    const a = new ClusterLease({ kubectl: flaky.ch, holder: 'run h', durationSeconds: 30, forceUnlock: false, dryRun: false }).acquire()
    await vi.advanceTimersByTimeAsync(2000)
    await expect(a).resolves.toEqual({})
    expect(flaky.calls).toEqual(['create', 'create', 'create'])

    const down = channel({ create: [TIMEOUT, TIMEOUT, TIMEOUT], replace: [] })
    const b = new ClusterLease({ kubectl: down.ch, holder: 'run h', durationSeconds: 30, forceUnlock: false, dryRun: false }).acquire()
    const bDone = expect(b).rejects.toThrow(/Unable to connect/)
    await vi.advanceTimersByTimeAsync(2000)
    await bDone
    expect(down.calls).toHaveLength(3)

    const forbidden = channel({ create: [new Error('exit code 1\nError from server (Forbidden): leases.coordination.k8s.io is forbidden')], replace: [] })
    await expect(new ClusterLease({ kubectl: forbidden.ch, holder: 'run h', durationSeconds: 30, forceUnlock: false, dryRun: false }).acquire()).rejects.toThrow(/Forbidden/)
    expect(forbidden.calls).toEqual(['create'])
  })
})

describe('the run lock when the API answered a lock write 504 Timeout, which may have landed', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())
  const TIMED_OUT = new Error('command failed on c/kubectl (c) with exit code 1: kubectl create -f - --validate=false -o json\nError from server (Timeout): error when creating "STDIN": Timeout: request did not complete within requested timeout - context deadline exceeded')
  const CONFLICT = new Error('exit code 1\nError from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled on leases.coordination.k8s.io "kupgrade-lock": the object has been modified; please apply your changes to the latest version and try again')

  /** A Lease held by `holder` at resourceVersion 7; the writes answered from `script` in turn, then accepted. */
  function heldLease(holder: string, script: Record<'create' | 'replace', Error[]>) {
    const sent: { verb: string; rv?: string }[] = []
    const ch: KubectlChannel = {
      cluster: 'c',
      client: {} as KubectlClient,
      read: async () => JSON.stringify({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'kupgrade-lock', namespace: 'kube-system', resourceVersion: '7' }, spec: { holderIdentity: holder, leaseDurationSeconds: 6 } }),
      observe: async () => { throw new Error('the lock follows nothing') },
      mutate: async (_why, args, o) => {
        const verb = args[0] as 'create' | 'replace'
        sent.push({ verb, rv: JSON.parse(o!.stdin!).metadata.resourceVersion })
        const next = script[verb].shift()
        if (next) throw next
        return lease(8)
      },
    }
    return { ch, sent }
  }

  it('taking it: a create answered Timeout is sent again; AlreadyExists with our own name on it is ours', async () => {
    const { ch, sent } = heldLease('run h', { create: [TIMED_OUT, new Error('exit code 1\nError from server (AlreadyExists): leases.coordination.k8s.io "kupgrade-lock" already exists')], replace: [] })
    const a = new ClusterLease({ kubectl: ch, holder: 'run h', durationSeconds: 6, forceUnlock: false, dryRun: false }).acquire()
    await vi.advanceTimersByTimeAsync(1000)
    await expect(a).resolves.toEqual({})
    expect(sent).toEqual([{ verb: 'create' }, { verb: 'create' }, { verb: 'replace', rv: '7' }])
  })

  it('renewing: a 409 while the Lease still names us was our own renewal landing; sent again with the version read', async () => {
    const { ch, sent } = heldLease('run h', { create: [], replace: [CONFLICT] })
    const l = new ClusterLease({ kubectl: ch, holder: 'run h', durationSeconds: 6, forceUnlock: false, dryRun: false })
    await l.acquire()
    const lost: string[] = []
    const renewed: string[] = []
    l.startRenewing((rv) => renewed.push(rv), (why) => lost.push(why))
    await vi.advanceTimersByTimeAsync(2100)
    expect(lost).toEqual([])
    expect(renewed).toEqual(['8'])
    expect(sent.slice(1)).toEqual([{ verb: 'replace', rv: '8' }, { verb: 'replace', rv: '7' }])
    await l.release()
    expect(sent.at(-1)).toEqual({ verb: 'replace', rv: '8' })
  })

  it('renewing: a 409 with someone else named in the Lease is the lock lost, as ever', async () => {
    const { ch } = heldLease('intruder', { create: [], replace: [CONFLICT] })
    const l = new ClusterLease({ kubectl: ch, holder: 'run h', durationSeconds: 6, forceUnlock: false, dryRun: false })
    await l.acquire()
    const lost: string[] = []
    l.startRenewing(() => {}, (why) => lost.push(why))
    await vi.advanceTimersByTimeAsync(2100)
    expect(lost).toEqual(['the Lease was changed by someone else (409 Conflict on renewal)'])
  })
})

describe('the run lock after a datastore restore (its Lease is the snapshot\'s)', () => {
  /** A Lease held by another run, last renewed at `renewTime`; create answers AlreadyExists, replace succeeds. */
  function heldBy(renewTime: string) {
    const replaced: string[] = []
    const ch: KubectlChannel = {
      cluster: 'c',
      client: {} as KubectlClient,
      read: async () => JSON.stringify({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'kupgrade-lock', namespace: 'kube-system', resourceVersion: '7' }, spec: { holderIdentity: 'run-a ops@a', leaseDurationSeconds: 30, acquireTime: renewTime, renewTime, leaseTransitions: 0 } }),
      observe: async () => { throw new Error('the lock follows nothing') },
      mutate: async (_why, args, o) => {
        if (args[0] === 'create') throw new Error('exit code 1\nError from server (AlreadyExists): leases.coordination.k8s.io "kupgrade-lock" already exists')
        replaced.push(JSON.parse(o!.stdin!).metadata.resourceVersion)
        return lease(8)
      },
    }
    return { ch, replaced }
  }
  const now = new Date('2026-12-02T12:00:00Z')
  const restoreBegan = new Date('2026-12-02T11:59:50Z')

  it('a Lease last renewed before the restore began came back with the snapshot: taken over, with the resourceVersion read', async () => {
    const { ch, replaced } = heldBy('2026-12-02T11:00:00.000000Z')
    const l = new ClusterLease({ kubectl: ch, holder: 'run-b ops@b', durationSeconds: 30, forceUnlock: false, dryRun: false, now: () => now })
    await expect(l.acquire(restoreBegan)).resolves.toEqual({ takenOverFrom: 'run-a ops@a', fromSnapshot: true })
    expect(replaced).toEqual(['7'])
  })

  it('one renewed since (a live run), or any other run\'s without a restore, is refused as ever', async () => {
    const live = heldBy('2026-12-02T11:59:55.000000Z')
    const l = new ClusterLease({ kubectl: live.ch, holder: 'run-b ops@b', durationSeconds: 30, forceUnlock: false, dryRun: false, now: () => now })
    await expect(l.acquire(restoreBegan)).rejects.toThrow(/another kupgrade run holds the lock Lease kube-system\/kupgrade-lock: "run-a ops@a"/)
    const old = heldBy('2026-12-02T11:00:00.000000Z')
    const m = new ClusterLease({ kubectl: old.ch, holder: 'run-b ops@b', durationSeconds: 30, forceUnlock: false, dryRun: false, now: () => now })
    await expect(m.acquire()).rejects.toThrow(/has expired; not taking it over without --force-unlock/)
    expect([live.replaced, old.replaced]).toEqual([[], []])
  })
})
