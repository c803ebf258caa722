#!/usr/bin/env node
// Lab benchmark: start 3 clusters × 34 nodes (~100 SSH nodes + 3 HTTPS API servers) in one process, report the time
// until everything listens and the RSS, then time 50 sequential `kubectl get nodes` against one 34-node cluster.
// Runs against dist/ (npm run build first). Standalone: `node bench/lab.mjs`; bench/run.mjs calls it too.
// Prints human lines, then one JSON line (prefix "RESULT ") for machines. Env: KUPGRADE_KUBECTL, BENCH_LAB_NODES.
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { performance } from 'node:perf_hooks'

const root = new URL('..', import.meta.url).pathname
const { Lab } = await import(join(root, 'dist/lab/lab.js'))
const { normalizeTopology } = await import(join(root, 'dist/lab/topology.js'))

const NODES = Number(process.env.BENCH_LAB_NODES ?? 34)
const CALLS = 50
const kubectl = process.env.KUPGRADE_KUBECTL
  ?? (existsSync('/usr/lib/google-cloud-sdk/bin/kubectl.1.32') ? '/usr/lib/google-cloud-sdk/bin/kubectl.1.32' : 'kubectl')

const clusters = ['k3s', 'k0s', 'kubeadm'].map((distribution, c) => ({
  name: `bench-${distribution}`,
  distribution,
  version: 'v1.29.6',
  apiAddress: `127.0.60.${c + 1}`,
  nodes: Array.from({ length: NODES }, (_, i) => ({
    name: i < 3 ? `cp-${i + 1}` : `w-${i - 2}`,
    role: i < 3 ? 'control-plane' : 'worker',
    address: `127.0.${61 + c}.${i + 1}`,
  })),
  workloads: {
    deployments: [{ name: 'web', namespace: 'default', replicas: NODES, requests: { cpu: '100m', memory: '128Mi' }, pdb: { maxUnavailable: 1 } }],
    daemonSets: [{ name: 'node-exporter', namespace: 'monitoring' }],
    coredns: { replicas: 2 },
  },
}))
const topology = normalizeTopology({
  apiVersion: 'kupgrade.dev/v1alpha1', kind: 'LabTopology', metadata: { name: 'bench' },
  spec: { mirror: ['v1.29.6', 'v1.30.4'], clusters },
})

const dir = await mkdtemp(join(tmpdir(), 'kupgrade-bench-lab-'))
const lab = new Lab({ topology, dir, log: (l) => process.stderr.write(`${l}\n`) })
const rss0 = process.memoryUsage().rss
const t0 = performance.now()
let result
try {
  await lab.start()
  const upMs = performance.now() - t0
  const rss = process.memoryUsage().rss
  const nodeCount = topology.clusters.reduce((n, c) => n + c.nodes.length, 0)
  console.log(`lab up: ${topology.clusters.length} clusters × ${NODES} nodes = ${nodeCount} nodes (${lab.nodesAvailable ? 'with' : 'WITHOUT'} SSH nodes) ready in ${upMs.toFixed(0)} ms`)
  console.log(`RSS: ${(rss / 2 ** 20).toFixed(0)} MiB (before start ${(rss0 / 2 ** 20).toFixed(0)} MiB)`)

  // kubectl runs in child processes while this process serves the API: execFileSync would block the server, so
  // each call is awaited asynchronously.
  const { execFile } = await import('node:child_process')
  const run = (args) => new Promise((resolve, reject) => execFile(kubectl, args, { env: { HOME: dir } }, (err, stdout) => (err ? reject(err) : resolve(stdout))))
  const base = ['--kubeconfig', join(dir, 'kubeconfig'), '--context', 'bench-kubeadm', '--cache-dir', join(dir, 'kube-cache')]
  const first = await run([...base, 'get', 'nodes', '--no-headers'])
  const listed = first.trim().split('\n').length
  const t1 = performance.now()
  for (let i = 0; i < CALLS; i++) await run([...base, 'get', 'nodes'])
  const totalMs = performance.now() - t1
  console.log(`${CALLS} sequential \`kubectl get nodes\` (${listed} nodes, ${kubectl}): ${totalMs.toFixed(0)} ms total, ${(totalMs / CALLS).toFixed(1)} ms per call`)
  // The server's own share of each call: the same list over one keep-alive HTTPS connection, without kubectl.
  const { request, Agent } = await import('node:https')
  const agent = new Agent({ keepAlive: true, ca: lab.ca.certPem })
  const api = [...lab.clusters.values()].find((c) => c.topology.name === 'bench-kubeadm').api.url
  const get = () => new Promise((resolve, reject) => request(`${api}/api/v1/nodes?limit=500`, { agent, headers: { Authorization: `Bearer ${lab.token}`, Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' } }, (res) => { res.resume(); res.on('end', resolve) }).on('error', reject).end())
  await get()
  const t2 = performance.now()
  for (let i = 0; i < CALLS; i++) await get()
  const serverMs = (performance.now() - t2) / CALLS
  agent.destroy()
  console.log(`${CALLS} sequential GET /api/v1/nodes (Table) over one HTTPS connection: ${serverMs.toFixed(1)} ms per request (the lab's share of a kubectl call)`)
  let kubectlVersion = ''
  try { kubectlVersion = JSON.parse(execFileSync(kubectl, ['version', '--client', '-o', 'json'], { encoding: 'utf8' })).clientVersion.gitVersion } catch { /* informative only */ }
  result = { nodes: nodeCount, ssh: lab.nodesAvailable, upMs: Math.round(upMs), rssMiB: Math.round(rss / 2 ** 20), kubectlCalls: CALLS, kubectlTotalMs: Math.round(totalMs), kubectlPerCallMs: Number((totalMs / CALLS).toFixed(1)), serverPerRequestMs: Number(serverMs.toFixed(1)), kubectlVersion }
} finally {
  await lab.stop()
  await rm(dir, { recursive: true, force: true })
}
console.log(`RESULT ${JSON.stringify(result)}`)
