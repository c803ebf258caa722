#!/usr/bin/env node
// Apply overhead benchmark: a real `kupgrade apply` on a lab fleet with fixed simulated delays (default: one k3s
// cluster of 3 servers + 47 agents, service restart 2 s, Ready 1 s, everything else 0), against dist/. Prints the run's
// wall time, the ideal critical path and the overhead in percent; asserts nothing.
//
// The ideal critical path is derived from the run itself, not assumed: from the events (`--output json`) it takes the
// batches as they ran (each control-plane node alone, then the worker batches) and, per node, the simulated waits its
// executed steps could not avoid (a service (re)start: restart delay + Ready delay; a reboot: reboot + restart + Ready;
// evicted pods: the eviction delay), then sums the slowest node per batch. Everything else — SSH round trips, kubectl
// processes, gate checks, polling granularity, journal fsyncs — is overhead.
//
// It starts a lab, so it runs in its own network namespace: re-executes itself under `unshare -n` when it can.
// Env: BENCH_APPLY_NODES (50), BENCH_APPLY_MAX_UNAVAILABLE (10), BENCH_APPLY_RESTART (2s), BENCH_APPLY_READY (1s),
// BENCH_APPLY_DIST (k3s), BENCH_APPLY_NET (127.0.100), BENCH_APPLY_PROFILE=1 (a --cpu-prof of the CLI into bench/profiles),
// KUPGRADE_KUBECTL.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const self = fileURLToPath(import.meta.url)

if (!process.env.KUPGRADE_BENCH_NETNS) {
  // A lab listens on loopback addresses other work on this machine may use: a private network namespace keeps it apart.
  const probe = spawnSync('unshare', ['-n', 'true'])
  if (probe.status === 0) {
    const r = spawnSync('unshare', ['-n', 'bash', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, self, ...process.argv.slice(2)], {
      stdio: 'inherit', env: { ...process.env, KUPGRADE_BENCH_NETNS: '1' },
    })
    process.exit(r.status ?? 1)
  }
  console.log('apply: no private network namespace (unshare -n); running on the shared loopback')
}

const env = (k, d) => process.env[k] ?? d
const NODES = Number(env('BENCH_APPLY_NODES', 50))
const CONTROL_PLANES = 3
const MAX_UNAVAILABLE = Number(env('BENCH_APPLY_MAX_UNAVAILABLE', 10))
const RESTART = env('BENCH_APPLY_RESTART', '2s')
const READY = env('BENCH_APPLY_READY', '1s')
const DIST = env('BENCH_APPLY_DIST', 'k3s')
const NET = env('BENCH_APPLY_NET', '127.0.100')
const PROFILE = env('BENCH_APPLY_PROFILE', '') !== ''
const KUBECTL = env('KUPGRADE_KUBECTL', '/usr/lib/google-cloud-sdk/bin/kubectl.1.32')
if (!existsSync(KUBECTL)) { console.log(`apply: skipped (no kubectl at ${KUBECTL}; set KUPGRADE_KUBECTL)`); process.exit(0) }
if (!existsSync(join(root, 'dist/cli/main.js'))) execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' })

const load = (p) => import(pathToFileURL(join(root, 'dist', p)).href)
const { Lab } = await load('lab/lab.js')
const { probeIsolation } = await load('lab/node/index.js')
const { normalizeTopology } = await load('lab/topology.js')
const { parseDuration } = await load('util/duration.js')
try { await probeIsolation() } catch (err) { console.log(`apply: skipped (lab isolation unavailable: ${err.message})`); process.exit(0) }

const timing = { serviceRestart: RESTART, readyDelay: READY, reboot: '2s', drainEvictionDelay: '0s', podStartDelay: '0s', nodeMonitorGracePeriod: '40s', kubeProxySync: '30s' }
const topology = normalizeTopology({
  apiVersion: 'kupgrade.dev/v1alpha1', kind: 'LabTopology', metadata: { name: 'bench-apply' },
  spec: {
    mirror: ['v1.29.6', 'v1.30.4'],
    timing,
    clusters: [{
      name: 'bench', distribution: DIST, version: 'v1.29.6', apiAddress: `${NET}.1`,
      nodes: Array.from({ length: NODES }, (_, i) => ({
        name: i < CONTROL_PLANES ? `cp-${i + 1}` : `w-${i - CONTROL_PLANES + 1}`,
        role: i < CONTROL_PLANES ? 'control-plane' : 'worker',
        address: `${NET.split('.').slice(0, 2).join('.')}.${Number(NET.split('.')[2]) + 1 + Math.floor(i / 250)}.${(i % 250) + 1}`,
        os: DIST === 'kubeadm' ? 'debian-12' : 'ubuntu-22.04',
      })),
      workloads: { deployments: [], daemonSets: [], coredns: { replicas: 1 } },
    }],
  },
})
const ms = (d) => parseDuration(d)
const delays = { restartMs: ms(timing.serviceRestart), readyMs: ms(timing.readyDelay), rebootMs: ms(timing.reboot), evictionMs: ms(timing.drainEvictionDelay) }

const dir = mkdtempSync(join(tmpdir(), 'kupgrade-bench-apply-'))
const lab = new Lab({ dir, topology })
const t0 = Date.now()
await lab.start()
const loadStart = readFileSync('/proc/loadavg', 'utf8').trim()
console.log(`apply: lab of 1 ${DIST} cluster × ${NODES} nodes (${CONTROL_PLANES} control planes) up in ${((Date.now() - t0) / 1000).toFixed(1)}s; restart ${RESTART}, Ready ${READY}, maxUnavailable ${MAX_UNAVAILABLE}`)
const planFile = join(dir, 'plan.yaml')
// The lab's plan, with the bench's worker batch size.
const planText = readFileSync(planFile, 'utf8').replace(/maxUnavailable: 1\b/, `maxUnavailable: ${MAX_UNAVAILABLE}`)
if (!planText.includes(`maxUnavailable: ${MAX_UNAVAILABLE}`)) throw new Error('bench: could not set maxUnavailable in the lab plan')
const { writeFileSync } = await import('node:fs')
writeFileSync(planFile, planText)

const profiles = join(root, 'bench/profiles')
if (PROFILE) mkdirSync(profiles, { recursive: true })
let run
try {
  const started = Date.now()
  run = await new Promise((resolve) => {
    const args = [...(PROFILE ? ['--cpu-prof', '--cpu-prof-dir', profiles] : []), '--import', join(root, 'bench/usage-probe.mjs'), join(root, 'bin/kupgrade.js'), 'apply', planFile, '--output', 'json', '--yes']
    const p = spawn(process.execPath, args, { cwd: dir, env: { PATH: process.env.PATH, HOME: dir, KUPGRADE_KUBECTL: KUBECTL, CI: '1', KUPGRADE_BENCH_USAGE_FILE: join(dir, 'usage') } })
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (err += d))
    p.on('close', (code) => resolve({ code, out, err, wallMs: Date.now() - started }))
  })
} finally {
  await lab.stop().catch(() => {})
}
const loadEnd = readFileSync('/proc/loadavg', 'utf8').trim()
if (process.env.BENCH_APPLY_EVENTS) writeFileSync(process.env.BENCH_APPLY_EVENTS, run.out)
const events = run.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
const finished = events.find((e) => e.type === 'run-finished')
if (run.code !== 0 || !finished || finished.outcome !== 'done') {
  console.log(`apply: the run did not finish (exit ${run.code}):\n${run.err.slice(-3000)}\n${run.out.slice(-3000)}`)
  rmSync(dir, { recursive: true, force: true })
  process.exit(1)
}
const [maxRss, userMs, sysMs] = readFileSync(join(dir, 'usage'), 'utf8').trim().split(/\s+/).map(Number)
rmSync(dir, { recursive: true, force: true })

// Per node: which steps ran (done, not skipped) and how long each took; per step kind, the time spent.
const t = (e) => Date.parse(e.time)
const nodes = new Map() // node -> { batch, hop, steps: [{action, ms}] }
const byAction = new Map()
const stepStart = new Map()
for (const e of events) {
  if (e.type === 'step-started') stepStart.set(e.step.id, t(e))
  if (e.type !== 'step-done') continue
  const a = e.step.node ? e.step.action : `${e.step.action} (cluster)`
  const x = byAction.get(a) ?? { n: 0, ms: 0 }
  x.n++
  x.ms += e.durationMs
  byAction.set(a, x)
  if (!e.step.node) continue
  const key = `${e.step.cluster}/${e.step.hop ?? 0}/${e.step.node}`
  const n = nodes.get(key) ?? { node: e.step.node, batch: e.step.batch, steps: [] }
  n.steps.push({ action: e.step.action, ms: e.durationMs, changed: e.changed })
  nodes.set(key, n)
}

/** The simulated waits a node's executed steps cannot avoid, from the lab's known delays. */
function unavoidable(n) {
  const did = (a) => n.steps.some((s) => s.action === a && s.changed !== false)
  let wait = 0
  const restarts = n.steps.filter((s) => ['restart', 'start-service', 'replace-binary', 'install'].includes(s.action) && s.changed !== false).length
  // Whichever step (re)starts the service, the node then waits for the service start and for Ready once per hop.
  if (restarts > 0 || did('reboot')) wait += delays.restartMs + delays.readyMs
  if (did('reboot')) wait += delays.rebootMs
  return wait
}
// Batches as they ran: a control-plane node is a batch of its own (one at a time), workers share their batch number.
const batches = new Map()
for (const [key, n] of nodes) {
  const b = n.batch === undefined ? `cp:${key}` : `${key.split('/').slice(0, 2).join('/')}/batch${n.batch}`
  const x = batches.get(b) ?? { nodes: 0, ideal: 0 }
  x.nodes++
  x.ideal = Math.max(x.ideal, unavoidable(n))
  batches.set(b, x)
}
const idealMs = [...batches.values()].reduce((s, b) => s + b.ideal, 0)
const wallMs = finished.durationMs
const overhead = (wallMs - idealMs) / idealMs * 100

console.log(`apply: ${nodes.size} node upgrades in ${batches.size} sequential batches (control planes one at a time, then workers ${MAX_UNAVAILABLE} at a time)`)
console.log(`  run wall time (run-finished durationMs)   ${(wallMs / 1000).toFixed(2)} s   (process ${(run.wallMs / 1000).toFixed(2)} s, CPU user ${(userMs / 1000).toFixed(1)} s + sys ${(sysMs / 1000).toFixed(1)} s, peak RSS ${(maxRss / 1024).toFixed(0)} MiB)`)
console.log(`  ideal critical path                      ${(idealMs / 1000).toFixed(2)} s   (sum over batches of the slowest node's service start + Ready${delays.rebootMs ? ' (+ reboot)' : ''})`)
console.log(`  overhead                                 ${overhead.toFixed(1)} %   (aim: under 2 %)`)
console.log('  time per step kind (sum of step durations, all nodes):')
for (const [a, x] of [...byAction].sort((p, q) => q[1].ms - p[1].ms).slice(0, 14)) console.log(`    ${a.padEnd(28)} ${String(x.n).padStart(4)} × ${(x.ms / x.n).toFixed(0).padStart(6)} ms = ${(x.ms / 1000).toFixed(1).padStart(7)} s`)
console.log(`  load average: at start ${loadStart}; at end ${loadEnd}`)
console.log(`RESULT ${JSON.stringify({ nodes: nodes.size, batches: batches.size, wallMs, idealMs, overheadPercent: Number(overhead.toFixed(1)), processMs: run.wallMs, userMs, sysMs, loadStart, loadEnd })}`)
