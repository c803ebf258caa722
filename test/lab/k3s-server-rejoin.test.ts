import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { labNodeFactory } from '../../src/lab/node-runtime.js'
import type { TopologyInput } from '../../src/lab/topology.js'
import { eventually, labKubectl, openSsh, startLab, type TestLab } from './helpers.js'

/**
 * k3s servers of an embedded-etcd cluster in the lab, as k3s treats a server that comes back on an empty datastore
 * (docs.k3s.io "High Availability Embedded etcd"; k3s pkg/etcd join), driven with real OpenSSH and real kubectl:
 *  - installed as upstream documents: the first with --cluster-init, the others with --server <first> and the token;
 *  - reinstalled while the cluster still lists its etcd member, a server is refused with k3s's "duplicate node name
 *    found" (k3s-io/k3s#4025) until `kubectl delete node` removed the member; then it joins and its Node is Ready;
 *  - a wrong token is refused, and so is a server whose critical flags (--cluster-cidr …) differ from the cluster's;
 *  - the first server reinstalled as it was (--cluster-init, nothing to join) starts an etcd cluster of its own: its
 *    unit is active, but its Node never comes back to this cluster.
 */
const NET = '127.0.150'
const S = [1, 2, 3].map((i) => `${NET}.10${i}`)
const RELEASE = 'v1.30.9+k3s1'

function topology(): TopologyInput {
  return {
    apiVersion: 'kupgrade.dev/v1alpha1', kind: 'LabTopology', metadata: { name: 'k3s-ha' },
    spec: {
      mirror: ['v1.30.9'],
      timing: { serviceRestart: '200ms', readyDelay: '200ms', reboot: '500ms', drainEvictionDelay: '100ms', podStartDelay: '200ms' },
      clusters: [{
        name: 'ha', distribution: 'k3s', version: 'v1.30.9', apiAddress: `${NET}.1`,
        nodes: [
          ...S.map((address, i) => ({ name: `server-${i + 1}`, role: 'control-plane' as const, address })),
          { name: 'agent-1', role: 'worker' as const, address: `${NET}.110` },
        ],
        workloads: { coredns: { replicas: 0 } },
      }],
    },
  }
}

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
const words = (unit: string): string => unit.slice(unit.indexOf('ExecStart=')).split('\n\n')[0]!.replace(/\\\n\s*/g, '').replace(/'/g, '')

describe('k3s servers leaving and rejoining embedded etcd in the lab (real OpenSSH, real kubectl)', () => {
  let t: TestLab
  const { ssh, ok } = openSsh(() => t)
  const kubectl = labKubectl(() => t, 'ha')
  const readyAt = (name: string) =>
    eventually(async () => {
      const r = await kubectl(['get', 'node', name, '-o', 'json']).catch(() => undefined)
      if (!r || r.exitCode !== 0) return undefined
      const n = JSON.parse(r.stdout) as Obj
      const ready = (n.status.conditions as Obj[]).find((c) => c.type === 'Ready')!.status
      return ready === 'True' ? n : undefined
    }, 15_000, `${name} Ready`)
  const install = (address: string, env: string, args: string) =>
    ssh(address, `curl -sfL https://get.k3s.io | ${env} INSTALL_K3S_VERSION=${RELEASE} sh -s - server ${args}`)
  const journal = (address: string) => ok(address, 'journalctl -u k3s --no-pager -n 20')

  beforeAll(async () => {
    t = await startLab(topology(), { nodeFactory: labNodeFactory })
  }, 120_000)
  afterAll(async () => t?.stop())

  it('servers are installed as upstream documents: the first with --cluster-init, the others join it with the token', async () => {
    expect(words(await ok(S[0]!, 'cat /etc/systemd/system/k3s.service'))).toBe('ExecStart=/usr/local/bin/k3s server --cluster-init ')
    expect(words(await ok(S[1]!, 'cat /etc/systemd/system/k3s.service'))).toBe(`ExecStart=/usr/local/bin/k3s server --server https://${S[0]}:6443 `)
    const token = (await ok(S[0]!, 'cat /var/lib/rancher/k3s/server/token')).trim()
    expect(token).toMatch(/^K10[0-9a-f]{64}::server:[0-9a-f]{32}$/)
    expect(await ok(S[1]!, 'cat /etc/systemd/system/k3s.service.env')).toBe(`K3S_TOKEN='${token}'`)
    // k3s names a member <node>-<8 hex> and keeps the name with its data.
    expect(await ok(S[1]!, 'cat /var/lib/rancher/k3s/server/db/etcd/name')).toMatch(/^server-2-[0-9a-f]{8}$/)
  })

  it('a reinstalled server is refused as a duplicate until its Node (and so its etcd member) is deleted; then it joins', async () => {
    const token = (await ok(S[0]!, 'cat /var/lib/rancher/k3s/server/token')).trim()
    await ok(S[1]!, 'k3s-uninstall.sh')
    const refused = await install(S[1]!, `K3S_TOKEN='${token}'`, `--server https://${S[0]}:6443`)
    expect(refused.code).not.toBe(0)
    expect(refused.err).toContain('Job for k3s.service failed')
    expect(await journal(S[1]!)).toContain('level=fatal msg="etcd cluster join failed: duplicate node name found, please use a unique name for this node"')
    expect((await ssh(S[1]!, 'systemctl is-active k3s')).out).toBe('failed')
    // Retrying alone changes nothing: the member is still listed.
    expect((await ssh(S[1]!, 'systemctl start k3s')).code).not.toBe(0)

    expect((await kubectl(['delete', 'node', 'server-2'])).stdout).toBe('node "server-2" deleted')
    await ok(S[1]!, 'systemctl start k3s')
    expect(await journal(S[1]!)).toMatch(new RegExp(`msg="Adding member server-2-[0-9a-f]{8}=https://${S[1]!.replace(/\./g, '\\.')}:2380 to etcd cluster"`))
    expect(await ok(S[1]!, 'cat /var/lib/rancher/k3s/server/db/etcd/name')).toMatch(/^server-2-[0-9a-f]{8}$/)
    await readyAt('server-2')
  })

  it('a server joining with a wrong token is refused', async () => {
    await ok(S[2]!, 'k3s-uninstall.sh')
    expect((await kubectl(['delete', 'node', 'server-3'])).exitCode).toBe(0)
    const wrong = await install(S[2]!, "K3S_TOKEN='K10feed::server:not-the-password'", `--server https://${S[0]}:6443`)
    expect(wrong.code).not.toBe(0)
    expect(await journal(S[2]!)).toContain('level=fatal msg="starting kubernetes: preparing server: failed to validate token: token is not valid')
    const token = (await ok(S[0]!, 'cat /var/lib/rancher/k3s/server/token')).trim()
    expect((await install(S[2]!, `K3S_TOKEN='${token}'`, `--server https://${S[0]}:6443`)).code).toBe(0)
    await readyAt('server-3')
  })

  it('a server joining with a critical flag the cluster does not have is refused; installed like the others, it joins', async () => {
    await ok(S[2]!, 'k3s-uninstall.sh')
    expect((await kubectl(['delete', 'node', 'server-3'])).exitCode).toBe(0)
    const token = (await ok(S[0]!, 'cat /var/lib/rancher/k3s/server/token')).trim()
    const odd = await install(S[2]!, `K3S_TOKEN='${token}'`, `--server https://${S[0]}:6443 --cluster-cidr 10.99.0.0/16`)
    expect(odd.code).not.toBe(0)
    expect(await journal(S[2]!)).toContain('level=fatal msg="failed to validate server configuration: critical configuration value mismatch between servers"')
    expect((await ssh(S[2]!, 'systemctl is-active k3s')).out).toBe('failed')
    // A flag outside the critical set (its own node label) is no mismatch.
    expect((await install(S[2]!, `K3S_TOKEN='${token}'`, `--server https://${S[0]}:6443 --node-label rack=b`)).code).toBe(0)
    await readyAt('server-3')
  })

  it('the first server reinstalled as it was (--cluster-init, nothing to join) starts a cluster of its own and never comes back', async () => {
    await ok(S[0]!, 'k3s-uninstall.sh')
    expect((await kubectl(['delete', 'node', 'server-1'])).exitCode).toBe(0)
    expect((await install(S[0]!, '', '--cluster-init')).code).toBe(0)
    expect((await ssh(S[0]!, 'systemctl is-active k3s')).out).toBe('active')
    expect(await journal(S[0]!)).toContain('msg="Starting etcd for new cluster, cluster-reset=false"')
    // Its kubelet registers with its own cluster: here the Node stays gone while agent-1, restarted meanwhile, registers again.
    await ok(`${NET}.110`, 'systemctl restart k3s-agent')
    await readyAt('agent-1')
    await new Promise((r) => setTimeout(r, 1000))
    const gone = await kubectl(['get', 'node', 'server-1'])
    expect(gone.exitCode).toBe(1)
    expect(gone.stderr).toContain('nodes "server-1" not found')

    // Done as documented (uninstall, join a serving server with the token), it rejoins.
    await ok(S[0]!, 'k3s-uninstall.sh')
    const token = (await ok(S[1]!, 'cat /var/lib/rancher/k3s/server/token')).trim()
    expect((await install(S[0]!, `K3S_TOKEN='${token}'`, `--server https://${S[1]}:6443`)).code).toBe(0)
    await readyAt('server-1')
  })
})
