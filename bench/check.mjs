#!/usr/bin/env node
// Benchmark: `kupgrade check` (every pre-gate, read-only) on a 3-cluster lab (k3s, k0s, kubeadm; 1 control plane +
// 2 workers each), against dist/. The lab runs in this process, the CLI in a child process (as a user runs it).
// Prints the wall time of the whole check and the slowest gates; asserts nothing. Needs the lab's node isolation
// and a kubectl (KUPGRADE_KUBECTL, default the pinned 1.32). Usage: node bench/check.mjs [--runs N]
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const i = process.argv.indexOf('--runs')
const RUNS = i >= 0 ? Number(process.argv[i + 1]) : 2
const KUBECTL = process.env.KUPGRADE_KUBECTL ?? '/usr/lib/google-cloud-sdk/bin/kubectl.1.32'
if (!existsSync(KUBECTL)) { console.log(`check: skipped (no kubectl at ${KUBECTL}; set KUPGRADE_KUBECTL)`); process.exit(0) }
// bin/kupgrade.js runs the bundle, which `npm run build` makes after tsc.
if (!existsSync(join(root, 'dist/bundle/main.js')) || !existsSync(join(root, 'dist/gates/check-plan.js'))) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' })
const load = (p) => import(pathToFileURL(join(root, 'dist', p)).href)
const { Lab } = await load('lab/lab.js')
const { probeIsolation } = await load('lab/node/index.js')
const { normalizeTopology } = await load('lab/topology.js')
try { await probeIsolation() } catch (err) { console.log(`check: skipped (lab isolation unavailable: ${err.message})`); process.exit(0) }

const NET = `127.${200 + (process.pid % 20)}.9`
const dir = mkdtempSync(join(tmpdir(), 'kupgrade-bench-check-'))
const lab = new Lab({ dir, topology: normalizeTopology({
  apiVersion: 'kupgrade.dev/v1alpha1', kind: 'LabTopology', metadata: { name: 'bench-check' },
  spec: { mirror: ['v1.29.6', 'v1.30.4'], clusters: ['k3s', 'k0s', 'kubeadm'].map((distribution, ci) => ({
    name: `b-${distribution}`, distribution, version: 'v1.29.6', apiAddress: `${NET}.${ci + 1}`,
    nodes: [0, 1, 2].map((k) => ({ name: `${distribution}-${k ? `w-${k}` : 'cp-1'}`, role: k ? 'worker' : 'control-plane', address: `${NET}.${100 + ci * 10 + k}`, sshPort: 2222 })),
  })) },
}) })
const started = Date.now()
await lab.start()
console.log(`check: lab of 3 clusters × 3 nodes up in ${((Date.now() - started) / 1000).toFixed(1)}s`)
try {
  for (let run = 1; run <= RUNS; run++) {
    const t0 = Date.now()
    // in a child with its own event loop, as the CLI runs for a user
    const out = await new Promise((resolve) => {
      const p = spawn(process.execPath, [join(root, 'bin/kupgrade.js'), 'check', join(dir, 'plan.yaml'), '--format', 'json'], { env: { PATH: process.env.PATH, HOME: dir, KUPGRADE_KUBECTL: KUBECTL } })
      let s = ''
      p.stdout.on('data', (d) => (s += d))
      p.on('close', (code) => resolve({ code, s }))
    })
    const wall = Date.now() - t0
    const report = JSON.parse(out.s)
    const gates = report.clusters.flatMap((c) => c.results.map((x) => ({ c: c.name, g: x.gate, ms: x.durationMs, st: x.status })))
    const slow = gates.sort((a, b) => b.ms - a.ms).slice(0, 4).map((x) => `${x.c}/${x.g} ${(x.ms / 1000).toFixed(1)}s`).join(', ')
    for (const x of gates.filter((x) => x.st === 'fail' || x.st === 'unknown')) console.log(`  ${x.c}/${x.g}: ${x.st}: ${report.clusters.find((c) => c.name === x.c).results.find((r) => r.gate === x.g).summary}`)
    console.log(`check run ${run}: ${(wall / 1000).toFixed(1)}s wall for ${gates.length} gate checks on 3 clusters / 9 nodes (exit ${out.code}; ${gates.filter((x) => x.st === 'pass').length} pass, ${gates.filter((x) => x.st === 'warn').length} warn, ${gates.filter((x) => x.st === 'fail' || x.st === 'unknown').length} fail/unknown); slowest: ${slow}`)
  }
} finally {
  await lab.stop()
  rmSync(dir, { recursive: true, force: true })
}
