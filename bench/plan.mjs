#!/usr/bin/env node
// Benchmark: `kupgrade validate` and `kupgrade plan` (json, markdown, text) of a 2,000-node, 20-cluster, 2-stage plan, as
// whole processes (median wall and CPU time of several runs, peak RSS), optionally against a baseline checkout
// (--baseline DIR). Prints figures; asserts nothing.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const RUNS = Number(process.env.BENCH_RUNS ?? 7)

export function generatePlan({ clusters = 20, nodesPerCluster = 100, controlPlanes = 3 } = {}) {
  const names = Array.from({ length: clusters }, (_, i) => `cluster-${String(i + 1).padStart(2, '0')}`)
  const half = Math.ceil(clusters / 2)
  const lines = [
    'apiVersion: kupgrade.dev/v1alpha1',
    'kind: UpgradePlan',
    'metadata: { name: bench-fleet }',
    'spec:',
    '  target: { kubernetes: v1.30.4 }',
    '  stages:',
    `    - { name: staging, clusters: [${names.slice(0, half).join(', ')}], soak: 30m }`,
    `    - { name: production, clusters: [${names.slice(half).join(', ')}], approval: required }`,
    '  clusters:',
  ]
  const dists = ['k3s', 'k0s', 'kubeadm']
  const from = { k3s: 'v1.29.6+k3s1', k0s: 'v1.29.6+k0s.0', kubeadm: 'v1.29.6' }
  names.forEach((name, ci) => {
    const dist = dists[ci % 3]
    lines.push(`    - name: ${name}`, `      distribution: ${dist}`, `      from: ${from[dist]}`, `      apiEndpoint: https://10.${ci}.0.1:6443`, '      ssh: { user: ops, sudo: true }', '      nodes:')
    for (let n = 0; n < nodesPerCluster; n++) {
      const role = n < controlPlanes ? 'control-plane' : 'worker'
      lines.push(`        - { name: ${name}-n${n}, host: 10.${ci}.${Math.floor(n / 250) + 1}.${(n % 250) + 1}, role: ${role} }`)
    }
  })
  lines.push('  strategy: { workers: { maxUnavailable: 10%, canary: 1 }, onFailure: rollback }')
  return `${lines.join('\n')}\n`
}

/** One whole-process run of `kupgrade ARGS` from the checkout at `dir`: wall ms, output bytes; CPU and RSS go to usageFile. */
function time(args, usageFile, dir = root) {
  const t0 = process.hrtime.bigint()
  const r = spawnSync(process.execPath, ['--import', join(root, 'bench/usage-probe.mjs'), join(dir, 'bin/kupgrade.js'), ...args], {
    env: { ...process.env, KUPGRADE_BENCH_USAGE_FILE: usageFile },
    maxBuffer: 512 * 1024 * 1024,
  })
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  if (r.status !== 0) throw new Error(`kupgrade ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  return { ms, bytes: r.stdout.length }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** `maxRSS userMs systemMs` lines (bench/usage-probe.mjs) → peak RSS MiB and the median CPU ms (user + system). */
function usage(file) {
  const rows = readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split(' ').map(Number))
  return { rssMiB: Math.max(...rows.map((r) => r[0])) / 1024, cpuMs: median(rows.map((r) => r[1] + r[2])) }
}

/**
 * Options: `--baseline DIR` also times the kupgrade checkout in DIR (built; e.g. `git worktree add /tmp/base <rev> &&
 * (cd /tmp/base && npm ci && npm run build)`), interleaved run for run with this one, so both see the same load.
 */
export function benchPlan({ baseline } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'kupgrade-bench-'))
  try {
    const file = join(dir, 'fleet.yaml')
    writeFileSync(file, generatePlan())
    const sides = [['', root], ...(baseline ? [[' (baseline)', baseline]] : [])]
    const cases = [['--version', ['--version']], ['validate', ['validate', file]], ['plan --format json', ['plan', file, '--format', 'json']], ['plan --format markdown', ['plan', file, '--format', 'markdown']], ['plan (text)', ['plan', file]]]
    const results = []
    for (const [label, args] of cases) {
      const runs = new Map(sides.map(([s]) => [s, []]))
      let bytes = 0
      for (let i = 0; i < RUNS; i++) {
        for (const [side, at] of sides) {
          const r = time(args, join(dir, `${label.replace(/\W+/g, '-')}${side ? '-base' : ''}.usage`), at)
          runs.get(side).push(r.ms)
          bytes = r.bytes
        }
      }
      for (const [side] of sides) {
        const u = usage(join(dir, `${label.replace(/\W+/g, '-')}${side ? '-base' : ''}.usage`))
        const ms = runs.get(side)
        results.push({ label: `${label}${side}`, median: median(ms), min: Math.min(...ms), max: Math.max(...ms), ...u, bytes })
      }
    }
    console.log(`plan benchmark: 2,000 nodes in 20 clusters over 2 stages, whole process, median of ${RUNS} runs (aim: plan under 300 ms wall on an idle machine)`)
    for (const r of results) {
      console.log(`  kupgrade ${r.label.padEnd(36)} ${r.median.toFixed(0).padStart(5)} ms wall (min ${r.min.toFixed(0)}, max ${r.max.toFixed(0)}), CPU ${r.cpuMs.toFixed(0)} ms, peak RSS ${r.rssMiB.toFixed(0)} MiB, output ${(r.bytes / 1024).toFixed(0)} KiB`)
    }
    // Wall time on a shared machine mostly measures the other processes: say how busy it was.
    console.log(`  load average: ${readFileSync('/proc/loadavg', 'utf8').trim()} (${cpus().length} CPUs); CPU time is the steadier figure under load`)
    return results
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const b = process.argv.indexOf('--baseline')
  benchPlan(b > 0 ? { baseline: process.argv[b + 1] } : {})
}
