import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sshExec, startNode, type TestNode } from './helpers.js'

const quoteIds = (s: string) => s.replace(/:(\d{16,})/g, ':"$1"') // uint64 ids lose precision in JSON.parse (lab findings)
type Status = { Endpoint: string; Status: { leader: string; dbSize: number; header: { member_id: string } } }

// Three k0s controllers sharing one simulated etcd: every control-plane node a member, one leader, health seen
// from any member.
describe('the simulated etcd of an HA control plane', () => {
  const names = ['cp-1', 'cp-2', 'cp-3']
  const addresses = ['127.0.64.1', '127.0.64.2', '127.0.64.3']
  const nodes: TestNode[] = []
  let shared: string
  beforeAll(async () => {
    shared = mkdtempSync(join(tmpdir(), 'kupgrade-etcd-sim-'))
    const members = names.map((name, i) => ({ name, address: addresses[i]! }))
    for (const [i, name] of names.entries())
      nodes.push(await startNode({ name, address: addresses[i]!, distribution: 'k0s', version: 'v1.30.4+k0s.0', mirror: ['v1.30.4+k0s.0'], etcdCluster: { dir: shared, members } }))
  })
  afterAll(async () => {
    for (const n of nodes) await n.cleanup()
    if (shared) rmSync(shared, { recursive: true, force: true })
  })

  it('every member lists all three; every member names the same leader', async () => {
    const list = await sshExec(nodes[1]!.node, 'etcdctl member list -w json; k0s etcd member-list')
    const [json, k0s] = list.stdout.trim().split('\n')
    expect((JSON.parse(quoteIds(json!)) as { members: { name: string }[] }).members.map((m) => m.name)).toEqual(names)
    expect(JSON.parse(k0s!)).toEqual({ members: Object.fromEntries(names.map((n, i) => [n, `https://${addresses[i]}:2380`])) })
    const leaders = new Set<string>()
    for (const n of nodes) {
      const st = JSON.parse(quoteIds((await sshExec(n.node, 'etcdctl endpoint status --cluster -w json')).stdout)) as Status[]
      expect(st.map((s) => s.Endpoint)).toEqual(addresses.map((a) => `https://${a}:2379`))
      for (const s of st) leaders.add(s.Status.leader)
    }
    expect(leaders.size).toBe(1)
  })

  it('etcd-unhealthy on one member fails `endpoint health --cluster` from any member; the leader moves', async () => {
    const healthy = await sshExec(nodes[2]!.node, 'etcdctl endpoint health --cluster')
    expect(healthy.code).toBe(0)
    nodes[0]!.node.setFault('etcd-unhealthy', true, { hangMs: 50 })
    try {
      for (const n of nodes.slice(1)) {
        const r = await sshExec(n.node, 'etcdctl endpoint health --cluster')
        expect(r.code).toBe(1)
        expect(r.stderr).toBe(`https://${addresses[0]}:2379 is unhealthy: failed to commit proposal: context deadline exceeded\nError: unhealthy cluster\n`)
        expect(r.stdout.split('\n').filter(Boolean).map((l) => l.split(' ')[0])).toEqual([`https://${addresses[1]}:2379`, `https://${addresses[2]}:2379`])
      }
      const st = JSON.parse(quoteIds((await sshExec(nodes[2]!.node, 'etcdctl endpoint status --cluster -w json')).stdout)) as Status[]
      expect(st).toHaveLength(2)
      expect(st[0]!.Status.leader).toBe(st[0]!.Status.header.member_id) // cp-2 leads now
      // The sick member itself cannot even fetch the member list.
      const self = await sshExec(nodes[0]!.node, 'etcdctl endpoint health --cluster')
      expect(self.code).toBe(1)
      expect(self.stderr).toMatch(/Error: context deadline exceeded\n$/)
    } finally {
      nodes[0]!.node.setFault('etcd-unhealthy', false)
    }
  })

  it('etcd metrics on 127.0.0.1:2381 (real sockets): has_leader and the db size etcdctl reports', async () => {
    const r = await sshExec(nodes[1]!.node, '/usr/bin/curl -s http://127.0.0.1:2381/metrics | grep -v "^#"; etcdctl endpoint status -w json')
    expect(r.stdout).toMatch(/^etcd_server_has_leader 1\netcd_server_is_leader 0\netcd_mvcc_db_total_size_in_bytes (\d+)\n/)
    const size = Number(/etcd_mvcc_db_total_size_in_bytes (\d+)/.exec(r.stdout)![1])
    const st = JSON.parse(quoteIds(r.stdout.trim().split('\n').at(-1)!)) as Status[]
    expect(st[0]!.Status.dbSize).toBe(size)
    nodes[1]!.node.setFault('etcd-unhealthy', true, { hangMs: 50 })
    try {
      expect((await sshExec(nodes[1]!.node, '/usr/bin/curl -s http://127.0.0.1:2381/metrics | grep has_leader | grep -v "^#"')).stdout).toBe('etcd_server_has_leader 0\n')
    } finally {
      nodes[1]!.node.setFault('etcd-unhealthy', false)
    }
  })
})
