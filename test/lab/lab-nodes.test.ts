import { EventEmitter } from 'node:events'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { NodeRuntime } from '../../src/lab/node-runtime.js'
import type { LabNodeOptions, LabNodeState } from '../../src/lab/node/types.js'
import { eventually, smallTopology, startLab, type TestLab } from './helpers.js'

/**
 * The control side's half of the node contract, with recording nodes in place of the SSH nodes: node events drive
 * the Node objects, faults reach the right nodes, armed faults fire on their event, and the lab's files name every node.
 */
class RecordingNode extends EventEmitter implements NodeRuntime {
  faults: { fault: string; on: boolean; params?: Record<string, unknown> }[] = []
  started = false
  constructor(readonly o: LabNodeOptions) {
    super()
  }
  get hostKeyPublic() {
    return `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${this.o.name.replace(/[^a-z0-9]/g, '')}`
  }
  async start() {
    this.started = true
  }
  async stop() {
    this.started = false
  }
  setFault(fault: string, on: boolean, params?: Record<string, unknown>) {
    this.faults.push({ fault, on, ...(params ? { params } : {}) })
  }
  getState(): LabNodeState {
    return { installedVersion: this.o.version, runningVersion: this.o.version, serviceActive: true, rebooting: false, notReady: false }
  }
}

describe('lab nodes: events, fault routing, files', () => {
  let t: TestLab
  const nodes = new Map<string, RecordingNode>()
  const node = (name: string) => nodes.get(name)!
  const ready = async (name: string) => {
    const n = JSON.parse((await t.https(`/api/v1/nodes/${name}`)).body) as { status: { conditions: { type: string; status: string }[]; nodeInfo: { kubeletVersion: string } } }
    return { ready: n.status.conditions.find((c) => c.type === 'Ready')!.status, version: n.status.nodeInfo.kubeletVersion }
  }
  beforeAll(async () => {
    t = await startLab(smallTopology('127.0.32', { distribution: 'k3s' }), {
      nodeFactory: (o) => {
        const n = new RecordingNode(o)
        nodes.set(o.name, n)
        return n
      },
    })
  })
  afterAll(async () => t?.stop())

  it('creates every node with the contract options and starts it', () => {
    expect([...nodes.keys()]).toEqual(['cp-1', 'w-1', 'w-2'])
    expect(node('w-1').started).toBe(true)
    expect(node('w-1').o).toMatchObject({ cluster: 'lab', role: 'worker', distribution: 'k3s', address: '127.0.32.111', port: 2222, version: 'v1.29.6+k3s1', mirror: ['v1.29.6+k3s1', 'v1.30.4+k3s1'], apiEndpoint: 'https://127.0.32.1:6443' })
    expect(node('w-1').o.authorizedKeys[0]!.toString()).toMatch(/^ssh-ed25519 /)
  })

  it('gives control-plane nodes (only) an admin kubeconfig for their own cluster, as admin.conf / k3s.yaml are on real nodes', () => {
    const admin = node('cp-1').o.adminKubeconfig
    expect(admin).toMatch(/server: https:\/\/127\.0\.32\.1:6443/)
    expect(admin).toMatch(/client-certificate-data: /)
    expect(node('w-1').o.adminKubeconfig).toBeUndefined()
  })

  it('a service stop makes the node Unknown after the grace period; a start reports the new version, then Ready after the delay', async () => {
    node('w-2').emit('service', { service: 'k3s-agent', state: 'stopped', version: 'v1.29.6+k3s1' })
    await eventually(async () => (await ready('w-2')).ready === 'Unknown' || undefined, 10_000, 'w-2 Unknown after the node-monitor grace period')
    expect(await ready('w-2')).toEqual({ ready: 'Unknown', version: 'v1.29.6+k3s1' })
    node('w-2').emit('service', { service: 'k3s-agent', state: 'started', version: 'v1.30.4+k3s1' })
    expect(await ready('w-2')).toEqual({ ready: 'False', version: 'v1.30.4+k3s1' })
    await eventually(async () => (await ready('w-2')).ready === 'True' || undefined, 10_000, 'w-2 Ready')
  })

  it('a reboot takes the node down until its service starts again', async () => {
    node('w-1').emit('reboot', { phase: 'down' })
    await eventually(async () => (await ready('w-1')).ready === 'Unknown' || undefined, 10_000, 'w-1 Unknown while it reboots')
    node('w-1').emit('reboot', { phase: 'up' })
    node('w-1').emit('service', { service: 'k3s-agent', state: 'started', version: 'v1.29.6+k3s1' })
    await eventually(async () => (await ready('w-1')).ready === 'True' || undefined, 10_000, 'w-1 Ready after reboot')
  })

  it('routes node-side faults: one node, every node, control-plane nodes only; api-vip from pods stays cluster-side', () => {
    for (const n of nodes.values()) n.faults = []
    t.lab.setFault({ fault: 'upgrade-command-fails', cluster: 'lab', node: 'w-1' }, true)
    expect(node('w-1').faults).toEqual([{ fault: 'upgrade-command-fails', on: true }])
    expect(node('w-2').faults).toEqual([])
    t.lab.setFault({ fault: 'etcd-db-near-quota', cluster: 'lab' }, true)
    expect(node('cp-1').faults).toContainEqual({ fault: 'etcd-db-near-quota', on: true })
    expect(node('w-2').faults).toEqual([])
    t.lab.setFault({ fault: 'ssh-drop', cluster: 'lab', params: { after: 1 } }, true)
    expect([...nodes.values()].every((n) => n.faults.some((f) => f.fault === 'ssh-drop' && f.on && f.params?.after === 1))).toBe(true)
    t.lab.setFault({ fault: 'api-vip-unreachable', cluster: 'lab' }, true)
    expect([...nodes.values()].some((n) => n.faults.some((f) => f.fault === 'api-vip-unreachable'))).toBe(false)
    t.lab.setFault({ fault: 'api-vip-unreachable', cluster: 'lab', node: 'w-2' }, true)
    expect(node('w-2').faults).toContainEqual({ fault: 'api-vip-unreachable', on: true })
    expect(t.lab.clearFault({ fault: 'upgrade-command-fails', cluster: 'lab', node: 'w-1' })).toBe(true)
    expect(node('w-1').faults.at(-1)).toEqual({ fault: 'upgrade-command-fails', on: false })
    for (const f of ['etcd-db-near-quota', 'ssh-drop', 'api-vip-unreachable'] as const) t.lab.clearFault({ fault: f, cluster: 'lab' })
    t.lab.clearFault({ fault: 'api-vip-unreachable', cluster: 'lab', node: 'w-2' })
    expect(t.lab.status().clusters[0]!.faults).toEqual([])
  })

  it('rejects faults on unknown clusters and nodes', () => {
    expect(() => t.lab.setFault({ fault: 'disk-full', cluster: 'nope' }, true)).toThrow(/no cluster "nope"/)
    expect(() => t.lab.setFault({ fault: 'disk-full', cluster: 'lab', node: 'w-9' }, true)).toThrow(/no node "w-9"/)
  })

  it('an armed fault switches on when its node is upgraded, not before', () => {
    t.lab.armed.push({ spec: { fault: 'kube-proxy-sync-failure', cluster: 'lab', node: 'w-2' }, after: 'node-upgraded', node: 'cp-1' })
    node('cp-1').emit('service', { service: 'k3s', state: 'started', version: 'v1.29.6+k3s1' }) // a restart, not an upgrade
    expect(node('w-2').faults.some((f) => f.fault === 'kube-proxy-sync-failure')).toBe(false)
    node('cp-1').emit('service', { service: 'k3s', state: 'started', version: 'v1.30.4+k3s1' })
    expect(node('w-2').faults).toContainEqual({ fault: 'kube-proxy-sync-failure', on: true })
    expect(t.lab.armed).toEqual([])
    expect(t.lab.status().clusters[0]!.faults).toEqual([{ fault: 'kube-proxy-sync-failure', cluster: 'lab', node: 'w-2' }])
  })

  it('writes known_hosts, kubeconfig contexts, the key pair and a plan naming every node', async () => {
    const known = await readFile(join(t.dir, 'known_hosts'), 'utf8')
    expect(known.trim().split('\n')).toEqual([
      '[127.0.32.101]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIcp1',
      '[127.0.32.111]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIw1',
      '[127.0.32.112]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIw2',
    ])
    expect(await readFile(join(t.dir, 'id_ed25519'), 'utf8')).toContain('BEGIN OPENSSH PRIVATE KEY')
    expect(await readFile(join(t.dir, 'kubeconfig'), 'utf8')).toContain('current-context: lab')
    const plan = await readFile(join(t.dir, 'plan.yaml'), 'utf8')
    for (const host of ['127.0.32.101', '127.0.32.111', '127.0.32.112']) expect(plan).toContain(`host: ${host}`)
    expect(plan).toContain('identityFile: ./id_ed25519')
  })
})
