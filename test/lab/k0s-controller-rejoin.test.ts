import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { labNodeFactory } from '../../src/lab/node-runtime.js'
import type { TopologyInput } from '../../src/lab/topology.js'
import { eventually, labKubectl, openSsh, startLab, type TestLab } from './helpers.js'

/**
 * k0s controllers of a cluster of three in the lab, as k0s treats a controller that comes back after `k0s reset`
 * (docs.k0sproject.io "Remove or replace a controller"; pkg/token; the join API), driven with real OpenSSH and real
 * kubectl:
 *  - the first controller bootstrapped the cluster, the others joined with a controller token (--token-file);
 *  - a reset controller joining with a fresh controller token is refused while its old etcd member is listed ("Peer
 *    URLs already exists") until `k0s etcd leave --peer-address` on another controller removed it; then it joins, its
 *    PKI is back and its Node is Ready;
 *  - a worker token is no controller token;
 *  - a controller that kept its data is refused once its member is gone (k0s etcd leave, or `k0s restore` on another
 *    controller, which starts a new etcd cluster of one);
 *  - started with no token at all, it bootstraps a cluster of its own and never comes back to this one.
 */
const NET = '127.0.152'
const C = [1, 2, 3].map((i) => `${NET}.10${i}`)

function topology(): TopologyInput {
  return {
    apiVersion: 'kupgrade.dev/v1alpha1', kind: 'LabTopology', metadata: { name: 'k0s-ha' },
    spec: {
      mirror: ['v1.30.4'],
      timing: { serviceRestart: '200ms', readyDelay: '200ms', reboot: '500ms', drainEvictionDelay: '100ms', podStartDelay: '200ms' },
      clusters: [{
        name: 'kc', distribution: 'k0s', version: 'v1.30.4', apiAddress: `${NET}.1`,
        nodes: [
          ...C.map((address, i) => ({ name: `controller-${i + 1}`, role: 'control-plane' as const, address, enableWorker: true })),
          { name: 'worker-1', role: 'worker' as const, address: `${NET}.110` },
        ],
        workloads: { coredns: { replicas: 0 } },
      }],
    },
  }
}

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

describe('k0s controllers leaving and rejoining etcd in the lab (real OpenSSH, real kubectl)', () => {
  let t: TestLab
  const { ssh, ok } = openSsh(() => t)
  const kubectl = labKubectl(() => t, 'kc')
  const readyAt = (name: string) =>
    eventually(async () => {
      const r = await kubectl(['get', 'node', name, '-o', 'json'])
      if (r.exitCode !== 0) return undefined
      const n = JSON.parse(r.stdout) as Obj
      return (n.status.conditions as Obj[]).find((c) => c.type === 'Ready')!.status === 'True' ? n : undefined
    }, 15_000, `${name} Ready`)
  const members = async (address: string) => Object.keys((JSON.parse(await ok(address, 'k0s etcd member-list')) as { members: Record<string, string> }).members).sort()
  const journal = (address: string) => ok(address, 'journalctl -u k0scontroller --no-pager -n 20')
  /** k0s reset on it, then `k0s install controller` with the token (if any) and `k0s start`. */
  const reinstall = async (address: string, token: string | undefined) => {
    await ok(address, 'k0s stop && k0s reset')
    if (token !== undefined) await ssh(address, 'mkdir -p /etc/k0s && umask 077 && cat > /etc/k0s/k0stoken', Buffer.from(token))
    await ok(address, `k0s install controller --enable-worker${token !== undefined ? ' --token-file /etc/k0s/k0stoken' : ''}`)
    return ssh(address, 'k0s start')
  }

  beforeAll(async () => {
    t = await startLab(topology(), { nodeFactory: labNodeFactory })
  }, 120_000)
  afterAll(async () => t?.stop())

  it('the first controller bootstrapped the cluster; the others joined with a controller token', async () => {
    expect(await ok(C[0]!, 'grep ^ExecStart= /etc/systemd/system/k0scontroller.service')).toBe('ExecStart=/usr/local/bin/k0s controller --config=/etc/k0s/k0s.yaml --enable-worker')
    expect(await ok(C[1]!, 'grep ^ExecStart= /etc/systemd/system/k0scontroller.service')).toBe('ExecStart=/usr/local/bin/k0s controller --config=/etc/k0s/k0s.yaml --token-file=/etc/k0s/k0stoken --enable-worker')
    expect(await members(C[0]!)).toEqual(['controller-1', 'controller-2', 'controller-3'])
  })

  it('a reset controller is refused while its etcd member is listed; after k0s etcd leave it joins again', async () => {
    const token = (await ok(C[0]!, 'k0s token create --role=controller --expiry=1h')).trim()
    const refused = await reinstall(C[1]!, token)
    expect(refused.code).toBe(0) // k0s start only starts the unit; k0s itself then exits and is restarted
    await eventually(async () => (await journal(C[1]!)).includes(`level=error msg="failed to join the etcd cluster: etcdserver: Peer URLs already exists (https://${C[1]}:2380)"`) || undefined, 10_000, 'the refusal in the journal')
    expect((await ssh(C[1]!, 'systemctl is-active k0scontroller')).out).toBe('activating')
    expect((await ssh(C[1]!, 'test -e /var/lib/k0s/pki/ca.crt')).code).toBe(1)

    // k0s etcd leave needs a running controller; on the reset one it cannot reach etcd.
    expect((await ssh(C[1]!, `k0s etcd leave --peer-address ${C[1]}`)).code).toBe(1)
    await ok(C[0]!, `k0s etcd leave --peer-address ${C[1]}`)
    expect(await members(C[0]!)).toEqual(['controller-1', 'controller-3'])
    await ok(C[1]!, 'systemctl restart k0scontroller')
    expect((await ssh(C[1]!, 'systemctl is-active k0scontroller')).out).toBe('active')
    expect(await members(C[0]!)).toEqual(['controller-1', 'controller-2', 'controller-3'])
    // The cluster's CA again (the join API hands it over), as the first controller has it.
    const ca = 'openssl x509 -noout -fingerprint -sha256 -in /var/lib/k0s/pki/ca.crt'
    expect(await ok(C[1]!, ca)).toBe(await ok(C[0]!, ca))
    await readyAt('controller-2')
  })

  it('a worker token does not join a controller', async () => {
    await ok(C[0]!, `k0s etcd leave --peer-address ${C[2]}`)
    const worker = (await ok(C[0]!, 'k0s token create --role=worker')).trim()
    await reinstall(C[2]!, worker)
    await eventually(async () => (await journal(C[2]!)).includes(`failed to join the cluster: failed to get CA certificates: https://${C[2]}:9443/v1beta1/ca: 401 Unauthorized`) || undefined, 10_000, 'the refusal in the journal')
    const controller = (await ok(C[0]!, 'k0s token create --role=controller')).trim()
    await ssh(C[2]!, 'umask 077 && cat > /etc/k0s/k0stoken', Buffer.from(controller))
    await ok(C[2]!, 'systemctl restart k0scontroller')
    await readyAt('controller-3')
  })

  it('a controller that kept its data does not start once its member left: only a reset and a join bring it back', async () => {
    await ok(C[0]!, `k0s etcd leave --peer-address ${C[1]}`)
    await ok(C[1]!, 'systemctl restart k0scontroller')
    await eventually(async () => (await journal(C[1]!)).includes('level=error msg="failed to start etcd: etcdserver: the member has been permanently removed from the cluster"') || undefined, 10_000, 'the refusal in the journal')
    expect((await ssh(C[1]!, 'systemctl is-active k0scontroller')).out).toBe('activating')
    expect((await ssh(C[1]!, 'k0s status')).code).toBe(1)
    const token = (await ok(C[0]!, 'k0s token create --role=controller')).trim()
    await reinstall(C[1]!, token)
    await readyAt('controller-2')
    expect(await members(C[0]!)).toEqual(['controller-1', 'controller-2', 'controller-3'])
  })

  it('started with no token, a reset controller bootstraps a cluster of its own and never comes back', async () => {
    await ok(C[0]!, `k0s etcd leave --peer-address ${C[2]}`)
    expect((await kubectl(['delete', 'node', 'controller-3'])).exitCode).toBe(0)
    expect((await reinstall(C[2]!, undefined)).code).toBe(0)
    expect((await ssh(C[2]!, 'systemctl is-active k0scontroller')).out).toBe('active')
    await ok(`${NET}.110`, 'k0s stop && k0s start')
    await readyAt('worker-1')
    await new Promise((r) => setTimeout(r, 1000))
    const gone = await kubectl(['get', 'node', 'controller-3'])
    expect(gone.stderr).toContain('nodes "controller-3" not found')
    expect(await members(C[0]!)).toEqual(['controller-1', 'controller-2'])
  })

  it('k0s restore on one controller leaves it the only etcd member; another that kept its data is refused', async () => {
    await ok(C[0]!, 'mkdir -p /root/b && k0s backup --save-path=/root/b')
    await ok(C[0]!, 'k0s stop && k0s reset && k0s restore /root/b/k0s_backup_*.tar.gz && k0s install controller --enable-worker && k0s start')
    expect(await members(C[0]!)).toEqual(['controller-1'])
    await readyAt('controller-1')
    await ok(C[1]!, 'systemctl restart k0scontroller')
    await eventually(async () => (await journal(C[1]!)).includes('the member has been permanently removed from the cluster') || undefined, 10_000, 'the refusal in the journal')
    const token = (await ok(C[0]!, 'k0s token create --role=controller')).trim()
    await reinstall(C[1]!, token)
    await readyAt('controller-2')
    expect(await members(C[0]!)).toEqual(['controller-1', 'controller-2'])
  })
})
