#!/usr/bin/env node
// Benchmark: fault → detection → rollback complete, on a lab run (k3s, 1 control plane + 1 worker), against dist/.
// The incident kubelet-kube-proxy-skew: kube-proxy on the worker stops syncing the moment it comes up at the new
// version (armed fault, ended by the rollback's restart). The lab runs in this process, `kupgrade apply --output json`
// in a child; the figures come from the lab's own clock for the fault and the run's events for the rest:
//   fault → first failing check   (the Ready wait, then the after-node gate's first look: that first check fails)
//   fault → gate verdict          (the wait keeps asking until spec.gates.wait.timeout before it calls a fail)
//   verdict → rollback done       (undo, restart at the old version, Ready, uncordon, post-gates again)
// Then a control plane that must come back from the pre-hop backup (k0s and kubeadm, 1 control-plane node + 2 workers,
// the control-plane node NotReady at the new version):
//   verdict → rollback done       (the previous version, the datastore restored, Ready, uncordon, post-gates again)
//   of which the restore          (the undo that restores the datastore, from its start to its end)
// Asserts nothing. Usage: node bench/rollback.mjs [--runs N]
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parse, stringify } from 'yaml'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const i = process.argv.indexOf('--runs')
const RUNS = i >= 0 ? Number(process.argv[i + 1]) : 1
const WAIT = { interval: '1s', stableFor: 2, timeout: '5s' }
const READY_TIMEOUT = '5s'
const KUBECTL = process.env.KUPGRADE_KUBECTL ?? '/usr/lib/google-cloud-sdk/bin/kubectl.1.32'
if (!existsSync(KUBECTL)) { console.log(`rollback: skipped (no kubectl at ${KUBECTL}; set KUPGRADE_KUBECTL)`); process.exit(0) }
// bin/kupgrade.js runs the bundle, which `npm run build` makes after tsc.
if (!existsSync(join(root, 'dist/bundle/main.js')) || !existsSync(join(root, 'dist/lab/lab.js'))) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' })
const load = (p) => import(pathToFileURL(join(root, 'dist', p)).href)
const { Lab } = await load('lab/lab.js')
const { probeIsolation } = await load('lab/node/index.js')
const { normalizeTopology } = await load('lab/topology.js')
try { await probeIsolation() } catch (err) { console.log(`rollback: skipped (lab isolation unavailable: ${err.message})`); process.exit(0) }

const s = (ms) => `${(ms / 1000).toFixed(2)}s`

/** `kupgrade apply --output json` of the lab's plan with onFailure rollback, from dist/: its exit code and events. */
async function applyRollback(dir, wait, afterNode) {
  const plan = join(dir, 'plan.yaml')
  const doc = parse(readFileSync(plan, 'utf8'))
  doc.spec.strategy.onFailure = 'rollback'
  doc.spec.gates = { ...doc.spec.gates, wait, ...(afterNode ? { afterNode } : {}) }
  writeFileSync(plan, stringify(doc))
  return cli(dir, ['apply', plan, '--output', 'json'])
}
/** The built CLI with `args` in the lab's folder: its exit code and NDJSON events. */
async function cli(dir, args) {
  const out = await new Promise((resolve) => {
    const p = spawn(process.execPath, [join(root, 'bin/kupgrade.js'), ...args], { cwd: dir, env: { PATH: process.env.PATH, HOME: dir, KUPGRADE_KUBECTL: KUBECTL, CI: '1' } })
    let text = ''
    p.stdout.on('data', (d) => (text += d))
    p.on('close', (code) => resolve({ code, text }))
  })
  return { code: out.code, ev: out.text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)) }
}
/** A started lab of one cluster, with the timing and mirror every scenario here shares. */
async function startLab(dir, name, cluster) {
  const lab = new Lab({ dir, topology: normalizeTopology({
    apiVersion: 'kupgrade.dev/v1alpha1', kind: 'LabTopology', metadata: { name },
    spec: {
      mirror: ['v1.29.6', 'v1.30.4'],
      timing: { serviceRestart: '100ms', readyDelay: '200ms', reboot: '300ms', drainEvictionDelay: '50ms' },
      clusters: [{ version: 'v1.29.6', ...cluster }],
    },
  }) })
  await lab.start()
  return lab
}

for (let run = 1; run <= RUNS; run++) {
  const NET = `127.${200 + (process.pid % 20)}.${20 + run}`
  const dir = mkdtempSync(join(tmpdir(), 'kupgrade-bench-rollback-'))
  const lab = await startLab(dir, 'bench-rollback', {
    name: 'rb', distribution: 'k3s', apiAddress: `${NET}.1`,
    nodes: [{ name: 'rb-cp-1', role: 'control-plane', address: `${NET}.11` }, { name: 'rb-w-1', role: 'worker', address: `${NET}.12` }],
    faults: [{ fault: 'kube-proxy-sync-failure', node: 'rb-w-1', params: { untilRestart: true, intervalMs: 500 }, when: { after: 'node-upgraded', node: 'rb-w-1' } }],
  })
  let firedAt
  lab.clusters.get('rb').model.on('faults', () => { if (firedAt === undefined && lab.clusters.get('rb').model.faults.size) firedAt = Date.now() })
  try {
    const t0 = Date.now()
    const out = await applyRollback(dir, WAIT)
    const ev = out.ev
    const at = (pred) => { const e = ev.find(pred); return e ? Date.parse(e.time) : undefined }
    const firstFail = at((e) => e.type === 'gate-check' && e.gate === 'kube-proxy-sync' && e.step.node === 'rb-w-1' && e.status === 'fail')
    const verdict = at((e) => e.type === 'gate-result' && e.gate === 'kube-proxy-sync' && e.step.node === 'rb-w-1' && e.status === 'fail')
    const rbStart = at((e) => e.type === 'rollback-started')
    const rbDone = at((e) => e.type === 'rollback-done')
    if (firedAt === undefined || firstFail === undefined || verdict === undefined || rbDone === undefined) {
      console.log(`rollback run ${run}: incomplete (exit ${out.code}; fault ${firedAt ? 'fired' : 'never fired'}, detection ${firstFail ? 'seen' : 'missing'}, rollback ${rbDone ? 'done' : 'not done'})`)
      continue
    }
    console.log(`rollback run ${run} (k3s 1+1, wait interval ${WAIT.interval} / timeout ${WAIT.timeout}, exit ${out.code}, whole apply ${s(Date.now() - t0)}):`)
    console.log(`  fault → first failing kube-proxy-sync check: ${s(firstFail - firedAt)}`)
    console.log(`  fault → gate verdict (wait timeout):          ${s(verdict - firedAt)}`)
    console.log(`  verdict → rollback started:                   ${s(rbStart - verdict)}`)
    console.log(`  verdict → rollback done (post-gates passed):  ${s(rbDone - verdict)}`)
  } finally {
    await lab.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

for (const [ci, dist] of ['k0s', 'kubeadm'].entries()) {
  for (let run = 1; run <= RUNS; run++) {
    const NET = `127.${200 + (process.pid % 20)}.${40 + ci * 10 + run}`
    const dir = mkdtempSync(join(tmpdir(), 'kupgrade-bench-restore-'))
    const node = (name, role, n, extra = {}) => ({ name, role, address: `${NET}.${n}`, ...(dist === 'kubeadm' ? { os: 'debian-12' } : {}), ...extra })
    const lab = await startLab(dir, 'bench-restore', {
      name: 'cr', distribution: dist, apiAddress: `${NET}.1`,
      nodes: [node('cr-cp-1', 'control-plane', 11, dist === 'k0s' ? { enableWorker: true } : {}), node('cr-w-1', 'worker', 12), node('cr-w-2', 'worker', 13)],
      faults: [{ fault: 'node-not-ready-after-upgrade', node: 'cr-cp-1' }],
    })
    try {
      const t0 = Date.now()
      // The Ready wait's timeout is the nodes-ready gate's: a short one, so that the verdict does not wait minutes.
      const { code, ev } = await applyRollback(dir, WAIT, [{ 'nodes-ready': { timeout: READY_TIMEOUT } }])
      const at = (pred) => { const e = ev.find(pred); return e ? Date.parse(e.time) : undefined }
      const verdict = at((e) => e.type === 'step-failed' && e.step.node === 'cr-cp-1')
      const restore = ev.find((e) => e.type === 'undo-started' && / from the pre-hop backup /.test(e.title))
      const restored = restore && ev.find((e) => e.type === 'undo-done' && e.step.id === restore.step.id)
      const rbDone = at((e) => e.type === 'rollback-done' && e.node === 'cr-cp-1')
      if (verdict === undefined || !restored || rbDone === undefined) {
        console.log(`restore ${dist} run ${run}: incomplete (exit ${code}; ${verdict ? 'failed' : 'no failure seen'}, restore ${restored ? 'done' : 'not done'}, rollback ${rbDone ? 'done' : 'not done'})`)
        continue
      }
      console.log(`restore ${dist} run ${run} (1 control-plane node + 2 workers, the control plane NotReady at the new version, Ready wait ${READY_TIMEOUT}; exit ${code}, whole apply ${s(Date.now() - t0)}):`)
      console.log(`  verdict → rollback done (post-gates passed):  ${s(rbDone - verdict)}`)
      console.log(`  of which the datastore restore:               ${s(Date.parse(restored.time) - Date.parse(restore.time))}`)
    } finally {
      await lab.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

// kupgrade restore: a finished k3s upgrade (one server, two agents) taken back to v1.29 from the hop's snapshot.
for (let run = 1; run <= RUNS; run++) {
  const NET = `127.${200 + (process.pid % 20)}.${70 + run}`
  const dir = mkdtempSync(join(tmpdir(), 'kupgrade-bench-restore-cmd-'))
  const lab = await startLab(dir, 'bench-restore-cmd', {
    name: 'rc', distribution: 'k3s', apiAddress: `${NET}.1`,
    nodes: [{ name: 'rc-cp-1', role: 'control-plane', address: `${NET}.11` }, { name: 'rc-w-1', role: 'worker', address: `${NET}.12` }, { name: 'rc-w-2', role: 'worker', address: `${NET}.13` }],
  })
  try {
    const plan = join(dir, 'plan.yaml')
    const up = await cli(dir, ['apply', plan, '--output', 'json'])
    const t0 = Date.now()
    const { code, ev } = await cli(dir, ['restore', plan, '--cluster', 'rc', '--yes', '--output', 'json'])
    const total = Date.now() - t0
    const at = (pred) => { const e = ev.find(pred); return e ? Date.parse(e.time) : undefined }
    const started = at((e) => e.type === 'run-started')
    const restore = ev.find((e) => e.type === 'step-started' && e.step.action === 'restore-datastore')
    const restored = restore && ev.find((e) => e.type === 'step-done' && e.step.id === restore.step.id)
    const finished = at((e) => e.type === 'run-finished')
    if (up.code !== 0 || code !== 0 || !restored || finished === undefined) {
      console.log(`restore command run ${run}: incomplete (apply exit ${up.code}, restore exit ${code}, datastore restore ${restored ? 'done' : 'not done'})`)
      continue
    }
    console.log(`restore command run ${run} (k3s 1 server + 2 agents at v1.30 back to v1.29, post-gates included; exit ${code}):`)
    console.log(`  kupgrade restore --yes, process start → exit:  ${s(total)}`)
    console.log(`  of which start-up and reading the fleet:      ${s(started - t0)}`)
    console.log(`  of which the datastore restore:               ${s(Date.parse(restored.time) - Date.parse(restore.time))}`)
    console.log(`  run started → finished:                       ${s(finished - started)}`)
  } finally {
    await lab.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}
