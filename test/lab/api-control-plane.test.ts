import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { labNodeFactory } from '../../src/lab/node-runtime.js'
import type { TopologyInput } from '../../src/lab/topology.js'
import { eventually, KUBECTL, startLab, type TestLab } from './helpers.js'

/**
 * The API follows the control plane, and Node status follows the kubelet with the node lifecycle controller's timing
 * (issue 7 items 2 and 6). Real SSH nodes, driven with real OpenSSH; the API read with real kubectl.
 */
const K3S = '127.0.56'
const KUBEADM = '127.0.57'
const K0S = '127.0.58'

function topology(): TopologyInput {
  const node = (net: string, name: string, role: 'control-plane' | 'worker', i: number) => ({ name, role, address: `${net}.${100 + i}` })
  return {
    apiVersion: 'kupgrade.dev/v1alpha1', kind: 'LabTopology', metadata: { name: 'cp' },
    spec: {
      mirror: ['v1.29.6', 'v1.30.4'],
      timing: { serviceRestart: '300ms', readyDelay: '200ms', reboot: '500ms', drainEvictionDelay: '100ms', nodeMonitorGracePeriod: '8s', podStartDelay: '200ms' },
      clusters: [
        { name: 'k3s', distribution: 'k3s', version: 'v1.29.6', apiAddress: `${K3S}.1`, nodes: [node(K3S, 'server-1', 'control-plane', 1), node(K3S, 'agent-1', 'worker', 2)], workloads: { coredns: { replicas: 0 } } },
        {
          name: 'kubeadm', distribution: 'kubeadm', version: 'v1.29.6', apiAddress: `${KUBEADM}.1`,
          nodes: [node(KUBEADM, 'cp-1', 'control-plane', 1), node(KUBEADM, 'cp-2', 'control-plane', 2), node(KUBEADM, 'w-1', 'worker', 3)], workloads: { coredns: { replicas: 0 } },
        },
        { name: 'k0s', distribution: 'k0s', version: 'v1.29.6', apiAddress: `${K0S}.1`, nodes: [node(K0S, 'ctl-1', 'control-plane', 1), node(K0S, 'ctl-2', 'control-plane', 2)], workloads: { coredns: { replicas: 0 } } },
      ],
    },
  }
}

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

describe('the API follows the control plane; Node status follows the kubelet (real nodes, OpenSSH, kubectl)', () => {
  let t: TestLab
  const ssh = async (address: string, command: string, opts: { mayDrop?: boolean } = {}) => {
    const r = await execa('ssh', [
      '-i', join(t.dir, 'id_ed25519'), '-o', `UserKnownHostsFile=${join(t.dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes',
      '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-p', '2222', `root@${address}`, command,
    ], { reject: false, timeout: 30_000 })
    // A reboot may take the session down with it (exit 255), as on a real host.
    if (!opts.mayDrop) expect(r.exitCode, `${command}: ${r.stderr}`).toBe(0)
    return r.stdout
  }
  const kubectl = (context: string, args: string[]) =>
    execa(KUBECTL, ['--kubeconfig', join(t.dir, 'kubeconfig'), '--context', context, '--cache-dir', join(t.dir, `cache-${context}`), '--request-timeout', '5s', ...args], { reject: false, env: { HOME: t.dir }, timeout: 30_000 })
  const refused = async (context: string) => {
    const r = await kubectl(context, ['get', 'nodes'])
    // kubectl: "The connection to the server ADDR:6443 was refused - did you specify the right host or port?"
    return r.exitCode !== 0 && /The connection to the server \S+ was refused/.test(r.stderr)
  }
  const serves = async (context: string) => (await kubectl(context, ['get', 'nodes'])).exitCode === 0
  const node = async (context: string, name: string) => JSON.parse((await kubectl(context, ['get', 'node', name, '-o', 'json'])).stdout) as Obj
  const ready = (n: Obj) => (n.status.conditions as Obj[]).find((c) => c.type === 'Ready')!

  beforeAll(async () => {
    t = await startLab(topology(), { nodeFactory: labNodeFactory })
  }, 120_000)
  afterAll(async () => t?.stop())

  it('k3s: stopping k3s on the only server makes the API address refuse connections; starting it brings the API back', async () => {
    expect(await serves('k3s')).toBe(true)
    await ssh(`${K3S}.101`, 'systemctl stop k3s')
    expect(await refused('k3s')).toBe(true)
    await ssh(`${K3S}.101`, 'systemctl start k3s')
    await eventually(() => serves('k3s').then((ok) => ok || undefined), 15_000, 'the k3s API back')
  })

  it('k3s: a restart drops the connections served by that server; clients reconnect once it runs again', async () => {
    // A long watch (60 s) is open on the server's apiserver when k3s restarts: the connection goes with it.
    let ended = false
    const watch = t.https('/api/v1/nodes?watch=1&timeoutSeconds=60').catch((err: Error) => ({ status: 0, body: err.message, headers: {} }))
    await new Promise((r) => setTimeout(r, 300))
    void watch.then(() => (ended = true))
    // startLab's https helper talks to the first cluster: k3s.
    await ssh(`${K3S}.101`, 'systemctl restart k3s')
    await eventually(() => ended || undefined, 15_000, 'the watch connection dropped by the restart')
    await eventually(() => serves('k3s').then((ok) => ok || undefined), 15_000, 'the k3s API back after the restart')
  })

  it('kubeadm HA: the API stays up while one control-plane node serves; Endpoints list the serving ones; none serving refuses', async () => {
    const endpoints = async () => JSON.parse((await kubectl('kubeadm', ['get', 'endpoints', 'kubernetes', '-o', 'json'])).stdout).subsets[0].addresses.map((a: Obj) => a.ip)
    expect(await endpoints()).toEqual([`${KUBEADM}.101`, `${KUBEADM}.102`])
    await ssh(`${KUBEADM}.101`, 'systemctl stop kubelet')
    expect(await serves('kubeadm')).toBe(true)
    expect(await endpoints()).toEqual([`${KUBEADM}.102`])
    await ssh(`${KUBEADM}.102`, 'systemctl stop kubelet')
    expect(await refused('kubeadm')).toBe(true)
    await ssh(`${KUBEADM}.102`, 'systemctl start kubelet')
    await eventually(() => serves('kubeadm').then((ok) => ok || undefined), 15_000, 'the kubeadm API back')
    await ssh(`${KUBEADM}.101`, 'systemctl start kubelet')
    await eventually(async () => ((await endpoints()).length === 2) || undefined, 15_000, 'both apiservers in the Endpoints')
  })

  it('k0s: stopping every controller makes the API refuse connections; one controller is enough to serve', async () => {
    await ssh(`${K0S}.101`, 'systemctl stop k0scontroller')
    expect(await serves('k0s')).toBe(true)
    await ssh(`${K0S}.102`, 'systemctl stop k0scontroller')
    expect(await refused('k0s')).toBe(true)
    await ssh(`${K0S}.101`, 'systemctl start k0scontroller')
    await eventually(() => serves('k0s').then((ok) => ok || undefined), 15_000, 'the k0s API back')
    await ssh(`${K0S}.102`, 'systemctl start k0scontroller')
  })

  it('a stopped kubelet leaves the Node Ready until the node-monitor grace period has passed, then Unknown', async () => {
    await ssh(`${KUBEADM}.103`, 'systemctl stop kubelet')
    const during = await node('kubeadm', 'w-1')
    expect(ready(during).status).toBe('True') // the grace period (8s here, ample for one kubectl call) has not passed yet
    const frozen = ready(during).lastHeartbeatTime
    const after = await eventually(async () => {
      const n = await node('kubeadm', 'w-1')
      return ready(n).status === 'Unknown' ? n : undefined
    }, 30_000, 'w-1 Ready=Unknown')
    expect(ready(after)).toMatchObject({ reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.', lastHeartbeatTime: frozen })
    expect(after.spec.taints).toContainEqual({ key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule' })
    await ssh(`${KUBEADM}.103`, 'systemctl start kubelet')
    await eventually(async () => ready(await node('kubeadm', 'w-1')).status === 'True' || undefined, 15_000, 'w-1 Ready again')
  })

  it('after a reboot the Node reports a new boot ID, and the new kernel an OS update staged', async () => {
    const before = (await node('kubeadm', 'w-1')).status.nodeInfo as Obj
    expect(before.kernelVersion).toBe(await ssh(`${KUBEADM}.103`, 'uname -r'))
    // The kubelet reports the machine's boot id (the one a client reads over SSH), before and after the reboot.
    expect(before.bootID).toBe(await ssh(`${KUBEADM}.103`, 'cat /proc/sys/kernel/random/boot_id'))
    await ssh(`${KUBEADM}.103`, 'apt-get upgrade -y >/dev/null')
    await ssh(`${KUBEADM}.103`, 'reboot', { mayDrop: true })
    const after = await eventually(async () => {
      const n = await node('kubeadm', 'w-1')
      return n.status.nodeInfo.bootID !== before.bootID && ready(n).status === 'True' ? n : undefined
    }, 30_000, 'w-1 back from its reboot')
    expect(after.status.nodeInfo.kernelVersion).not.toBe(before.kernelVersion)
    expect(after.status.nodeInfo.kernelVersion).toBe(await ssh(`${KUBEADM}.103`, 'uname -r'))
    expect(after.status.nodeInfo.bootID).toBe(await ssh(`${KUBEADM}.103`, 'cat /proc/sys/kernel/random/boot_id'))
  })
})
