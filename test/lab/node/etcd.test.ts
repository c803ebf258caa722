import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hasRealEtcd, startEtcdCluster, type EtcdCluster } from '../../../src/lab/node/index.js'
import { sshExec, startNode, type TestNode } from './helpers.js'

// Runs where Debian's etcd-server/etcd-client are installed; CI sets KUPGRADE_REQUIRE_INTEROP=1 so a missing etcd fails.
const available = await hasRealEtcd()
const required = process.env['KUPGRADE_REQUIRE_INTEROP'] === '1'

describe.runIf(available || required)('real etcd behind an HA control plane', () => {
  let etcd: EtcdCluster
  let dir: string
  const nodes: TestNode[] = []
  const quoteIds = (s: string) => s.replace(/:(\d{16,})/g, ':"$1"') // uint64 ids lose precision in JSON.parse

  beforeAll(async () => {
    if (!available) throw new Error('KUPGRADE_REQUIRE_INTEROP=1 but etcd/etcdctl are not on PATH (apt-get install -y etcd-server etcd-client)')
    dir = mkdtempSync(join(tmpdir(), 'kupgrade-etcd-'))
    const names = ['cp-1', 'cp-2', 'cp-3']
    etcd = await startEtcdCluster({ dir, names, portOffset: process.pid % 50 * 30 })
    for (const name of names)
      nodes.push(await startNode({ name, distribution: 'kubeadm', version: 'v1.30.4', mirror: ['v1.30.4'], etcdEndpoints: etcd.endpointsFor(name) }))
  })
  afterAll(async () => {
    for (const n of nodes) await n.cleanup()
    await etcd?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('etcdctl on each node reaches its own real member, with kubeadm-style TLS flags ignored', async () => {
    const flags = '--endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key'
    const leaders = new Set<string>()
    for (const [i, n] of nodes.entries()) {
      const h = await sshExec(n.node, `ETCDCTL_API=3 etcdctl ${flags} endpoint health -w json`)
      expect(h.code).toBe(0)
      expect(JSON.parse(h.stdout)).toEqual([{ endpoint: etcd.members[i]!.clientUrl, health: true, took: expect.any(String) }])
      const s = await sshExec(n.node, `etcdctl ${flags} endpoint status -w json`)
      const [st] = JSON.parse(quoteIds(s.stdout)) as [{ Status: { leader: string; header: { member_id: string }; dbSize: number } }]
      leaders.add(st.Status.leader)
      expect(st.Status.dbSize).toBeGreaterThan(0)
    }
    expect(leaders.size).toBe(1) // every member agrees on one leader
    const members = JSON.parse(quoteIds((await sshExec(nodes[0]!.node, 'etcdctl member list -w json')).stdout)) as { members: { name: string }[] }
    expect(members.members.map((m) => m.name).sort()).toEqual(['cp-1', 'cp-2', 'cp-3'])
  })

  it('snapshot save writes a real snapshot file on the node', async () => {
    const r = await sshExec(nodes[0]!.node, 'mkdir -p /var/lib/etcd-backup && etcdctl snapshot save /var/lib/etcd-backup/s.db && etcdctl snapshot status /var/lib/etcd-backup/s.db -w json')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/Snapshot saved at \/var\/lib\/etcd-backup\/s\.db\n\{"hash":\d+,"revision":\d+,"totalKey":\d+,"totalSize":\d+\}\n$/)
  })

  it('a stopped member shows as unhealthy on its node', async () => {
    await etcd.stopMember('cp-3')
    const r = await sshExec(nodes[2]!.node, 'etcdctl --command-timeout=2s endpoint health -w json')
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ endpoint: etcd.members[2]!.clientUrl, health: false })])
    expect(r.stderr).toContain('Error: unhealthy cluster')
  })
})
