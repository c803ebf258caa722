import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import ssh2 from 'ssh2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hasRealEtcd } from '../../src/lab/node/index.js'
import { k3sEtcdMemberName } from '../../src/lab/node/etcd-sim.js'
import { startLab, type TestLab } from './helpers.js'
import { labNodeFactory } from '../../src/lab/node-runtime.js'
import { available } from '../helpers/required.js'

/** `etcd: real`: the lab starts one etcd member per control-plane node and the nodes' etcdctl talks to it. */
const etcd = available(await hasRealEtcd(), 'etcd and etcdctl', 'apt-get install -y etcd-server etcd-client')

/** Runs one command on a lab node over SSH with the lab's key, checking the host key against known_hosts. */
async function sshExec(dir: string, host: string, command: string): Promise<{ stdout: string; code: number | null }> {
  const key = await readFile(join(dir, 'id_ed25519'), 'utf8')
  const known = (await readFile(join(dir, 'known_hosts'), 'utf8')).split('\n').find((l) => l.startsWith(`[${host}]:2222 `))!
  const expected = Buffer.from(known.split(' ')[2]!, 'base64')
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client()
    c.on('ready', () => c.exec(command, (err, stream) => {
      if (err) return reject(err)
      let stdout = ''
      stream.on('data', (d: Buffer) => (stdout += d))
      stream.stderr.on('data', () => {})
      stream.on('close', (code: number | null) => {
        c.end()
        resolve({ stdout, code })
      })
    }))
    c.on('error', reject)
    c.connect({ host, port: 2222, username: 'root', privateKey: key, readyTimeout: 20_000, hostVerifier: (k: Buffer) => k.equals(expected) })
  })
}

describe.skipIf(!etcd)('lab with a real etcd', () => {
  let t: TestLab
  beforeAll(async () => {
    t = await startLab({
      apiVersion: 'kupgrade.dev/v1alpha1', kind: 'LabTopology', metadata: { name: 'etcd' },
      spec: {
        mirror: ['v1.29.6', 'v1.30.4'],
        clusters: [{
          name: 'ha', distribution: 'kubeadm', version: 'v1.29.6', etcd: 'real', apiAddress: '127.0.37.1',
          nodes: ['cp-1', 'cp-2', 'cp-3'].map((name, i) => ({ name, role: 'control-plane' as const, address: `127.0.37.${101 + i}` })),
        }, {
          name: 'edge', distribution: 'k3s', version: 'v1.29.6', etcd: 'real', apiAddress: '127.0.37.2',
          nodes: [{ name: 'srv', role: 'control-plane' as const, address: '127.0.37.111' }],
        }],
      },
    }, { nodeFactory: labNodeFactory })
  })
  afterAll(async () => t?.stop())

  it('etcdctl on a control-plane node reaches the three real members', async () => {
    const r = await sshExec(t.dir, '127.0.37.101', 'etcdctl member list -w json')
    expect(r.code).toBe(0)
    // Member IDs are uint64: read the names only (lab findings: JSON.parse loses their precision).
    const names = [...r.stdout.matchAll(/"name":"([^"]+)"/g)].map((m) => m[1]).sort()
    expect(names).toEqual(['cp-1', 'cp-2', 'cp-3'])
  })

  it("a k3s server's member is named after its node and 8 hex digits, as k3s names it (pkg/etcd setName), and as the simulated etcd does", async () => {
    const r = await sshExec(t.dir, '127.0.37.111', 'etcdctl member list -w json')
    expect(r.code).toBe(0)
    const names = [...r.stdout.matchAll(/"name":"([^"]+)"/g)].map((m) => m[1])
    expect(names).toEqual([k3sEtcdMemberName('edge', 'srv')])
    expect(names[0]).toMatch(/^srv-[0-9a-f]{8}$/)
  })
})
