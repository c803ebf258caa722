import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { labNodeFactory } from '../../src/lab/node-runtime.js'
import type { TopologyInput } from '../../src/lab/topology.js'
import { eventually, startLab, type TestLab } from './helpers.js'

/**
 * Issue 7 item 15: faults look the same to every tool a real node or pod would use. disk-full: apt-get install and
 * upgrade stop with apt's own "not enough free space" (exit 100), `k3s etcd-snapshot save` with ENOSPC; without the
 * fault both succeed. api-vip-unreachable: the ClusterIP times out for curl and busybox wget alike, in probe pods (the
 * cluster's fault) and on a node (the node's fault); without it both reach the API server.
 */
const NET = '127.0.94'
type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

function topology(): TopologyInput {
  return {
    apiVersion: 'kupgrade.dev/v1alpha1', kind: 'LabTopology', metadata: { name: 'faults' },
    spec: {
      mirror: ['v1.29.6', 'v1.30.4'],
      timing: { serviceRestart: '100ms', readyDelay: '200ms', reboot: '300ms', drainEvictionDelay: '100ms', podStartDelay: '100ms' },
      clusters: [
        {
          name: 'lab', distribution: 'kubeadm', version: 'v1.29.6', apiAddress: `${NET}.1`,
          nodes: [{ name: 'cp-1', role: 'control-plane', address: `${NET}.101`, os: 'debian-12' }, { name: 'w-1', role: 'worker', address: `${NET}.111`, os: 'debian-12' }],
          workloads: { coredns: { replicas: 0 } },
        },
        {
          name: 'k3', distribution: 'k3s', version: 'v1.29.6', apiAddress: `${NET}.2`,
          nodes: [{ name: 'server-1', role: 'control-plane', address: `${NET}.121` }],
          workloads: { coredns: { replicas: 0 } },
        },
      ],
    },
  }
}

describe('faults as every tool sees them (real OpenSSH, real kubectl)', () => {
  let t: TestLab
  const ssh = (host: string, command: string) =>
    execa('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${join(t.dir, 'known_hosts')}`,
      '-o', 'GlobalKnownHostsFile=/dev/null', '-i', join(t.dir, 'id_ed25519'), '-p', '2222', `root@${host}`, command], { reject: false, timeout: 60_000 })
  const pod = async (name: string): Promise<Obj> => JSON.parse((await t.kubectl(['get', 'pod', name, '-o', 'json'])).stdout) as Obj
  const finished = (name: string) => eventually(async () => {
    const p = await pod(name)
    return ['Succeeded', 'Failed'].includes(p.status.phase) ? p : undefined
  }, 20_000, `pod ${name} to finish`)
  const logs = async (name: string) => (await t.https(`/api/v1/namespaces/default/pods/${name}/log`)).body
  const probe = async (name: string, image: string, command: string) => {
    await t.kubectl(['run', name, `--image=${image}`, '--restart=Never', '--command', '--', 'sh', '-c', command])
    const p = await finished(name)
    return { phase: p.status.phase as string, exit: p.status.containerStatuses[0].state.terminated.exitCode as number, log: await logs(name) }
  }

  beforeAll(async () => {
    t = await startLab(topology(), { nodeFactory: labNodeFactory })
  }, 90_000)
  afterAll(async () => t?.stop())

  it('disk-full: apt-get upgrade and install fail as apt does; without it they succeed', async () => {
    const w = `${NET}.111`
    const fault = { fault: 'disk-full' as const, cluster: 'lab', node: 'w-1' }
    // The repository switch first: on a full disk even `sed -i` cannot write its temporary file.
    expect((await ssh(w, "sed -i 's|/v1.29/|/v1.30/|' /etc/apt/sources.list.d/kubernetes.list && apt-get update >/dev/null")).exitCode).toBe(0)
    const install = 'apt-get install -y --allow-change-held-packages kubectl=1.30.4-1.1'
    t.lab.setFault(fault, true)
    try {
      for (const cmd of ['apt-get upgrade -y', install]) {
        const r = await ssh(w, cmd)
        expect([r.exitCode, r.stderr.trim().split('\n').at(-1)], cmd).toEqual([100, "E: You don't have enough free space in /var/cache/apt/archives/."])
      }
    } finally {
      t.lab.setFault(fault, false)
    }
    for (const cmd of ['apt-get upgrade -y', install]) expect((await ssh(w, cmd)).exitCode, cmd).toBe(0)
    expect((await ssh(w, 'kubectl version --client -o json')).stdout).toContain('"gitVersion": "v1.30.4"')
  }, 60_000)

  it('disk-full: k3s etcd-snapshot save fails with ENOSPC; without it a snapshot is saved', async () => {
    const s = `${NET}.121`
    const fault = { fault: 'disk-full' as const, cluster: 'k3', node: 'server-1' }
    t.lab.setFault(fault, true)
    try {
      const r = await ssh(s, 'k3s etcd-snapshot save --name full')
      expect(r.exitCode).toBe(1)
      expect(r.stderr).toMatch(/^FATA\[0000\] failed to save snapshot: write \/var\/lib\/rancher\/k3s\/server\/db\/snapshots\/full-server-1-\d+\.part: no space left on device$/)
    } finally {
      t.lab.setFault(fault, false)
    }
    const ok = await ssh(s, 'k3s etcd-snapshot save --name fine && ls /var/lib/rancher/k3s/server/db/snapshots')
    expect(ok.exitCode, ok.stderr).toBe(0)
    expect(ok.stdout).toMatch(/^fine-server-1-\d+$/)
  }, 30_000)

  it('api-vip-unreachable: probe pods with curl and with busybox wget time out on the ClusterIP; without it both reach the API', async () => {
    const curl = 'curl -sSk --connect-timeout 1 https://10.96.0.1:443/readyz'
    const wget = 'wget -q -T 1 -O- https://kubernetes.default.svc/readyz'
    expect(await probe('curl-ok', 'curlimages/curl', curl)).toEqual({ phase: 'Succeeded', exit: 0, log: 'ok' })
    expect(await probe('wget-ok', 'busybox', wget)).toEqual({ phase: 'Succeeded', exit: 0, log: 'ok' })
    const fault = { fault: 'api-vip-unreachable' as const, cluster: 'lab' }
    t.lab.setFault(fault, true)
    try {
      expect(await probe('curl-down', 'curlimages/curl', curl)).toEqual({ phase: 'Failed', exit: 28, log: 'curl: (28) Failed to connect to 10.96.0.1 port 443 after 1000 ms: Timeout was reached\n' })
      expect(await probe('wget-down', 'busybox', wget)).toEqual({ phase: 'Failed', exit: 1, log: 'wget: download timed out\n' })
    } finally {
      t.lab.setFault(fault, false)
    }
  }, 90_000)

  it("api-vip-unreachable on a node: its curl and wget time out on the ClusterIP and the VIP; another node's do not", async () => {
    const cmd = [
      'curl -sSk --max-time 1 https://10.96.0.1/readyz; echo " curl=$?"',
      `wget -q -T 1 -O- https://${NET}.1:6443/readyz; echo " wget=$?"`,
    ].join('; ')
    const fault = { fault: 'api-vip-unreachable' as const, cluster: 'lab', node: 'w-1' }
    t.lab.setFault(fault, true)
    try {
      const down = await ssh(`${NET}.111`, cmd)
      // (execa drops the output's final newline)
      expect(down.stdout).toBe(' curl=28\n wget=1')
      expect(down.stderr).toBe('curl: (28) Connection timed out after 1001 milliseconds\nwget: download timed out')
      expect((await ssh(`${NET}.101`, cmd)).stdout).toBe('ok curl=0\nok wget=0')
    } finally {
      t.lab.setFault(fault, false)
    }
    expect((await ssh(`${NET}.111`, cmd)).stdout).toBe('ok curl=0\nok wget=0')
  }, 60_000)

  it('api-vip-unreachable reaches every program on the node, not only the stand-ins: bash /dev/tcp and the real curl wait as for vanished packets', async () => {
    // The host's real curl (not the stand-in first on PATH) and bash's own sockets, to the VIP and to the ClusterIP.
    const cmd = [
      `timeout 2 bash -c 'exec 3<>/dev/tcp/${NET}.1/6443'; echo "vip=$?"`,
      "timeout 2 bash -c 'exec 3<>/dev/tcp/10.96.0.1/443'; echo \"clusterip=$?\"",
      `/usr/bin/curl -sSk --connect-timeout 1 https://${NET}.1:6443/readyz; echo " curl=$?"`,
    ].join('; ')
    // Without the fault they connect: the ClusterIP is routed to the API server, as kube-proxy's rules do on a node.
    expect((await ssh(`${NET}.111`, cmd)).stdout).toBe('vip=0\nclusterip=0\nok curl=0')
    const fault = { fault: 'api-vip-unreachable' as const, cluster: 'lab', node: 'w-1' }
    t.lab.setFault(fault, true)
    try {
      const down = await ssh(`${NET}.111`, cmd)
      expect(down.stdout).toBe('vip=124\nclusterip=124\n curl=28')
      expect(down.stderr).toMatch(new RegExp(`^curl: \\(28\\) Failed to connect to ${NET.replaceAll('.', '\\.')}\\.1 port 6443 after \\d+ ms: Timeout was reached$`))
      expect((await ssh(`${NET}.101`, cmd)).stdout).toBe('vip=0\nclusterip=0\nok curl=0')
    } finally {
      t.lab.setFault(fault, false)
    }
    expect((await ssh(`${NET}.111`, cmd)).stdout).toBe('vip=0\nclusterip=0\nok curl=0')
  }, 60_000)

  it("api-vip-unreachable from pods: a pod's bash /dev/tcp to the ClusterIP waits; the node's own shell still connects", async () => {
    const tcp = "timeout 2 bash -c 'exec 3<>/dev/tcp/10.96.0.1/443' && echo open"
    expect(await probe('tcp-ok', 'bash', tcp)).toEqual({ phase: 'Succeeded', exit: 0, log: 'open\n' })
    const fault = { fault: 'api-vip-unreachable' as const, cluster: 'lab' }
    t.lab.setFault(fault, true)
    try {
      expect(await probe('tcp-down', 'bash', tcp)).toEqual({ phase: 'Failed', exit: 124, log: '' })
      expect((await ssh(`${NET}.111`, tcp)).stdout).toBe('open')
    } finally {
      t.lab.setFault(fault, false)
    }
  }, 90_000)
})
