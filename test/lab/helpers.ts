import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { Lab } from '../../src/lab/lab.js'
import type { NodeFactory } from '../../src/lab/node-runtime.js'
import { normalizeTopology, type TopologyInput } from '../../src/lab/topology.js'

/** Shared by the lab tests: a pinned kubectl, small topologies on per-file loopback ranges, an HTTPS client. */

/** KUPGRADE_KUBECTL, else the pinned 1.32 from the SDK (not the /usr/bin/kubectl dispatcher), else kubectl on PATH. */
export const KUBECTL = process.env.KUPGRADE_KUBECTL
  ?? (existsSync('/usr/lib/google-cloud-sdk/bin/kubectl.1.32') ? '/usr/lib/google-cloud-sdk/bin/kubectl.1.32' : 'kubectl')

/** A small lab topology whose API servers listen on `${net}.1..` and nodes on `${net}.101..` (one /24 per test file). */
export function smallTopology(net: string, over: { distribution?: 'k3s' | 'k0s' | 'kubeadm'; pdb?: { minAvailable?: number | string; maxUnavailable?: number }; replicas?: number; workers?: number } = {}): TopologyInput {
  const workers = over.workers ?? 2
  return {
    apiVersion: 'kupgrade.dev/v1alpha1',
    kind: 'LabTopology',
    metadata: { name: 'test' },
    spec: {
      mirror: ['v1.29.6', 'v1.30.4'],
      timing: { serviceRestart: '100ms', readyDelay: '200ms', reboot: '300ms', drainEvictionDelay: '100ms' },
      clusters: [{
        name: 'lab',
        distribution: over.distribution ?? 'kubeadm',
        version: 'v1.29.6',
        apiAddress: `${net}.1`,
        nodes: [
          { name: 'cp-1', role: 'control-plane', address: `${net}.101`, sshPort: 2222 },
          ...Array.from({ length: workers }, (_, i) => ({ name: `w-${i + 1}`, role: 'worker' as const, address: `${net}.${111 + i}`, sshPort: 2222 })),
        ],
        workloads: {
          deployments: [{ name: 'web', namespace: 'default', replicas: over.replicas ?? 2, requests: { cpu: '500m', memory: '256Mi' }, ...(over.pdb ? { pdb: over.pdb } : {}) }],
          daemonSets: [],
          coredns: { replicas: 1 },
        },
      }],
    },
  }
}

/** A kubeadm cluster `ha` of three stacked-etcd control-plane nodes cp-1…cp-3 at NET.101-103, its API at NET.1. */
export function kubeadmHaTopology(net: string, name: string): { topology: TopologyInput; cps: { name: string; address: string }[] } {
  const cps = [1, 2, 3].map((i) => ({ name: `cp-${i}`, address: `${net}.${100 + i}` }))
  return {
    cps,
    topology: {
      apiVersion: 'kupgrade.dev/v1alpha1', kind: 'LabTopology', metadata: { name },
      spec: {
        mirror: ['v1.29.6', 'v1.30.4'],
        timing: { serviceRestart: '200ms', readyDelay: '200ms', reboot: '500ms', drainEvictionDelay: '100ms', podStartDelay: '200ms' },
        clusters: [{
          name: 'ha', distribution: 'kubeadm', version: 'v1.29.6', apiAddress: `${net}.1`,
          nodes: cps.map((c) => ({ name: c.name, role: 'control-plane' as const, address: c.address, os: 'debian-12' as const })),
          workloads: { coredns: { replicas: 0 } },
        }],
      },
    },
  }
}

export interface TestLab {
  lab: Lab
  dir: string
  kubectl: (args: string[], opts?: { reject?: boolean }) => Promise<{ stdout: string; stderr: string; exitCode: number }>
  https: (path: string, opts?: { method?: string; body?: unknown; token?: string; headers?: Record<string, string> }) => Promise<{ status: number; body: string; headers: Record<string, unknown> }>
  stop: () => Promise<void>
}

export async function startLab(topology: TopologyInput, opts: { nodeFactory?: NodeFactory } = {}): Promise<TestLab> {
  const dir = await mkdtemp(join(tmpdir(), 'kupgrade-lab-test-'))
  const lab = new Lab({ topology: normalizeTopology(topology), dir, nodes: opts.nodeFactory !== undefined, nodeFactory: opts.nodeFactory })
  await lab.start()
  const cluster = [...lab.clusters.values()][0]!
  const cacheDir = join(dir, 'kube-cache') // each test lab its own discovery cache (lab findings)
  return {
    lab,
    dir,
    kubectl: async (args, o = {}) => {
      const r = await execa(KUBECTL, ['--kubeconfig', join(dir, 'kubeconfig'), '--context', cluster.topology.name, '--cache-dir', cacheDir, '--request-timeout', '20s', ...args], { reject: o.reject ?? true, timeout: 60_000, env: { HOME: dir } })
      return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 }
    },
    https: (path, o = {}) => new Promise((resolve, reject) => {
      const data = o.body === undefined ? undefined : JSON.stringify(o.body)
      const req = request(`${cluster.api.url}${path}`, {
        method: o.method ?? 'GET', ca: lab.ca.certPem, timeout: 20_000,
        // Content-Length, not chunked: Node sends a DELETE body unframed otherwise, and the server never sees it.
        headers: { Authorization: `Bearer ${o.token ?? lab.token}`, ...(data ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(data)) } : {}), ...o.headers },
      }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }))
        res.on('error', reject) // the server reset the connection mid-response
      })
      req.on('timeout', () => req.destroy(new Error('request timed out')))
      req.on('error', reject)
      if (data) req.write(data)
      req.end()
    }),
    stop: async () => {
      await lab.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** Polls `check` until it returns a value, at most `ms` (a bounded wait, never a timed assertion). */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, ms = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v as T
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/**
 * Real OpenSSH into the lab's nodes, host keys checked against the lab's known_hosts: `ssh` returns the result,
 * `ok` expects exit 0 and returns stdout.
 */
export function openSsh(lab: () => Pick<TestLab, 'dir'>) {
  const ssh = async (address: string, command: string, input?: Buffer) => {
    const dir = lab().dir
    const r = await execa('ssh', [
      '-i', join(dir, 'id_ed25519'), '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes',
      '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-p', '2222', `root@${address}`, command,
    ], { reject: false, timeout: 60_000, ...(input ? { input } : {}) })
    return { code: r.exitCode, out: r.stdout, err: r.stderr }
  }
  const ok = async (address: string, command: string) => {
    const r = await ssh(address, command)
    if (r.code !== 0) throw new Error(`${command}: exit ${r.code}: ${r.err}`)
    return r.out
  }
  return { ssh, ok }
}

/** Real kubectl against one of the lab's clusters (its own discovery cache per context), never throwing. */
export const labKubectl = (lab: () => Pick<TestLab, 'dir'>, context: string) => (args: string[]) =>
  execa(KUBECTL, ['--kubeconfig', join(lab().dir, 'kubeconfig'), '--context', context, '--cache-dir', join(lab().dir, `cache-${context}`), '--request-timeout', '5s', ...args], { reject: false, env: { HOME: lab().dir }, timeout: 30_000 })
