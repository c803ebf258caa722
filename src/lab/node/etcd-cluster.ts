import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/**
 * A real etcd cluster on loopback for an HA control plane (Debian `etcd-server`; lab-findings: three members start
 * healthy in about a second). Member i listens for clients on port 23790+offset+i, peers on 23800+…, metrics on
 * 23810+…; plain HTTP, since the node's etcdctl stand-in drops the TLS flags kubeadm-style commands carry.
 */
export interface EtcdMember {
  name: string
  clientUrl: string
  peerUrl: string
  process: ChildProcess
}

export interface EtcdCluster {
  members: EtcdMember[]
  /** Client URLs with `name`'s own member first: what a LabNode's `etcdEndpoints` takes. */
  endpointsFor: (name: string) => string[]
  /** Kills one member (SIGKILL), as a crashed control-plane node would leave it. */
  stopMember: (name: string) => Promise<void>
  stop: () => Promise<void>
}

export interface EtcdClusterOptions {
  dir: string
  names: string[]
  /** The member's etcd name for a node (`--name`); default the node's name. k3s adds 8 hex digits. */
  memberName?: (node: string) => string
  host?: string
  /** Added to the base ports so several clusters (or test files) can run at once. */
  portOffset?: number
  etcdBinary?: string
  etcdctlBinary?: string
  /** Bound on waiting for every member to report healthy. */
  timeoutMs?: number
}

export async function hasRealEtcd(): Promise<boolean> {
  try {
    await run('/bin/sh', ['-c', 'command -v etcd && command -v etcdctl'])
    return true
  } catch {
    return false
  }
}

const stopped = (p: ChildProcess) =>
  new Promise<void>((resolve) => (p.exitCode !== null || p.signalCode !== null ? resolve() : p.once('exit', () => resolve())))

export async function startEtcdCluster(o: EtcdClusterOptions): Promise<EtcdCluster> {
  const host = o.host ?? '127.0.0.1'
  if (!/^127\./.test(host)) throw new Error(`lab etcd: loopback only, got ${host}`)
  const off = o.portOffset ?? 0
  const specs = o.names.map((name, i) => ({
    name,
    clientUrl: `http://${host}:${23791 + off + i}`,
    peerUrl: `http://${host}:${23801 + off + i}`,
    metricsUrl: `http://${host}:${23811 + off + i}`,
  }))
  const etcdName = o.memberName ?? ((n: string) => n)
  const initial = specs.map((s) => `${etcdName(s.name)}=${s.peerUrl}`).join(',')
  const members: EtcdMember[] = specs.map((s) => {
    const dataDir = join(o.dir, s.name)
    mkdirSync(dataDir, { recursive: true })
    const p = spawn(o.etcdBinary ?? 'etcd', [
      '--name', etcdName(s.name), '--data-dir', dataDir,
      '--listen-client-urls', s.clientUrl, '--advertise-client-urls', s.clientUrl,
      '--listen-peer-urls', s.peerUrl, '--initial-advertise-peer-urls', s.peerUrl,
      '--listen-metrics-urls', s.metricsUrl,
      '--initial-cluster', initial, '--initial-cluster-token', `kupgrade-lab-${off}`, '--initial-cluster-state', 'new',
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    let log = ''
    p.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)))
    Object.defineProperty(p, 'labLog', { get: () => log })
    return { name: s.name, clientUrl: s.clientUrl, peerUrl: s.peerUrl, process: p }
  })
  const cluster: EtcdCluster = {
    members,
    endpointsFor: (name) => [...members.filter((m) => m.name === name), ...members.filter((m) => m.name !== name)].map((m) => m.clientUrl),
    stopMember: async (name) => {
      const m = members.find((x) => x.name === name)
      if (!m) throw new Error(`lab etcd: no member ${name}`)
      m.process.kill('SIGKILL')
      await stopped(m.process)
    },
    stop: async () => {
      for (const m of members) m.process.kill('SIGKILL')
      await Promise.all(members.map((m) => stopped(m.process)))
    },
  }
  const end = Date.now() + (o.timeoutMs ?? 20_000)
  for (;;) {
    const exited = members.find((m) => m.process.exitCode !== null)
    if (exited) {
      await cluster.stop()
      throw new Error(`lab etcd: member ${exited.name} exited: ${(exited.process as unknown as { labLog: string }).labLog.trim().split('\n').slice(-3).join(' | ')}`)
    }
    try {
      await run(o.etcdctlBinary ?? 'etcdctl', ['--endpoints', members.map((m) => m.clientUrl).join(','), 'endpoint', 'health'], { timeout: 5000, env: { ...process.env, ETCDCTL_API: '3' } })
      return cluster
    } catch {
      if (Date.now() > end) {
        await cluster.stop()
        throw new Error(`lab etcd: members not healthy within ${o.timeoutMs ?? 20_000} ms`)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}
