import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LiveKubectl } from '../../src/executor/kubectl-channel.js'
import { ClusterLease, LockRefusedError } from '../../src/executor/lease.js'
import { Lab } from '../../src/lab/lab.js'
import { normalizeTopology } from '../../src/lab/topology.js'
import { KubectlClient } from '../../src/transport/kubectl/client.js'
import { KUBECTL } from '../lab/helpers.js'
import { topology } from './helpers.js'

/** The Lease protocol against the lab's API server (real kubectl, real 409s): refuse, expire, take over, lose, release. */
describe('cluster lock: Lease kube-system/kupgrade-lock', () => {
  let lab: Lab
  let dir: string
  let kubectl: LiveKubectl
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kupgrade-lease-'))
    lab = new Lab({ topology: normalizeTopology(topology('127.0.87', [{ name: 'c', distribution: 'k3s', controlPlanes: 1, workers: 0 }])), dir, nodes: false })
    await lab.start()
    kubectl = new LiveKubectl('c', new KubectlClient({ cluster: 'c', binary: KUBECTL, kubeconfig: join(dir, 'kubeconfig'), context: 'c', cacheDir: join(dir, 'cache') }))
  }, 60_000)
  afterAll(async () => {
    await lab?.stop()
    await rm(dir, { recursive: true, force: true })
  })
  const lease = (holder: string, o: { durationSeconds?: number; forceUnlock?: boolean } = {}) =>
    new ClusterLease({ kubectl, holder, durationSeconds: o.durationSeconds ?? 30, forceUnlock: o.forceUnlock ?? false, dryRun: false })
  const read = async () => JSON.parse(await kubectl.read(['get', 'lease', 'kupgrade-lock', '-n', 'kube-system', '-o', 'json']))

  it('creates the Lease; a second holder is refused with the holder and since when; release clears the holder', async () => {
    const a = lease('run-a ops@host-a')
    await a.acquire()
    const held = await read()
    expect(held.spec).toMatchObject({ holderIdentity: 'run-a ops@host-a', leaseDurationSeconds: 30 })
    expect(held.spec.renewTime).toMatch(/\.\d{6}Z$/)
    const err = await lease('run-b ops@host-b').acquire().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(LockRefusedError)
    expect((err as Error).message).toContain(`"run-a ops@host-a" since ${held.spec.acquireTime}`)
    expect((err as LockRefusedError).expired).toBe(false)
    await a.release()
    expect((await read()).spec.holderIdentity).toBeUndefined()
    // A released Lease is free: taken with an update carrying the resourceVersion just read.
    const b = lease('run-b ops@host-b')
    await b.acquire()
    expect((await read()).spec.holderIdentity).toBe('run-b ops@host-b')
    await b.release()
  }, 60_000)

  it('an expired holder is taken over only with --force-unlock', async () => {
    const a = lease('run-c ops@host-c', { durationSeconds: 1 })
    await a.acquire()
    await new Promise((r) => setTimeout(r, 1500))
    const refused = await lease('run-d ops@host-d').acquire().catch((e: unknown) => e)
    expect((refused as LockRefusedError).expired).toBe(true)
    expect((refused as Error).message).toMatch(/has expired; not taking it over without --force-unlock/)
    const before = (await read()).spec.leaseTransitions ?? 0
    const d = lease('run-d ops@host-d', { forceUnlock: true })
    expect(await d.acquire()).toEqual({ takenOverFrom: 'run-c ops@host-c' })
    const now = await read()
    expect(now.spec.holderIdentity).toBe('run-d ops@host-d')
    expect(now.spec.leaseTransitions).toBe(before + 1)
    await d.release()
  }, 60_000)

  it('renews with the resourceVersion; a write by someone else makes the next renewal a 409: the lock is lost', async () => {
    const a = lease('run-e ops@host-e', { durationSeconds: 3 })
    await a.acquire()
    const renewed: string[] = []
    const lost = new Promise<string>((resolve) => a.startRenewing((rv) => renewed.push(rv), resolve))
    for (let i = 0; i < 100 && renewed.length < 1; i++) await new Promise((r) => setTimeout(r, 100))
    expect(renewed.length).toBeGreaterThanOrEqual(1)
    expect(Number(renewed[0])).toBeGreaterThan(0)
    // Someone else writes the Lease (a human with kubectl, another tool): the resourceVersion moves on.
    const other = await read()
    other.spec.holderIdentity = 'intruder'
    delete other.metadata.resourceVersion
    await kubectl.mutate('test', ['replace', '-f', '-'], { stdin: JSON.stringify(other) })
    expect(await lost).toMatch(/409 Conflict/)
    expect((await read()).spec.holderIdentity).toBe('intruder')
  }, 60_000)

  it('a lock write whose answer is lost (504 Timeout, landed all the same) costs neither the taking nor the renewing', async () => {
    const path = '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases'
    const slow = (method: string, p: string) => ({ fault: 'apiserver-slow' as const, cluster: 'c', params: { method, path: p, requests: 1, answer: 'timeout', delay: '50ms' } })
    // The test before left its intruder holding the Lease.
    await kubectl.mutate('test', ['delete', 'lease', 'kupgrade-lock', '-n', 'kube-system', '--ignore-not-found'])
    // The create lands and is answered 504; sent again it meets AlreadyExists, naming this run: taken.
    lab.setFault(slow('POST', path), true)
    // 15 s: renewals every 5 s, and a renewal that fails is given up 10 s after the lock was last written (taken or
    // renewed), keeping one period in hand. The first renewal starts a read and a period after the taking, and under a
    // full suite on a loaded 2-CPU machine each kubectl process here can take seconds: with 9 s (6 s in all for the
    // read, the first renewal and its retry) the first renewal's 504 once came too late to be retried at all, and with
    // 6 s the retry (its 409, the read, the write again) once ran out of time.
    const a = lease('run-f ops@host-f', { durationSeconds: 15 })
    try {
      await a.acquire()
    } finally {
      lab.setFault(slow('POST', path), false)
    }
    expect((await read()).spec.holderIdentity).toBe('run-f ops@host-f')
    // The first renewal lands and is answered 504: the next one meets 409 from the Lease's moved resourceVersion.
    lab.setFault(slow('PUT', `${path}/kupgrade-lock`), true)
    const renewed: string[] = []
    const lost: string[] = []
    a.startRenewing((rv) => renewed.push(rv), (why) => lost.push(why))
    try {
      for (let i = 0; i < 450 && renewed.length < 2; i++) await new Promise((r) => setTimeout(r, 100))
    } finally {
      lab.setFault(slow('PUT', `${path}/kupgrade-lock`), false)
    }
    expect(lost).toEqual([])
    expect(renewed.length).toBeGreaterThanOrEqual(2)
    const puts = lab.recorder.events({ cluster: 'c' }).filter((e) => e.source === 'api' && e.method === 'PUT').map((e) => (e as { code: number }).code)
    expect(puts).toContain(504)
    expect(puts).toContain(409)
    await a.release()
    expect((await read()).spec.holderIdentity).toBeUndefined()
  }, 90_000)
})
