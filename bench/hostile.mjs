#!/usr/bin/env node
// Benchmark: `kupgrade validate` and `kupgrade plan` on the largest hostile inputs of issue 8, as whole processes
// (median of several runs: wall and CPU time, plus peak RSS): one cluster of 10,000 nodes with per-node gates and hooks (its plan once
// overflowed the stack), 150,000 unknown fields (once 108 s and 647 MB, quadratic), nesting 2,000 deep (once a stack
// overflow). Every run must end with the expected exit code. Prints figures; asserts nothing about time.
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const RUNS = Number(process.env.BENCH_RUNS ?? 3)

const head = (meta = '') => [
  'apiVersion: kupgrade.dev/v1alpha1',
  'kind: UpgradePlan',
  'metadata:',
  '  name: hostile',
  meta,
  'spec:',
  '  target: { kubernetes: v1.30.4 }',
  '  stages: [{ name: s, clusters: [big] }]',
  '  clusters:',
  '    - name: big',
  '      distribution: k3s',
  '      from: v1.29.6+k3s1',
  '      apiEndpoint: https://10.0.0.1:6443',
  '      nodes:',
].filter((l) => l !== '')

const node = (i) => `        - { name: n${i}, host: 10.${i >> 16}.${(i >> 8) & 255}.${i & 255}, role: ${i < 3 ? 'control-plane' : 'worker'} }`

function bigCluster(hook) {
  return `${[...head(), ...Array.from({ length: 10_000 }, (_, i) => node(i)),
    '  gates: { beforeNode: [disk-space], afterNode: [kube-proxy-sync, iptables-backend] }',
    `  hooks: { beforeNode: [${hook}], afterNode: [${hook}] }`].join('\n')}\n`
}

const unknownFields = () => `${[...head(Array.from({ length: 150_000 }, (_, i) => `  x${i}: 1`).join('\n')), node(0), node(1), node(2)].join('\n')}\n`
const deepNesting = () => `${[...head(`  labels:\n${Array.from({ length: 2000 }, (_, i) => `${' '.repeat(i + 4)}k${i}:`).join('\n')}`), node(0), node(1), node(2)].join('\n')}\n`

function time(args, rssFile, expectStatus) {
  const t0 = process.hrtime.bigint()
  const r = spawnSync(process.execPath, ['--import', join(root, 'bench/usage-probe.mjs'), join(root, 'bin/kupgrade.js'), ...args], {
    env: { ...process.env, KUPGRADE_BENCH_USAGE_FILE: rssFile, NO_COLOR: '1' },
    maxBuffer: 1024 * 1024 * 1024,
  })
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  if (r.status !== expectStatus) throw new Error(`kupgrade ${args.join(' ')} exited ${r.status}, expected ${expectStatus}: ${String(r.stderr).slice(0, 2000)}`)
  return { ms, bytes: r.stdout.length + r.stderr.length }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

export function benchHostile() {
  const dir = mkdtempSync(join(tmpdir(), 'kupgrade-bench-hostile-'))
  try {
    const hook = join(dir, 'hook.sh')
    writeFileSync(hook, '#!/bin/sh\n')
    chmodSync(hook, 0o755)
    const files = { big: bigCluster(hook), wide: unknownFields(), deep: deepNesting() }
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, `${name}.yaml`), text)
    const cases = [
      ['validate, 1 cluster of 10,000 nodes', ['validate', join(dir, 'big.yaml')], 0],
      ['plan --format json, 10,000 nodes', ['plan', join(dir, 'big.yaml'), '--format', 'json'], 0],
      ['plan (text), 10,000 nodes', ['plan', join(dir, 'big.yaml')], 0],
      ['validate, 150,000 unknown fields', ['validate', join(dir, 'wide.yaml')], 2],
      ['validate, nesting 2,000 deep', ['validate', join(dir, 'deep.yaml')], 2],
    ]
    console.log(`hostile-input benchmark: whole process, median of ${RUNS} runs`)
    for (const [label, args, status] of cases) {
      const rssFile = join(dir, `${label.replace(/\W+/g, '-')}.rss`)
      const runs = []
      let bytes = 0
      for (let i = 0; i < RUNS; i++) {
        const r = time(args, rssFile, status)
        runs.push(r.ms)
        bytes = r.bytes
      }
      const usage = readFileSync(rssFile, 'utf8').trim().split('\n').map((l) => l.split(' ').map(Number))
      const rss = Math.max(...usage.map((u) => u[0])) / 1024
      const cpu = median(usage.map((u) => u[1] + u[2]))
      console.log(`  kupgrade ${label.padEnd(38)} ${median(runs).toFixed(0)} ms wall (min ${Math.min(...runs).toFixed(0)}, max ${Math.max(...runs).toFixed(0)}), ${cpu} ms CPU, peak RSS ${rss.toFixed(0)} MiB, output ${(bytes / 1024).toFixed(0)} KiB`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) benchHostile()
