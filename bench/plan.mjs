#!/usr/bin/env node
// Benchmark: `kupgrade validate` and `kupgrade plan --format json` of a 2,000-node, 20-cluster, 2-stage plan, as whole
// processes (median of several runs, plus peak RSS). Prints figures; asserts nothing.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
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

function time(args, rssFile) {
  const t0 = process.hrtime.bigint()
  const r = spawnSync(process.execPath, ['--import', join(root, 'bench/rss-probe.mjs'), join(root, 'bin/kupgrade.js'), ...args], {
    env: { ...process.env, KUPGRADE_BENCH_RSS_FILE: rssFile },
    maxBuffer: 512 * 1024 * 1024,
  })
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  if (r.status !== 0) throw new Error(`kupgrade ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  return { ms, bytes: r.stdout.length }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

export function benchPlan() {
  const dir = mkdtempSync(join(tmpdir(), 'kupgrade-bench-'))
  try {
    const file = join(dir, 'fleet.yaml')
    writeFileSync(file, generatePlan())
    const results = []
    for (const [label, args] of [['validate', ['validate', file]], ['plan --format json', ['plan', file, '--format', 'json']], ['plan --format markdown', ['plan', file, '--format', 'markdown']]]) {
      const rssFile = join(dir, `${label.replace(/\W+/g, '-')}.rss`)
      const runs = []
      let bytes = 0
      for (let i = 0; i < RUNS; i++) {
        const r = time(args, rssFile)
        runs.push(r.ms)
        bytes = r.bytes
      }
      const rss = readFileSync(rssFile, 'utf8').trim().split('\n').map(Number)
      results.push({ label, median: median(runs), min: Math.min(...runs), max: Math.max(...runs), rssMiB: Math.max(...rss) / 1024, bytes })
    }
    const baseline = []
    const rssFile = join(dir, 'version.rss')
    for (let i = 0; i < RUNS; i++) baseline.push(time(['--version'], rssFile).ms)
    console.log(`plan benchmark: 2,000 nodes in 20 clusters over 2 stages, whole process, median of ${RUNS} runs`)
    console.log(`  kupgrade --version (process start baseline)   ${median(baseline).toFixed(0)} ms`)
    for (const r of results) {
      console.log(`  kupgrade ${r.label.padEnd(36)} ${r.median.toFixed(0)} ms (min ${r.min.toFixed(0)}, max ${r.max.toFixed(0)}), peak RSS ${r.rssMiB.toFixed(0)} MiB, output ${(r.bytes / 1024).toFixed(0)} KiB`)
    }
    return results
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) benchPlan()
