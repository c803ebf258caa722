import { createServer, type Server } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { BrokerRegistration, LoopbackBrokerError, register } from '../../../src/lab/node/loopback-broker-client.js'
import { portHolder } from '../../../src/lab/node/loopback-broker.mjs'
import { waitFor } from './helpers.js'

/** The broker's life cycle on ports and a control name of the test's own, so the lab's broker (other test files)
 *  is not involved; two-labs-ports.test.ts shows real nodes of two lab processes through the lab's broker. */
const freePort = (): Promise<number> => new Promise((resolve) => {
  const s = createServer().listen({ host: '127.0.0.1', port: 0 }, () => {
    const { port } = s.address() as { port: number }
    s.close(() => resolve(port))
  })
})
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
let n = 0
const spec = async (ports = 2) => ({
  control: `kupgrade-lab-test/${process.pid}/${n++}`,
  ports: await Promise.all(Array.from({ length: ports }, freePort)),
  nsRoot: '/mnt',
  idleMs: 200,
})

const cleanup: (() => void)[] = []
afterEach(() => {
  for (const f of cleanup.splice(0)) f()
})

describe('lab loopback broker (loopback-broker.mjs): one per network namespace, belongs to no lab', () => {
  it('labs registering at once share one broker, which holds the ports; it stays while any is registered, then leaves by itself', async () => {
    const s = await spec()
    const labs = [new BrokerRegistration(s), new BrokerRegistration(s), new BrokerRegistration(s)]
    cleanup.push(() => labs.forEach((l) => l.release()))
    await Promise.all(labs.map((l) => l.acquire()))
    const pid = labs[0]!.brokerPid!
    expect(labs.map((l) => l.brokerPid)).toEqual([pid, pid, pid])
    expect(pid).not.toBe(process.pid)
    for (const port of s.ports) expect(portHolder(port)?.pid).toBe(pid)

    labs[0]!.release()
    labs[1]!.release()
    // Several idle periods pass with one lab still registered: the broker and its ports stay.
    await new Promise((r) => setTimeout(r, s.idleMs * 4))
    expect(alive(pid)).toBe(true)
    expect(portHolder(s.ports[0]!)?.pid).toBe(pid)

    labs[2]!.release()
    await waitFor('the broker to leave after its last lab', () => !alive(pid) && s.ports.every((p) => portHolder(p) === undefined))
    // The next lab starts a new one.
    const next = new BrokerRegistration(s)
    cleanup.push(() => next.release())
    await next.acquire()
    expect(next.brokerPid).not.toBe(pid)
    expect(portHolder(s.ports[1]!)?.pid).toBe(next.brokerPid)
  })

  it('a lab arriving while the broker leaves (1 ms idle, 12 rounds) gets a broker that holds the ports until it goes', async () => {
    const s = { ...(await spec(1)), idleMs: 1 }
    const brokers = new Set<number>()
    for (let i = 0; i < 12; i++) {
      const a = new BrokerRegistration(s)
      const b = new BrokerRegistration(s)
      cleanup.push(() => (a.release(), b.release()))
      await a.acquire()
      a.release() // its broker starts to leave…
      await b.acquire() // …as the next lab registers: before, during or after the exit
      await new Promise((r) => setTimeout(r, 20)) // many idle periods
      expect(alive(b.brokerPid!)).toBe(true)
      expect(portHolder(s.ports[0]!)?.pid).toBe(b.brokerPid)
      brokers.add(b.brokerPid!)
      const pid = b.brokerPid!
      b.release()
      await waitFor('the broker to leave', () => !alive(pid))
    }
    expect(brokers.size).toBe(12)
  })

  it('a broker killed while labs are registered is replaced, and the ports are served again', async () => {
    const s = await spec()
    const lab = new BrokerRegistration(s)
    cleanup.push(() => lab.release())
    await lab.acquire()
    const first = lab.brokerPid!
    process.kill(first, 'SIGKILL')
    const second = await waitFor('a new broker', () => (lab.brokerPid !== first ? lab.brokerPid : undefined))
    expect(second).toBeGreaterThan(0)
    expect(alive(second!)).toBe(true)
    expect(portHolder(s.ports[0]!)?.pid).toBe(second)
  })

  it('a port held by something that is not a lab broker fails the registration with its pid and command', async () => {
    const s = await spec(1)
    const squatter: Server = await new Promise((resolve) => {
      const srv = createServer().listen({ host: '127.0.0.1', port: s.ports[0]! }, () => resolve(srv))
    })
    cleanup.push(() => squatter.close())
    const err = await register(s).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(LoopbackBrokerError)
    expect((err as Error).message).toMatch(new RegExp(`^127\\.0\\.0\\.1:${s.ports[0]} is in use by pid ${process.pid} \\(.*node.*\\), not by a kupgrade lab's loopback broker$`))
    expect((err as LoopbackBrokerError).hint).toContain('unshare -n')
  })
})
