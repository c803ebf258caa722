import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { labNodeFactory } from '../../src/lab/node-runtime.js'
import type { TopologyInput } from '../../src/lab/topology.js'
import { runCli } from '../helpers/run-cli.js'
import { eventually, KUBECTL, labKubectl, openSsh, startLab, type TestLab } from './helpers.js'

/**
 * A k3s server on SQLite (topology `datastore: sqlite`: the real default of a lone server installed without
 * --cluster-init), driven with real OpenSSH and real kubectl: kine's state.db and no etcd anywhere (no db/etcd, no
 * etcd role label, nothing on 2379/2381, `k3s etcd-snapshot` refused with k3s's own words), the database grows while
 * k3s runs, and the datastore's version marker lives in state.db, so the documented SQLite backup (a copy of
 * server/db) put back after an upgrade brings the old release up again where the old binary alone does not start.
 * And `kupgrade check`'s etcd gate on that server: the SQLite evidence passes, a full disk fails naming the node.
 */
const NET = '127.0.136'
const SERVER = `${NET}.101`
const AGENT = `${NET}.102`
const DB = '/var/lib/rancher/k3s/server/db'

function topology(): TopologyInput {
  return {
    apiVersion: 'kupgrade.dev/v1alpha1', kind: 'LabTopology', metadata: { name: 'sqlite' },
    spec: {
      mirror: ['v1.30.9', 'v1.31.5'],
      timing: { serviceRestart: '200ms', readyDelay: '200ms', reboot: '500ms', drainEvictionDelay: '100ms', podStartDelay: '200ms' },
      clusters: [{
        name: 'sq', distribution: 'k3s', datastore: 'sqlite', version: 'v1.30.9', apiAddress: `${NET}.1`,
        nodes: [{ name: 'server-1', role: 'control-plane', address: SERVER }, { name: 'agent-1', role: 'worker', address: AGENT }],
        workloads: { coredns: { replicas: 0 } },
      }],
    },
  }
}

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

describe('k3s on SQLite in the lab (real OpenSSH, real kubectl)', () => {
  let t: TestLab
  const { ssh, ok } = openSsh(() => t)
  const kubectl = labKubectl(() => t, 'sq')
  const node = async (name: string) => JSON.parse((await kubectl(['get', 'node', name, '-o', 'json'])).stdout) as Obj
  const readyAt = (name: string, version: string) =>
    eventually(async () => {
      const n = await node(name)
      const ready = (n.status.conditions as Obj[]).find((c) => c.type === 'Ready')!.status
      return ready === 'True' && n.status.nodeInfo.kubeletVersion === version ? n : undefined
    }, 15_000, `${name} Ready at ${version}`)
  const size = async () => Number(await ok(SERVER, `stat -c %s ${DB}/state.db`))

  beforeAll(async () => {
    t = await startLab(topology(), { nodeFactory: labNodeFactory })
  }, 120_000)
  afterAll(async () => t?.stop())

  it('the server keeps its data in state.db: no --cluster-init, no db/etcd, WAL files while k3s runs', async () => {
    const unit = await ok(SERVER, 'cat /etc/systemd/system/k3s.service')
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/k3s server/m)
    expect(unit).not.toContain('--cluster-init')
    expect(await ok(SERVER, `head -c 15 ${DB}/state.db`)).toBe('SQLite format 3')
    expect((await ssh(SERVER, `test -d ${DB}/etcd`)).code).toBe(1)
    // k3s runs from the start, with the database open: its WAL and shared-memory index are beside it.
    expect(await ok(SERVER, `ls ${DB}`)).toMatch(/state\.db\nstate\.db-shm\nstate\.db-wal/)

    // k3s restarted: kine writes (the file grows) and holds the WAL open; stopped, the WAL is checkpointed away.
    const before = await size()
    await ok(SERVER, 'systemctl restart k3s')
    expect(await size()).toBeGreaterThan(before)
    expect(await ok(SERVER, `ls ${DB}`)).toMatch(/state\.db-shm\nstate\.db-wal/)
    await ok(SERVER, 'systemctl stop k3s')
    expect(await ok(SERVER, `ls ${DB}`)).not.toContain('state.db-wal')
    await ok(SERVER, 'systemctl start k3s')
    await readyAt('server-1', 'v1.30.9+k3s1')
  })

  it('no etcd: the Node has no etcd role, nothing serves 2381, etcdctl finds no member, etcd-snapshot refuses as k3s does', async () => {
    const labels = (await node('server-1')).metadata.labels as Record<string, string>
    expect(labels['node-role.kubernetes.io/control-plane']).toBe('true')
    expect(labels['node-role.kubernetes.io/master']).toBe('true')
    expect(labels).not.toHaveProperty('node-role.kubernetes.io/etcd')
    const wide = (await kubectl(['get', 'nodes', '--no-headers'])).stdout
    expect(wide).toMatch(/^server-1\s+Ready\s+control-plane,master\s/m)

    // Nothing serves etcd's metrics: the lab's loopback broker resets the connection (curl 56; a real node refuses, 7),
    // where an embedded-etcd server answers (test/lab/node tests).
    const metrics = await ssh(SERVER, 'curl -sS --max-time 3 http://127.0.0.1:2381/metrics')
    expect(metrics.code).toBe(56)
    expect(metrics.out).toBe('')
    const health = await ssh(SERVER, 'etcdctl --endpoints=https://127.0.0.1:2379 --dial-timeout=1s --command-timeout=1s endpoint health')
    expect(health.code).toBe(1)
    expect(health.err).toContain('context deadline exceeded')

    // k3s-io/k3s#11388 (v1.30.9 and later): the server refuses, the CLI prints its fatal line.
    const snap = await ssh(SERVER, 'k3s etcd-snapshot save --name pre')
    expect(snap.code).toBe(1)
    expect(snap.err.trim()).toBe('FATA[0000] see server log for details: etcd datastore disabled')
    expect(await ok(SERVER, `ls -A ${DB}/snapshots 2>/dev/null | wc -l`)).toBe('0')
  })

  interface GateResult { gate: string; status: string; summary: string; hint?: string; evidence: { source: string; observed: string }[] }
  const etcdGate = async () => {
    const r = await runCli(['check', join(t.dir, 'plan.yaml'), '--cluster', 'sq', '--gate', 'etcd', '--format', 'json'], { env: { PATH: process.env.PATH, HOME: t.dir, KUPGRADE_KUBECTL: KUBECTL, NO_COLOR: '1' }, cwd: t.dir })
    const results = (JSON.parse(r.out) as { clusters: { results: GateResult[] }[] }).clusters.flatMap((c) => c.results)
    expect(results.map((x) => x.gate), r.out).toEqual(['etcd'])
    return { code: r.code, result: results[0]!, raw: r.out }
  }

  it('etcd gate (kupgrade check): the SQLite datastore and its free disk pass in place of etcdctl', async () => {
    const r = await etcdGate()
    expect(r.code, r.raw).toBe(0)
    expect(r.result.status).toBe('pass')
    // Not "etcd healthy … one leader" (what the gate said on SQLite before the lab ran one).
    expect(r.result.summary).toBe('no etcd: k3s keeps its data in SQLite on server-1, with room for the database to grow')
    const bytes = await size()
    expect(r.result.evidence).toEqual([{
      source: 'node server-1: k3s datastore /var/lib/rancher/k3s/server/db/state.db',
      observed: expect.stringMatching(/^SQLite datastore \(no etcd\): \d+(\.\d+)? KiB, \d+(\.\d+)? GiB free on \/$/),
      status: 'pass',
    }])
    expect(bytes).toBeGreaterThan(60 * 1024)
  })

  it('etcd gate (kupgrade check): no space left next to state.db (disk-full on the server) fails naming the node', async () => {
    t.lab.setFault({ fault: 'disk-full', cluster: 'sq', node: 'server-1' }, true)
    try {
      const r = await etcdGate()
      expect(r.code, r.raw).toBe(3)
      expect(r.result.status).toBe('fail')
      expect(r.result.summary).toContain('server-1: only 0 B free next to the SQLite datastore')
      expect(r.result.hint).toBe('free disk space next to /var/lib/rancher/k3s/server/db/state.db (SQLite grows into it, and the pre-hop backup copies it under /var/lib/kupgrade) before upgrading')
      expect(r.result.evidence[0]!.observed).toMatch(/^SQLite datastore \(no etcd\): .*, 0 B free on \/$/)
    } finally {
      t.lab.setFault({ fault: 'disk-full', cluster: 'sq', node: 'server-1' }, false)
    }
    expect((await etcdGate()).code).toBe(0)
  })

  it('the datastore marker lives in state.db: the old binary alone fails after an upgrade, the copied db/ put back brings v1.30 up', async () => {
    // The documented SQLite backup: a copy of server/db and the token.
    await ok(SERVER, `cp -a ${DB} /root/db-pre && cp -p /var/lib/rancher/k3s/server/token /root/token-pre && cp /usr/local/bin/k3s /root/k3s-v1.30.9`)
    await ok(SERVER, 'curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.31.5+k3s1 sh -')
    await readyAt('server-1', 'v1.31.5+k3s1')
    expect(await ok(SERVER, `sed -n 2p ${DB}/state.db`)).toBe('kupgrade-lab-kine written-by=v1.31.5+k3s1')
    expect(await ok(SERVER, 'sed -n 2p /root/db-pre/state.db')).toBe('kupgrade-lab-kine written-by=v1.30.9+k3s1')

    const down = await ssh(SERVER, 'systemctl stop k3s && cp /root/k3s-v1.30.9 /usr/local/bin/k3s && systemctl start k3s')
    expect(down.code).toBe(1)
    expect(down.err).toContain('Job for k3s.service failed because the control process exited with error code.')
    const journal = await ok(SERVER, 'journalctl -u k3s --no-pager | tail -n 4')
    expect(journal).toContain('level=fatal msg="apiserver exited: the datastore was written by Kubernetes v1.31.5 and cannot be read by v1.30.9: downgrading the control plane is not supported; put back the copy of /var/lib/rancher/k3s/server/db (and the token) taken before the upgrade"')
    // --cluster-reset is etcd's restore: on SQLite the lab refuses rather than invent one.
    const reset = await ssh(SERVER, 'k3s server --cluster-reset')
    expect(reset.code).toBe(1)
    expect(reset.err).toContain('is not simulated')

    await ok(SERVER, `systemctl stop k3s; rm -rf ${DB} && cp -a /root/db-pre ${DB} && cp -p /root/token-pre /var/lib/rancher/k3s/server/token && systemctl start k3s`)
    expect(await ok(SERVER, 'systemctl is-active k3s')).toBe('active')
    await readyAt('server-1', 'v1.30.9+k3s1')
    const api = JSON.parse((await kubectl(['version', '-o', 'json'])).stdout) as Obj
    expect(api.serverVersion.gitVersion).toBe('v1.30.9+k3s1')
  })
})
