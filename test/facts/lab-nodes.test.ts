import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RemoteCommandError } from '../../src/errors.js'
import { readHostFacts } from '../../src/facts/host-facts.js'
import { probeIsolation } from '../../src/lab/node/index.js'
import type { Distribution } from '../../src/plan/versions.js'
import { SshPool } from '../../src/transport/ssh/pool.js'
import type { NodeTarget } from '../../src/transport/types.js'
import { HOSTILE } from '../transport/helpers/hostile.js'
import { startLabFleet, VERSION, type LabFleet } from './helpers/lab-fleet.js'
import { available } from '../helpers/required.js'

const LAB_IPTABLES = existsSync(join(import.meta.dirname, '../../src/lab/node/standins/bin/iptables'))
const N = Number(process.env.KUPGRADE_LAB_NODES ?? 100)
const isolation = available(await probeIsolation().then(() => true, () => false), 'lab node isolation (mount namespaces: unshare -m, or user namespaces)', 'run as root, or enable unprivileged user namespaces')

describe.skipIf(!isolation)(`facts over SSH from ${N} lab nodes`, () => {
  let fleet: LabFleet
  let pool: SshPool
  const target = (i: number, o: Partial<NodeTarget> = {}) => fleet.target(i, o)

  beforeAll(async () => {
    fleet = await startLabFleet(N)
    pool = new SshPool({ sshConfigFile: null, env: {}, home: fleet.dir })
  }, 180_000)
  afterAll(async () => {
    await pool?.close()
    await fleet?.stop()
  })

  it('reads every node in one round trip each, concurrently, matching what each node was built with', async () => {
    // A real node runs its facts script on its own CPUs within the 30 s default; here all N lab nodes share this
    // machine's (about 0.3 s of bash stand-ins each, beside the other test files), so the budget grows with N.
    const timeoutMs = Math.max(30_000, N * 1_500)
    const facts = await Promise.all(fleet.nodes.map((n, i) => readHostFacts(pool, target(i), n.options.distribution as Distribution, { timeoutMs })))
    facts.forEach((f, i) => {
      const o = fleet.nodes[i]!.options
      expect(f.installedVersion, o.name).toBe(VERSION[o.distribution])
      expect(f.os?.id, o.name).toBe({ 'ubuntu-22.04': 'ubuntu', 'debian-12': 'debian', 'rocky-9': 'rocky', flatcar: 'flatcar' }[o.os])
      // The lab's iptables stand-in is still being written; until it lands the node has none to ask.
      if (LAB_IPTABLES) expect(f.iptablesBackend, o.name).toBe(o.iptablesBackend)
      expect(f.disk[0]?.totalBytes, o.name).toBe(o.disk.totalBytes)
      expect(f.disk[0]?.usedBytes, o.name).toBe(o.disk.usedBytes)
      expect(f.packageManager, o.name).toBe({ 'ubuntu-22.04': 'apt', 'debian-12': 'apt', 'rocky-9': 'dnf', flatcar: 'flatcar' }[o.os])
      expect(Object.values(f.services), o.name).toContain('active')
      expect(f.kernel, o.name).toBeTruthy()
    })
  }, Math.max(120_000, N * 1_500 + 30_000))

  it('runs sudo -n through the lab sudo, and names node and command when the right is missing', async () => {
    const allowed = await pool.mutate(target(0, { user: 'ops', sudo: true }), 'whoami as root', ['id', '-u'])
    expect(allowed.stdout.trim()).toBe('0')
    const err = await pool.mutate(target(1, { user: 'ops', sudo: true }), 'restart', ['systemctl', 'restart', 'kubelet']).catch((e) => e)
    expect(err).toBeInstanceOf(RemoteCommandError)
    expect(err.message).toContain(`${fleet.nodes[1]!.options.cluster}/node-1`)
    expect(err.message).toContain('systemctl restart kubelet')
    expect(err.hint).toMatch(/ops may not run this through sudo without a password on node-1/)
  })

  it('passes hostile strings through the lab node shell literally', async () => {
    const r = await pool.read(target(2), ['printf', '%s\\0', ...HOSTILE])
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(HOSTILE)
  })

  it('retries a read cut by the ssh-drop fault, and reports (not repeats) a cut mutation', async () => {
    const node = fleet.nodes[3]!
    node.setFault('ssh-drop', true, { afterMs: 50 })
    const r = await pool.read(target(3), ['sh', '-c', 'sleep 0.5; echo read-done'])
    expect(r.stdout).toBe('read-done\n')
    expect(r.retries).toBeGreaterThanOrEqual(1)
    node.setFault('ssh-drop', true, { afterMs: 50 })
    const err = await pool.mutate(target(3), 'slow change', ['sh', '-c', 'sleep 0.5; echo x >> /tmp/kupgrade-mutation-count']).catch((e) => e)
    expect(err).toBeInstanceOf(RemoteCommandError)
    expect(err.hint).toMatch(/connection lost while running "slow change" on node-3; it may or may not have completed/)
  })
})
