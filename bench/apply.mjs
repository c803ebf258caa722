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
// BENCH_APPLY_EXECS=1 (the commands the nodes ran over SSH, by kind: count and wall time),
// KUPGRADE_KUBECTL.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
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
const EXECS = env('BENCH_APPLY_EXECS', '') !== ''
const KUBECTL = env('KUPGRADE_KUBECTL', '/usr/lib/google-cloud-sdk/bin/kubectl.1.32')
if (!existsSync(KUBECTL)) { console.log(`apply: skipped (no kubectl at ${KUBECTL}; set KUPGRADE_KUBECTL)`); process.exit(0) }
// bin/kupgrade.js runs the bundle, which `npm run build` makes after tsc.
if (!existsSync(join(root, 'dist/bundle/main.js')) || !existsSync(join(root, 'dist/cli/main.js'))) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' })

const load = (p) => import(pathToFileURL(join(root, 'dist', p)).href)
const { Lab } = await load('lab/lab.js')
const { probeIsolation } = await load('lab/node/index.js')
const { normalizeTopology } = await load('lab/topology.js')
const { parseDuration } = await load('util/duration.js')
const { gateWaitPolicy } = await load('executor/gates.js')
const { loadPlan } = await load('plan/load.js')
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
// Fifty nodes share this host's cores with the lab's API server: their commands run at a lower priority, as a real
// node's work never takes the apiserver's CPU (LabOptions.nodeCommandNiceness).
const lab = new Lab({ dir, topology, nodeCommandNiceness: 10 })
// The lab's API servers and SSH servers share this process's one event loop: how long it kept callbacks waiting says
// whether a slow API answer was this loop being busy (the lab) or kupgrade.
const { monitorEventLoopDelay } = await import('node:perf_hooks')
const loopDelay = monitorEventLoopDelay({ resolution: 10 })
const t0 = Date.now()
await lab.start()
/** SSH commands by kind (their first words, names and numbers masked): how many, and their summed wall time. */
const execs = new Map()
/** Every SSH command the nodes ran, counted always: a figure of kupgrade's own that does not depend on this machine. */
let sshCommands = 0
for (const c of lab.clusters.values()) for (const n of c.nodes.values()) n.on('exec', () => sshCommands++)
if (EXECS) {
  for (const c of lab.clusters.values()) {
    for (const n of c.nodes.values()) {
      n.on('exec', (e) => {
        // The gates' node reads all begin with the same environment line: the kind is what follows it.
        const kind = e.command.replace(/^export LC_ALL=C PATH="[^"]*"\s*/, '').replace(/\s+/g, ' ').replace(/[0-9a-f]{8,}|\d+(\.\d+)*/g, 'N').replace(/(cp|w)-N/g, 'NODE').slice(0, 90)
        const k = execs.get(kind) ?? { n: 0, ms: 0 }
        k.n++
        k.ms += e.durationMs
        execs.set(kind, k)
      })
    }
  }
}
const loadStart = readFileSync('/proc/loadavg', 'utf8').trim()
console.log(`apply: lab of 1 ${DIST} cluster × ${NODES} nodes (${CONTROL_PLANES} control planes) up in ${((Date.now() - t0) / 1000).toFixed(1)}s; restart ${RESTART}, Ready ${READY}, maxUnavailable ${MAX_UNAVAILABLE}`)
const planFile = join(dir, 'plan.yaml')
// The lab's plan, with the bench's worker batch size.
const planText = readFileSync(planFile, 'utf8').replace(/maxUnavailable: 1\b/, `maxUnavailable: ${MAX_UNAVAILABLE}`)
if (!planText.includes(`maxUnavailable: ${MAX_UNAVAILABLE}`)) throw new Error('bench: could not set maxUnavailable in the lab plan')
const { writeFileSync } = await import('node:fs')
writeFileSync(planFile, planText)

// After-node gates must hold stableFor checks in a row, one interval apart: a settle time per node the plan asks for.
const policy = gateWaitPolicy(loadPlan(planFile).plan.spec.gates?.wait)
const settleMs = (policy.stableFor - 1) * policy.intervalMs
const profiles = join(root, 'bench/profiles')
if (PROFILE) mkdirSync(profiles, { recursive: true })
/** The machine's CPU time since boot from /proc/stat's first line (USER_HZ ticks, 10 ms): busy (all but idle and iowait) and all. */
function machineCpuMs() {
  try {
    const t = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number)
    const all = t.reduce((a, b) => a + b, 0)
    return { busy: (all - t[3] - t[4]) * 10, all: all * 10 }
  } catch {
    return undefined
  }
}
let run
let machineBefore
let labCpuBefore
try {
  const started = Date.now()
  machineBefore = machineCpuMs()
  labCpuBefore = process.cpuUsage()
  loopDelay.enable()
  run = await new Promise((resolve) => {
    const args = [...(PROFILE ? ['--cpu-prof', '--cpu-prof-dir', profiles] : []), '--import', join(root, 'bench/usage-probe.mjs'), join(root, 'bin/kupgrade.js'), 'apply', planFile, '--output', 'json', '--yes']
    // detached: kupgrade runs in a session of its own, as from a user's terminal beside a `kupgrade lab up`, so the
    // scheduler does not make it share the lab process's CPU share (Linux autogroups: sessions first).
    const p = spawn(process.execPath, args, { cwd: dir, detached: true, env: { PATH: process.env.PATH, HOME: dir, KUPGRADE_KUBECTL: KUBECTL, CI: '1', KUPGRADE_BENCH_USAGE_FILE: join(dir, 'usage') } })
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (err += d))
    p.on('close', (code) => resolve({ code, out, err, wallMs: Date.now() - started }))
  })
} finally {
  loopDelay.disable()
}
// Before the lab stops: its own CPU during the run (API and SSH servers share this process) and the machine's.
const labCpu = process.cpuUsage(labCpuBefore)
const machineAfter = machineCpuMs()
await lab.stop().catch(() => {})
if (EXECS) {
  const all = [...execs.values()].reduce((a, k) => ({ n: a.n + k.n, ms: a.ms + k.ms }), { n: 0, ms: 0 })
  console.log(`apply: the nodes ran ${all.n} SSH commands, ${(all.ms / 1000).toFixed(1)} s of wall time summed; by kind:`)
  for (const [kind, k] of [...execs].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25)) console.log(`  ${String(k.n).padStart(5)}× ${(k.ms / 1000).toFixed(1).padStart(7)} s  ${kind}`)
}
const loopMs = (ns) => (ns / 1e6).toFixed(0)
console.log(`apply: the lab process's event loop during the run: delay p50 ${loopMs(loopDelay.percentile(50))} ms, p99 ${loopMs(loopDelay.percentile(99))} ms, max ${loopMs(loopDelay.max)} ms`)
const loadEnd = readFileSync('/proc/loadavg', 'utf8').trim()
if (process.env.BENCH_APPLY_EVENTS) writeFileSync(process.env.BENCH_APPLY_EVENTS, run.out)
const events = run.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
const finished = events.find((e) => e.type === 'run-finished')
if (run.code !== 0 || !finished || finished.outcome !== 'done') {
  console.log(`apply: the run did not finish (exit ${run.code}):\n${run.err.slice(-3000)}\n${run.out.slice(-3000)}`)
  rmSync(dir, { recursive: true, force: true })
  process.exit(1)
}
const [maxRss, userMs, sysMs, childUserMs, childSysMs] = readFileSync(join(dir, 'usage'), 'utf8').trim().split(/\s+/).map(Number)
// The journal: every entry is fsynced synchronously, which stops the whole process (every node of the batch) meanwhile.
// Count the entries and time an fsync on the same file system.
const journalFile = finished.journal
const journalEntries = readFileSync(journalFile, 'utf8').trim().split('\n').length - 1
const fsyncMs = (() => {
  const { openSync, writeSync, fsyncSync, closeSync } = fs
  const fd = openSync(join(dir, 'fsync-probe'), 'a')
  const samples = []
  for (let i = 0; i < 30; i++) {
    const t0 = performance.now()
    writeSync(fd, `${'x'.repeat(300)}\n`)
    fsyncSync(fd)
    samples.push(performance.now() - t0)
  }
  closeSync(fd)
  return samples.sort((a, b) => a - b)[15]
})()
rmSync(dir, { recursive: true, force: true })

// Per node (per hop): when it started and finished, its batch, and each executed step with its duration.
const t = (e) => Date.parse(e.time)
const runStart = t(events[0])
const runEnd = t(finished)
const nodes = new Map()
const nodeKey = (e) => `${e.cluster}/${e.hop ?? 0}/${e.node}`
for (const e of events) {
  if (e.type === 'node-started') nodes.set(nodeKey(e), { node: e.node, batch: e.batch, start: t(e), end: undefined, steps: [] })
  if (e.type === 'node-done') nodes.get(nodeKey(e)).end = t(e)
  if (e.type === 'step-done' && e.step.node) nodes.get(nodeKey({ ...e.step }))?.steps.push({ action: e.step.action, ms: e.durationMs, end: t(e), changed: e.changed })
}

/**
 * The simulated waits a node's executed steps cannot avoid, from the lab's known delays: a service (re)start waits
 * the start delay, then the Node turns Ready after the Ready delay; a reboot adds the reboot. Evictions cost the
 * eviction delay (0 here: the fleet runs no workloads to evict).
 */
function unavoidable(n) {
  const ran = (...actions) => n.steps.some((s) => actions.includes(s.action) && s.changed !== false)
  let wait = 0
  if (ran('restart', 'start-service', 'reboot')) wait += delays.restartMs + delays.readyMs
  if (ran('reboot')) wait += delays.rebootMs
  return wait
}
/** Total length of the union of [start, end] intervals (ms). */
function union(intervals) {
  let total = 0
  let reach = -Infinity
  for (const [a, b] of intervals.sort((x, y) => x[0] - y[0])) {
    if (b <= reach) continue
    total += b - Math.max(a, reach)
    reach = b
  }
  return total
}
// Batches as they ran: a control-plane node is a batch of its own (one at a time), workers share their batch number.
const batches = new Map()
for (const [key, n] of nodes) {
  const id = n.batch === undefined ? `cp:${key}` : `${key.split('/').slice(0, 2).join('/')}/batch${n.batch}`
  const b = batches.get(id) ?? { nodes: [], ideal: 0, start: Infinity, end: 0 }
  b.nodes.push(n)
  b.ideal = Math.max(b.ideal, unavoidable(n))
  b.start = Math.min(b.start, n.start)
  b.end = Math.max(b.end, n.end)
  batches.set(id, b)
}
const ordered = [...batches.values()].sort((a, b) => a.start - b.start)
const idealMs = ordered.reduce((s, b) => s + b.ideal, 0)
const wallMs = finished.durationMs
const overheadMs = wallMs - idealMs
const overhead = overheadMs / idealMs * 100

// Where the overhead goes. Outside the batches: the cluster's own steps (lock, pre-gates, backup, post-gates, unlock)
// and the hand-over from one batch to the next. Inside a batch: its last node to finish, step kind by step kind, minus
// the unavoidable waits, plus the executor's own time between that node's steps.
const share = new Map()
const add = (k, v) => share.set(k, (share.get(k) ?? 0) + v)
add('before the first node (lock, pre-gates, backup)', ordered[0].start - runStart)
add('after the last node (post-gates, unlock, summary)', runEnd - ordered.at(-1).end)
for (let i = 1; i < ordered.length; i++) add('between batches (hand-over)', ordered[i].start - ordered[i - 1].end)
for (const b of ordered) {
  const last = b.nodes.reduce((x, y) => (y.end > x.end ? y : x))
  add('nodes of a batch finishing after the slowest', (b.end - b.start) - (last.end - last.start))
  // A node's gates at one point run side by side: time is counted as the union of the steps' intervals, not their sum.
  const covered = (steps) => union(steps.map((x) => [x.end - x.ms, x.end]))
  const waits = new Set(['restart', 'start-service', 'reboot', 'wait-ready'])
  for (const action of new Set(last.steps.map((x) => x.action))) if (!waits.has(action)) add(`step ${action}`, covered(last.steps.filter((x) => x.action === action)))
  add('restart + wait-ready beyond the simulated start and Ready', covered(last.steps.filter((x) => waits.has(x.action))) - unavoidable(last))
  add('executor between a node\'s steps', (last.end - last.start) - covered(last.steps))
}

console.log(`apply: ${nodes.size} node upgrades in ${batches.size} sequential batches (control planes one at a time, then workers ${MAX_UNAVAILABLE} at a time)`)
console.log(`  run wall time (run-finished durationMs)   ${(wallMs / 1000).toFixed(2)} s   (process ${(run.wallMs / 1000).toFixed(2)} s, CPU user ${(userMs / 1000).toFixed(1)} s + sys ${(sysMs / 1000).toFixed(1)} s, peak RSS ${(maxRss / 1024).toFixed(0)} MiB)`)
const nodeMs = [...nodes.values()].map((n) => n.end - n.start).sort((a, b) => a - b)
console.log(`  per node                                 ${(wallMs / nodes.size / 1000).toFixed(2)} s of the run's wall time per node upgraded; one node's own upgrade (node-started → node-done) median ${(nodeMs[Math.floor(nodeMs.length / 2)] / 1000).toFixed(2)} s, slowest ${(nodeMs.at(-1) / 1000).toFixed(2)} s`)
console.log(`  SSH commands                             ${sshCommands} on the nodes, ${(sshCommands / nodes.size).toFixed(1)} per node upgraded (gates included; BENCH_APPLY_EXECS=1 for them by kind)`)
console.log(`  ideal critical path                      ${(idealMs / 1000).toFixed(2)} s   (Σ over batches of the slowest node's simulated waits: start ${RESTART} + Ready ${READY})`)
console.log(`  overhead                                 ${(overheadMs / 1000).toFixed(2)} s = ${overhead.toFixed(1)} %   (aim: under 2 %)`)
const afterGates = ordered.filter((b) => b.nodes.some((n) => n.steps.some((x) => x.action === 'gate'))).length
console.log(`  of which the after-node gates' settle   ${(afterGates * settleMs / 1000).toFixed(2)} s   (by policy: stableFor ${policy.stableFor} checks ${policy.intervalMs} ms apart, per batch); beyond ideal + settle: ${((overheadMs - afterGates * settleMs) / (idealMs + afterGates * settleMs) * 100).toFixed(1)} %`)
console.log('  where the overhead goes (critical path):')
for (const [k, v] of [...share].sort((a, b) => b[1] - a[1])) if (Math.abs(v) >= 5) console.log(`    ${(v / 1000).toFixed(2).padStart(7)} s  ${(v / overheadMs * 100).toFixed(0).padStart(3)} %  ${k}`)
console.log(`  journal: ${journalEntries} entries, each fsynced synchronously (${fsyncMs.toFixed(1)} ms per fsync here): ~${(journalEntries * fsyncMs / 1000).toFixed(2)} s with the whole process stopped`)
console.log('  (a "step gate" share includes the after-node gates\' stableFor settling: the plan\'s gates.wait policy, a wait by design)')
console.log(`  load average: at start ${loadStart}; at end ${loadEnd}`)
// Where the machine's CPU went during the run: a run that waits on CPU-starved nodes measures the machine, not kupgrade.
const cpu = machineBefore && machineAfter ? (() => {
  const busy = machineAfter.busy - machineBefore.busy
  const available = machineAfter.all - machineBefore.all
  const kupgrade = userMs + sysMs
  const children = (childUserMs ?? 0) + (childSysMs ?? 0)
  const lab = (labCpu.user + labCpu.system) / 1000
  return { busyMs: busy, availableMs: available, kupgradeMs: kupgrade, kupgradeChildrenMs: children, labProcessMs: Math.round(lab), restMs: Math.round(busy - kupgrade - children - lab) }
})() : undefined
if (cpu) {
  const s = (v) => `${(v / 1000).toFixed(1)} s`
  const pc = (v) => `${(v / cpu.busyMs * 100).toFixed(0)} %`
  console.log(`  the machine's CPU during the run: ${s(cpu.busyMs)} busy of ${s(cpu.availableMs)} (${(cpu.busyMs / cpu.availableMs * 100).toFixed(0)} % of ${cpus().length} CPUs):`)
  console.log(`    ${s(cpu.kupgradeMs).padStart(8)}  ${pc(cpu.kupgradeMs).padStart(4)}  kupgrade itself`)
  console.log(`    ${s(cpu.kupgradeChildrenMs).padStart(8)}  ${pc(cpu.kupgradeChildrenMs).padStart(4)}  its child processes (kubectl)`)
  console.log(`    ${s(cpu.labProcessMs).padStart(8)}  ${pc(cpu.labProcessMs).padStart(4)}  the lab's process (API servers, SSH servers)`)
  console.log(`    ${s(cpu.restMs).padStart(8)}  ${pc(cpu.restMs).padStart(4)}  everything else: mostly the lab nodes' commands (bash stand-ins), and other work on this machine`)
}
console.log(`RESULT ${JSON.stringify({ nodes: nodes.size, batches: batches.size, wallMs, perNodeMs: Math.round(wallMs / nodes.size), sshCommands, nodeMedianMs: nodeMs[Math.floor(nodeMs.length / 2)], idealMs, overheadMs, overheadPercent: Number(overhead.toFixed(1)), processMs: run.wallMs, userMs, sysMs, overheadBySource: Object.fromEntries(share), settleMs: afterGates * settleMs, journalEntries, fsyncMs: Number(fsyncMs.toFixed(2)), loadStart, loadEnd, cpu })}`)
