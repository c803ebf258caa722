import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { probeIsolation } from '../../src/lab/node/index.js'
import type { ForwardEvent } from '../../src/lab/node/types.js'
import { SshPool } from '../../src/transport/ssh/pool.js'
import type { NodeTarget } from '../../src/transport/types.js'
import { startLabFleet, type LabFleet } from '../facts/helpers/lab-fleet.js'
import { available } from '../helpers/required.js'

/** ProxyJump through a lab node, as through a real bastion: kupgrade's pool, and OpenSSH's `ssh -J` for comparison. */
const isolation = available(await probeIsolation().then(() => true, () => false), 'lab node isolation (mount namespaces)', 'run as root, or enable unprivileged user namespaces')
const NET = '127.0.88'

describe.skipIf(!isolation)('transport/ssh ProxyJump through a lab bastion node', () => {
  let fleet: LabFleet
  let pool: SshPool
  const forwards: ForwardEvent[] = []
  const target = (i: number, o: Partial<NodeTarget> = {}) => fleet.target(i, o)

  beforeAll(async () => {
    fleet = await startLabFleet(2, (i) => ({ address: `${NET}.${i + 1}` }))
    fleet.nodes[0]!.on('forward', (e: ForwardEvent) => forwards.push(e))
    pool = new SshPool({ sshConfigFile: null, env: {}, home: fleet.dir })
  }, 60_000)
  afterAll(async () => {
    await pool?.close()
    await fleet?.stop()
  })

  it('reaches node-1 through node-0: the bastion forwards to the target, the command runs on the target', async () => {
    const r = await pool.read(target(1, { proxyJump: `root@${NET}.1:2222` }), ['hostname'])
    expect(r.stdout.trim()).toBe('node-1')
    expect(forwards).toContainEqual({ host: `${NET}.2`, port: 2222, accepted: true })
  })

  it('a bastion refuses a forward anywhere but loopback, and the pool reports it without trying the host directly', async () => {
    const before = forwards.length
    // 192.0.2.0/24 is TEST-NET-1: never routed. The bastion refuses it before any packet leaves this machine.
    const err = await pool.read(target(1, { host: '192.0.2.10', proxyJump: `root@${NET}.1:2222` }), ['true']).catch((e: Error) => e)
    expect(err).toBeInstanceOf(Error)
    // The pool retries its connect; every attempt went through the bastion, and the bastion refused each.
    const tried = forwards.slice(before)
    expect(tried.length).toBeGreaterThan(0)
    expect(new Set(tried.map((f) => JSON.stringify(f)))).toEqual(new Set([JSON.stringify({ host: '192.0.2.10', port: 2222, accepted: false })]))
  })

  it.runIf(available(existsSync('/usr/bin/ssh'), 'OpenSSH ssh client', 'apt-get install -y openssh-client'))('OpenSSH `ssh -J` through the same bastion works with strict host keys', async () => {
    // Command-line -i/-o do not reach the jump host's connection; a config file applies to both hops.
    const config = join(fleet.dir, 'ssh_config')
    writeFileSync(config, `Host *\n  User root\n  Port 2222\n  IdentityFile ${fleet.keyFile}\n  UserKnownHostsFile ${fleet.knownHosts}\n  StrictHostKeyChecking yes\n  BatchMode yes\n`)
    // Asynchronously: the lab nodes answer from this very process, so a blocking spawn would deadlock.
    const { stdout } = await promisify(execFile)('ssh', ['-F', config, '-J', `${NET}.1`, `${NET}.2`, 'hostname'], { encoding: 'utf8', timeout: 20_000 })
    expect(stdout.trim()).toBe('node-1')
  })
})
