#!/usr/bin/env node
// Benchmark: facts from N nodes over SSH (default 100), against dist/. Prints, asserts nothing:
//   1. wall time of kupgrade's pooled, concurrent fact gathering (one SSH round trip per node),
//   2. the sum of single-node times (each node alone: connect + the same round trip), i.e. a sequential fleet,
//   3. a baseline of one OpenSSH `ssh` process per node per command, the same reads, at the same concurrency.
// Nodes are real lab nodes (src/lab/node: ssh2 sshd + bash stand-ins) when the lab can isolate nodes, else plain
// ssh2 servers running bash on 127.0.x.y. Usage: node bench/facts.mjs [--nodes N] [--concurrency C] [--no-baseline] [--plain] [--latency-ms L]
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : dflt
}
const N = Number(arg('nodes', process.env.BENCH_FACTS_NODES ?? 100))
const CONCURRENCY = Number(arg('concurrency', 10))
const BASELINE = !process.argv.includes('--no-baseline') && existsSync('/usr/bin/ssh')
// --latency-ms L (plain servers only): each exec answers L ms late, as a remote node doing its work on its own CPUs
// (or a far-away network) would. Shows the pool's shape when the nodes, not this machine, are the bottleneck.
const LATENCY = Number(arg('latency-ms', 0))

if (!existsSync(join(root, 'dist/facts/host-facts.js'))) {
  console.log('facts: building dist/ (npm run build) …')
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' })
}
const load = (p) => import(pathToFileURL(join(root, 'dist', p)).href)
const { SshPool } = await load('transport/ssh/pool.js')
const { readHostFacts } = await load('facts/host-facts.js')
const ssh2 = (await import('ssh2')).default

const dir = mkdtempSync(join(tmpdir(), 'kupgrade-bench-facts-'))
const goodKey = () => {
  // ssh2's ed25519 generator occasionally drops a leading zero byte; such keys do not parse back.
  for (;;) {
    const k = ssh2.utils.generateKeyPairSync('ed25519')
    if (!(ssh2.utils.parseKey(k.public) instanceof Error) && !(ssh2.utils.parseKey(k.private) instanceof Error)) return k
  }
}
const client = goodKey()
const keyFile = join(dir, 'id_ed25519')
writeFileSync(keyFile, client.private, { mode: 0o600 })
const addr = (i) => `127.${230 + (process.pid % 20)}.${Math.floor(i / 250)}.${(i % 250) + 1}`
const DISTS = ['k3s', 'k0s', 'kubeadm']
const VERSIONS = { k3s: 'v1.29.2+k3s1', k0s: 'v1.29.2+k0s.0', kubeadm: 'v1.29.2' }

/** Lab nodes when the lab module and its isolation are available. */
async function labFleet() {
  if (process.argv.includes('--plain') || LATENCY > 0) return undefined
  let lab
  try {
    lab = await load('lab/node/index.js')
    await lab.probeIsolation()
  } catch (err) {
    console.log(`facts: lab nodes unavailable (${err.message}); using plain ssh2 servers`)
    return undefined
  }
  const nodes = Array.from({ length: N }, (_, i) => new lab.LabNode({
    cluster: `bench-${DISTS[i % 3]}`, name: `node-${i}`, role: i < 3 ? 'control-plane' : 'worker', distribution: DISTS[i % 3],
    address: addr(i), port: 2222, os: ['ubuntu-22.04', 'debian-12', 'rocky-9', 'flatcar'][i % 4], iptablesBackend: 'nf_tables',
    disk: { totalBytes: 40 * 2 ** 30, usedBytes: 10 * 2 ** 30 }, rootDir: join(dir, `node-${i}`), version: VERSIONS[DISTS[i % 3]],
    mirror: [VERSIONS[DISTS[i % 3]]], timing: {}, authorizedKeys: [Buffer.from(client.public)], hostKey: goodKey().private,
  }))
  for (let i = 0; i < nodes.length; i += 10) await Promise.all(nodes.slice(i, i + 10).map((n) => n.start()))
  return { kind: 'lab nodes (ssh2 sshd, bash stand-ins in a private mount namespace)', hosts: nodes.map((n) => ({ host: n.options.address, port: 2222, dist: n.options.distribution, hostKey: n.hostKeyPublic })), stop: () => Promise.all(nodes.map((n) => n.stop())) }
}

/** Fallback: ssh2 servers that run each exec in bash. */
async function plainFleet() {
  const pub = ssh2.utils.parseKey(client.public)
  const servers = []
  const hosts = []
  for (let i = 0; i < N; i++) {
    const hk = goodKey()
    const srv = new ssh2.Server({ hostKeys: [hk.private] }, (c) => {
      c.on('error', () => {})
      c.on('authentication', (ctx) => (ctx.method === 'publickey' && ctx.key.data.equals(pub.getPublicSSH()) && (!ctx.signature || pub.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) ? ctx.accept() : ctx.reject(['publickey'])))
      c.on('session', (accept) => accept().on('exec', (acc, _r, info) => {
        const s = acc()
        const p = spawn('/bin/bash', ['-c', info.command])
        p.stdout.pipe(s, { end: false })
        p.stderr.on('data', (d) => s.stderr.write(d))
        p.on('close', (code) => setTimeout(() => { s.exit(code ?? 255); s.end() }, LATENCY))
      }))
    })
    srv._srv.on('connection', (sock) => sock.setNoDelay(true))
    await new Promise((r) => srv.listen(2222, addr(i), r))
    servers.push(srv)
    hosts.push({ host: addr(i), port: 2222, dist: DISTS[i % 3], hostKey: ssh2.utils.parseKey(hk.public).getPublicSSH().toString('base64') })
  }
  return { kind: `plain ssh2 servers running bash${LATENCY ? `, each exec answering ${LATENCY} ms late` : ''}`, hosts: hosts.map((h) => ({ ...h, hostKey: `ssh-ed25519 ${h.hostKey}` })), stop: () => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))) }
}

const fleet = (await labFleet()) ?? (await plainFleet())
const knownHosts = join(dir, 'known_hosts')
writeFileSync(knownHosts, fleet.hosts.map((h) => `[${h.host}]:${h.port} ${h.hostKey}\n`).join(''))
const target = (h, i) => ({ cluster: 'bench', node: `node-${i}`, host: h.host, port: h.port, user: 'root', identityFiles: [keyFile], knownHosts })
const newPool = (concurrency = CONCURRENCY) => new SshPool({ sshConfigFile: null, env: {}, home: dir, concurrency })
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6

try {
  // Warm-up: first exec per node pays bash/page-cache costs that a real fleet would not share with us.
  { const p = newPool(); await Promise.all(fleet.hosts.map((h, i) => readHostFacts(p, target(h, i), h.dist))); await p.close() }

  const t0 = process.hrtime.bigint()
  const pool = newPool()
  const facts = await Promise.all(fleet.hosts.map((h, i) => readHostFacts(pool, target(h, i), h.dist)))
  const wall = ms(t0)
  await pool.close()
  const versions = new Set(facts.map((f) => f.installedVersion ?? '?'))

  // The transport's own floor: connect + one trivial exec per node, same concurrency, no facts script.
  const tTrue = process.hrtime.bigint()
  const pTrue = newPool()
  await Promise.all(fleet.hosts.map((h, i) => pTrue.read(target(h, i), ['true'])))
  const trivial = ms(tTrue)
  await pTrue.close()

  let sum = 0
  let slowest = 0
  for (const [i, h] of fleet.hosts.entries()) {
    const p = newPool(1)
    const t = process.hrtime.bigint()
    await readHostFacts(p, target(h, i), h.dist)
    const one = ms(t)
    sum += one
    slowest = Math.max(slowest, one)
    await p.close()
  }

  let baseline
  if (BASELINE) {
    // The same reads as the node script, one `ssh` process per command, as a shell loop over the fleet would do
  // (xargs -P CONCURRENCY style).
    const commands = ['cat /etc/os-release', 'uname -r', 'k3s --version', 'k0s version', 'kubeadm version -o short', 'kubelet --version',
      'systemctl is-active k3s k3s-agent k0scontroller k0sworker kubelet', 'iptables -V', 'df -P -B1 / /var', 'test -e /var/run/reboot-required',
      'needs-restarting -r', 'update_engine_client -status', 'command -v apt-get dnf yum update_engine_client']
    const jobs = fleet.hosts.flatMap((h) => commands.map((c) => [h, c]))
    const runOne = ([h, c]) => new Promise((resolve) => {
      const p = spawn('ssh', ['-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null',
        '-o', 'LogLevel=ERROR', '-i', keyFile, '-p', String(h.port), `root@${h.host}`, c], { stdio: 'ignore' })
      p.on('close', resolve)
    })
    const t = process.hrtime.bigint()
    let next = 0
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (next < jobs.length) await runOne(jobs[next++]) }))
    baseline = { ms: ms(t), processes: jobs.length }
  }

  const f = (x) => `${(x / 1000).toFixed(2)} s`
  console.log(`facts: ${N} nodes, ${fleet.kind}; ${versions.size} distinct installed versions read`)
  console.log(`  kupgrade pooled (${CONCURRENCY} handshakes at a time): ${f(wall)}  (one SSH round trip per node)`)
  console.log(`  floor: connect + \`true\` on every node:    ${f(trivial)}  (the rest is the nodes running the facts script on this machine's CPUs)`)
  console.log(`  sum of single-node times (sequential):   ${f(sum)}  (slowest single node ${(slowest).toFixed(0)} ms)`)
  console.log(`  ratio wall / sum:                        ${(wall / sum).toFixed(3)}  (wall is ${(sum / wall).toFixed(1)}× faster than one node after another)`)
  console.log(`  ratio wall / slowest node:               ${(wall / slowest).toFixed(1)}`)
  if (baseline) {
    console.log(`  baseline: ${baseline.processes} OpenSSH ssh processes (1/node/command), concurrency ${CONCURRENCY}: ${f(baseline.ms)}`)
    console.log(`  ratio baseline / kupgrade:               ${(baseline.ms / wall).toFixed(1)}×`)
  }
} finally {
  await fleet.stop()
  rmSync(dir, { recursive: true, force: true })
}
