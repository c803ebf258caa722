import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { moduleFor, programFor } from '../../src/drivers/registry.js'
import type { DriverNodeFacts } from '../../src/drivers/types.js'
import { probeIsolation } from '../../src/lab/node/index.js'
import type { LabNodeOptions } from '../../src/lab/node/index.js'
import { parsePlan } from '../../src/plan/load.js'
import type { Distribution } from '../../src/plan/versions.js'
import { buildExecutionPlan } from '../../src/planner/build.js'
import type { Step } from '../../src/planner/types.js'
import { SshPool } from '../../src/transport/ssh/pool.js'
import type { NodeTarget } from '../../src/transport/types.js'
import { startLabFleet, type LabFleet } from '../facts/helpers/lab-fleet.js'
import { available } from '../helpers/required.js'
import { checkAll, runAll } from './helpers/run-program.js'

/**
 * Each driver's programs, run for real over SSH against lab nodes, step by step for one node, without the executor:
 * verify does not hold → run → verify holds; then the undo programs in reverse → the node is back at its old version.
 * The steps are the planner's own for a plan of the same cluster, so what `plan` prints is what was run here.
 */
const isolation = available(await probeIsolation().then(() => true, () => false), 'lab node isolation (mount namespaces: unshare -m, or user namespaces)', 'run as root, or enable unprivileged user namespaces')

interface NodeSpec { name: string; cluster: string; role: 'control-plane' | 'worker'; dist: Distribution; os: LabNodeOptions['os']; from: string; to: string }
const NODES: NodeSpec[] = [
  { name: 'server', cluster: 'k3s', role: 'control-plane', dist: 'k3s', os: 'ubuntu-22.04', from: 'v1.29.2+k3s1', to: 'v1.30.4+k3s1' },
  { name: 'agent-1', cluster: 'k3s', role: 'worker', dist: 'k3s', os: 'ubuntu-22.04', from: 'v1.29.2+k3s1', to: 'v1.30.4+k3s1' },
  { name: 'agent-2', cluster: 'k3s', role: 'worker', dist: 'k3s', os: 'debian-12', from: 'v1.29.2+k3s1', to: 'v1.30.4+k3s1' },
  { name: 'ctrl-1', cluster: 'k0s', role: 'control-plane', dist: 'k0s', os: 'ubuntu-22.04', from: 'v1.29.2+k0s.0', to: 'v1.30.4+k0s.0' },
  { name: 'cp-1', cluster: 'kubeadm', role: 'control-plane', dist: 'kubeadm', os: 'ubuntu-22.04', from: 'v1.29.2', to: 'v1.30.4' },
  { name: 'w-1', cluster: 'kubeadm', role: 'worker', dist: 'kubeadm', os: 'rocky-9', from: 'v1.29.2', to: 'v1.30.4' },
]
const PM: Record<LabNodeOptions['os'], DriverNodeFacts['packageManager']> = { 'ubuntu-22.04': 'apt', 'debian-12': 'apt', 'rocky-9': 'dnf', flatcar: 'flatcar' }

/** The planner's steps for one cluster of the lab, OS upgrade included. */
function planned(cluster: string, os = false, install?: { path?: string; mirror?: string }): Step[] {
  const nodes = NODES.filter((n) => n.cluster === cluster)
  const r = parsePlan('lab.yaml', JSON.stringify({
    apiVersion: 'kupgrade.dev/v1alpha1', kind: 'UpgradePlan', metadata: { name: 'drivers-lab' },
    spec: {
      target: { kubernetes: 'v1.30.4', ...(os ? { os: { packages: 'all', reboot: 'if-required' } } : {}) },
      stages: [{ name: 's', clusters: [cluster] }],
      clusters: [{ name: cluster, distribution: nodes[0]!.dist, from: nodes[0]!.from, apiEndpoint: 'https://127.0.80.250:6443', ...(install ? { install } : {}), nodes: nodes.map((n) => ({ name: n.name, host: '127.0.0.1', role: n.role })) }],
    },
  }))
  if (!r.plan) throw new Error(r.problems.map((p) => p.message).join('\n'))
  return buildExecutionPlan(r.plan).steps
}

/** A node's steps whose programs come from its distribution driver (or the OS module), in plan order. */
const driverSteps = (steps: Step[], node: string, dist: Distribution, withOs = false): Step[] =>
  steps.filter((s) => (s.node === node) && (() => { try { const m = moduleFor(s.action, dist).name; return m === dist || (withOs && m === 'os') } catch { return false } })())

describe.skipIf(!isolation)('driver programs on lab nodes, over SSH, without the executor', () => {
  let fleet: LabFleet
  let pool: SshPool
  const target = (name: string): NodeTarget => {
    const i = NODES.findIndex((n) => n.name === name)
    // Everyone but the k3s server logs in as a sudo user, so privileged commands go through `sudo -n`.
    return fleet.target(i, name === 'server' ? {} : { user: 'ops', sudo: true })
  }
  const node = (name: string) => fleet.nodes[NODES.findIndex((n) => n.name === name)]!
  const sh = async (name: string, command: string) => (await pool.read(target(name), { script: command }, { okExitCodes: [0, 1, 2, 3, 127] })).stdout

  beforeAll(async () => {
    fleet = await startLabFleet(NODES.length, (i) => {
      const n = NODES[i]!
      return {
        cluster: n.cluster, name: n.name, role: n.role, distribution: n.dist, os: n.os, version: n.from, mirror: [n.from, n.to],
        address: `127.0.80.${i + 1}`, users: [{ name: 'ops', sudo: true }],
        timing: { serviceStartMs: 50, rebootMs: 300, kubeProxySyncMs: 100 },
      }
    })
    pool = new SshPool({ sshConfigFile: null, env: {}, home: fleet.dir })
  }, 120_000)
  afterAll(async () => {
    await pool?.close()
    await fleet?.stop()
  })

  /** verify → run → verify for each step; returns the steps done, for the undo pass. */
  async function forward(name: string, dist: Distribution, steps: Step[]): Promise<Step[]> {
    const facts = { packageManager: PM[NODES.find((n) => n.name === name)!.os] }
    const done: Step[] = []
    for (const step of steps) {
      const p = programFor(step, { distribution: dist, node: facts })
      const before = await checkAll(pool, target(name), p.verify)
      if (p.verify.length > 0) expect(before.holds, `${step.id} verify before run:\n${before.seen.join('\n')}`).toBe(false)
      await runAll(pool, target(name), p.run)
      const after = await checkAll(pool, target(name), p.verify)
      expect(after.holds, `${step.id} verify after run:\n${after.seen.join('\n')}`).toBe(true)
      done.push(step)
    }
    return done
  }

  /** The done steps' undo programs in reverse; each undo's own verify holds after it ran. */
  async function backward(name: string, dist: Distribution, done: Step[]): Promise<string[]> {
    const facts = { packageManager: PM[NODES.find((n) => n.name === name)!.os] }
    const undone: string[] = []
    for (const step of [...done].reverse()) {
      const p = programFor(step, { distribution: dist, node: facts })
      if (!('run' in p.undo)) continue
      const verify = p.undo.verify ?? []
      const pre = await checkAll(pool, target(name), verify)
      if (!(verify.length > 0 && pre.holds)) await runAll(pool, target(name), p.undo.run)
      const post = await checkAll(pool, target(name), verify)
      expect(post.holds, `${step.id} undo:\n${post.seen.join('\n')}`).toBe(true)
      undone.push(step.action)
    }
    return undone
  }

  it('k3s server: datastore backup, binary kept, install script upgrade, restart; the only server comes back from its snapshot', async () => {
    const steps = planned('k3s')
    const backup = steps.find((s) => s.action === 'backup')!
    expect(backup.node).toBe('server')
    const mine = driverSteps(steps, 'server', 'k3s')
    expect(mine.map((s) => s.action)).toEqual(['backup', 'backup-files', 'replace-binary', 'restart'])
    const done = await forward('server', 'k3s', mine)
    expect(await sh('server', 'k3s --version')).toMatch(/^k3s version v1\.30\.4\+k3s1 /)
    expect(node('server').getState()).toMatchObject({ installedVersion: 'v1.30.4+k3s1', runningVersion: 'v1.30.4+k3s1' })
    expect(await sh('server', 'ls /var/lib/kupgrade/backup/v1.29.2+k3s1/')).toMatch(/SHA256SUMS/)
    // A server that moved a minor is not downgraded by its binary (k3s with etcd refuses, and so does the lab): the only
    // server's undo is the documented restore from the pre-hop snapshot, with the kept binary.
    const restore = programFor(mine.find((s) => s.action === 'replace-binary')!, { distribution: 'k3s', node: { packageManager: 'apt' } })
    expect(restore.undo).toMatchObject({ title: expect.stringContaining('--cluster-reset --cluster-reset-restore-path=') })
    expect(await backward('server', 'k3s', done)).toEqual(['replace-binary'])
    expect(await sh('server', 'k3s --version')).toMatch(/^k3s version v1\.29\.2\+k3s1 /)
    expect(await sh('server', 'systemctl is-active k3s')).toBe('active\n')
    expect(await sh('server', 'test -f /var/lib/rancher/k3s/server/db/reset-flag && echo reset')).toBe('reset\n')
  }, 120_000)

  it('k3s server: a backup killed after the snapshot was saved but before its checksum list was written is not taken as done', async () => {
    const backup = programFor(planned('k3s').find((s) => s.action === 'backup')!, { distribution: 'k3s', node: { packageManager: 'apt' } })
    const snaps = '/var/lib/kupgrade/backup/v1.29.2+k3s1/etcd-snapshot'
    // k3s names a snapshot <name>-<node>-<unix seconds>: a save within the same second as the first test's replaces it.
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 20))
    await runAll(pool, target('server'), backup.run)
    expect((await checkAll(pool, target('server'), backup.verify)).holds).toBe(true)
    // The first test's snapshot of this hop was pruned by k3s once this one's list was written: one stays, the list's.
    const left = (await sh('server', `ls ${snaps}/kupgrade-*`)).trim().split('\n')
    expect(left).toHaveLength(1)
    expect(await sh('server', `cat ${snaps}/SHA256SUMS`)).toMatch(new RegExp(`^[0-9a-f]{64}  ${left[0]!.split('/').pop()}\n$`))
    // Killed between `k3s etcd-snapshot save` and the list: the snapshot is there, nothing vouches for it.
    await sh('server', `rm ${snaps}/SHA256SUMS`)
    const killed = await checkAll(pool, target('server'), backup.verify)
    expect(killed.holds, killed.seen.join('\n')).toBe(false)
    // A list that no longer matches its snapshot is no backup either.
    await runAll(pool, target('server'), backup.run)
    await sh('server', `f=$(ls -1t ${snaps}/kupgrade-* | head -n 1); echo torn >> "$f"`)
    expect((await checkAll(pool, target('server'), backup.verify)).holds).toBe(false)
    await runAll(pool, target('server'), backup.run)
    expect((await checkAll(pool, target('server'), backup.verify)).holds).toBe(true)
  }, 120_000)

  it("k3s agent: the install script is given the agent's K3S_URL/K3S_TOKEN and arguments again", async () => {
    const unit = join(node('agent-1').paths.root, 'etc/systemd/system/k3s-agent.service')
    const env = `${unit}.env`
    writeFileSync(env, "K3S_URL='https://127.0.80.1:6443'\nK3S_TOKEN='K10abc::server:s3cr3t'\n")
    // As install.sh writes it (quote_indent): one quoted word per line, each ending ` \`, then an empty line.
    writeFileSync(unit, readFileSync(unit, 'utf8').replace(/^ExecStart=.*$/m, "ExecStart=/usr/local/bin/k3s \\\n    agent \\\n\t'--node-label' \\\n\t'tier=edge zone' \\\n"))
    const mine = driverSteps(planned('k3s'), 'agent-1', 'k3s')
    expect(mine.map((s) => s.action)).toEqual(['backup-files', 'replace-binary', 'restart'])
    // What the install script is run with: record it from inside the node's own sh (the lab's installer keeps an
    // existing unit and env file, so the record is the proof that they were passed, not the files).
    const record = join(node('agent-1').paths.root, 'root/install-args')
    const install = join(node('agent-1').paths.lab, 'get.k3s.io.sh')
    const original = readFileSync(install, 'utf8')
    writeFileSync(install, original.replace('set -e\n', `set -e\nprintf '%s\\n' "K3S_URL=$K3S_URL" "K3S_TOKEN=$K3S_TOKEN" "$@" > /root/install-args\n`))
    try {
      await forward('agent-1', 'k3s', mine)
    } finally {
      writeFileSync(install, original)
    }
    expect(readFileSync(record, 'utf8')).toBe("K3S_URL=https://127.0.80.1:6443\nK3S_TOKEN=K10abc::server:s3cr3t\nagent\n--node-label\ntier=edge zone\n")
    expect(node('agent-1').getState()).toMatchObject({ installedVersion: 'v1.30.4+k3s1', runningVersion: 'v1.30.4+k3s1' })
  }, 120_000)

  it('k3s agent: an install killed after install.sh deleted the unit is not taken as done, and its re-run gives the node its kept arguments back', async () => {
    const unit = join(node('agent-2').paths.root, 'etc/systemd/system/k3s-agent.service')
    writeFileSync(`${unit}.env`, "K3S_URL='https://127.0.80.1:6443'\nK3S_TOKEN='K10abc::server:s3cr3t'\n")
    writeFileSync(unit, readFileSync(unit, 'utf8').replace(/^ExecStart=.*$/m, "ExecStart=/usr/local/bin/k3s \\\n    agent \\\n\t'--node-label' \\\n\t'tier=edge' \\\n"))
    const mine = driverSteps(planned('k3s'), 'agent-2', 'k3s')
    expect(mine.map((s) => s.action)).toEqual(['backup-files', 'replace-binary', 'restart'])
    const [keep, replace, restart] = mine.map((s) => programFor(s, { distribution: 'k3s', node: { packageManager: 'apt' } }))
    await runAll(pool, target('agent-2'), keep!.run)
    await runAll(pool, target('agent-2'), replace!.run)
    // What install.sh's systemd_disable leaves when the run dies right after it: the new binary, no unit, no env file.
    await sh('agent-2', 'sudo rm -f /etc/systemd/system/k3s-agent.service /etc/systemd/system/k3s-agent.service.env')
    const after = await checkAll(pool, target('agent-2'), replace!.verify)
    expect(after.holds, `the binary is new but the unit is gone: the install is not done\n${after.seen.join('\n')}`).toBe(false)
    await runAll(pool, target('agent-2'), replace!.run)
    expect((await checkAll(pool, target('agent-2'), replace!.verify)).holds).toBe(true)
    // (laid out as install.sh writes it: quote_indent, one quoted word per line)
    expect(readFileSync(unit, 'utf8')).toContain("\nExecStart=/usr/local/bin/k3s \\\n    agent \\\n\t'--node-label' \\\n\t'tier=edge' \\\n\n")
    expect(readFileSync(`${unit}.env`, 'utf8')).toMatch(/^K3S_URL=.?https:\/\/127\.0\.80\.1:6443/m)
    await runAll(pool, target('agent-2'), restart!.run)
    expect(node('agent-2').getState()).toMatchObject({ installedVersion: 'v1.30.4+k3s1', runningVersion: 'v1.30.4+k3s1' })
    // Back to where the next tests expect agent-2: the worker's undo puts the kept binary back.
    expect(await backward('agent-2', 'k3s', mine.slice(0, 2))).toEqual(['replace-binary'])
    expect(await sh('agent-2', 'k3s --version')).toMatch(/^k3s version v1\.29\.2\+k3s1 /)
  }, 120_000)

  it('OS upgrade and a reboot the OS asked for: verify reads the signal, the reboot clears it', async () => {
    const steps = driverSteps(planned('k3s', true), 'agent-2', 'k3s', true).filter((s) => s.action === 'os-upgrade' || s.action === 'reboot')
    expect(steps.map((s) => s.action)).toEqual(['os-upgrade', 'reboot'])
    const [upgrade, reboot] = steps.map((s) => programFor(s, { distribution: 'k3s', node: { packageManager: 'apt' } }))
    expect((await checkAll(pool, target('agent-2'), reboot!.verify)).holds).toBe(true)
    await runAll(pool, target('agent-2'), upgrade!.run)
    expect((await checkAll(pool, target('agent-2'), reboot!.verify)).holds, 'the upgrade staged a kernel: reboot required').toBe(false)
    expect(reboot!.run[0]).toMatchObject({ disconnects: true })
    await runAll(pool, target('agent-2'), reboot!.run)
    const deadline = Date.now() + 30_000
    for (;;) {
      const back = await checkAll(pool, target('agent-2'), reboot!.verify).catch(() => undefined)
      if (back?.holds) break
      if (Date.now() > deadline) throw new Error('agent-2 did not come back without a reboot signal')
      await new Promise((r) => setTimeout(r, 200))
    }
  }, 120_000)

  it('k3s air-gapped: a binary from a node-local directory is checked against the release checksums before it replaces anything', async () => {
    const root = node('agent-2').paths.root
    const rel = 'v1.30.4+k3s1'
    mkdirSync(join(root, 'root/airgap', rel), { recursive: true })
    const replace = driverSteps(planned('k3s', false, { path: '/root/airgap' }), 'agent-2', 'k3s').find((s) => s.action === 'replace-binary')!
    const p = programFor(replace, { distribution: 'k3s', node: { packageManager: 'apt' } })
    // A directory without this machine's binary (only another architecture's): said which, nothing replaced.
    writeFileSync(join(root, 'root/airgap', rel, 'k3s-arm64'), 'not this one')
    const absent = await runAll(pool, target('agent-2'), p.run).catch((e: Error) => e)
    expect(String(absent)).toContain('kupgrade: cannot get k3s (k3s v1.30.4+k3s1 for x86_64) from /root/airgap/v1.30.4+k3s1/')
    expect(await sh('agent-2', 'k3s --version')).toMatch(/^k3s version v1\.29\.2\+k3s1 /)
    const binary = readFileSync(join(node('agent-2').paths.lab, 'mirror', rel, 'k3s'))
    writeFileSync(join(root, 'root/airgap', rel, 'k3s'), binary)
    writeFileSync(join(root, 'root/airgap', rel, 'sha256sum-amd64.txt'), `${'0'.repeat(64)}  k3s\n`)
    expect(replace.title).toContain('from /root/airgap/v1.30.4+k3s1/: the binary for the node')
    const err = await runAll(pool, target('agent-2'), p.run).catch((e: Error) => e)
    expect(String(err)).toMatch(/FAILED|did NOT match/)
    expect(await sh('agent-2', 'k3s --version')).toMatch(/^k3s version v1\.29\.2\+k3s1 /)
    writeFileSync(join(root, 'root/airgap', rel, 'sha256sum-amd64.txt'), `${createHash('sha256').update(binary).digest('hex')}  k3s\n`)
    await runAll(pool, target('agent-2'), p.run)
    expect((await checkAll(pool, target('agent-2'), p.verify)).holds).toBe(true)
  }, 120_000)

  it("k3s air-gapped with images archives: the release's archive is checked before anything moves, the old one kept", async () => {
    const root = node('agent-2').paths.root
    const rel = 'v1.30.4+k3s1'
    const folder = join(root, 'root/airgap', rel)
    const images = join(root, 'var/lib/rancher/k3s/agent/images')
    const kept = '/var/lib/kupgrade/backup/v1.29.2+k3s1/airgap-images'
    // The node loads its images from an archive (k3s's air-gap method); the folder already holds the release's binary
    // and its checksum list (the test before this one).
    mkdirSync(images, { recursive: true })
    writeFileSync(join(images, 'k3s-airgap-images-amd64.tar.zst'), 'the v1.29.2 images\n')
    const archive = 'the v1.30.4 images\n'
    const replace = driverSteps(planned('k3s', false, { path: '/root/airgap' }), 'agent-2', 'k3s').find((s) => s.action === 'replace-binary')!
    const p = programFor(replace, { distribution: 'k3s', node: { packageManager: 'apt' } })
    // No archive in the folder (the release-source pre-gate says the same before a run; here the fetch itself does).
    const none = await runAll(pool, target('agent-2'), p.run).catch((e: Error) => e)
    expect(String(none)).toContain('kupgrade: this node loads the k3s images from archives in /var/lib/rancher/k3s/agent/images (air-gapped), and /root/airgap/v1.30.4+k3s1/ has no k3s-airgap-images-amd64.tar.zst, .tar.gz, .tar (k3s v1.30.4+k3s1 for x86_64): put the images archive of the release there, listed in sha256sum-amd64.txt, then resume')
    expect(readFileSync(join(images, 'k3s-airgap-images-amd64.tar.zst'), 'utf8')).toBe('the v1.29.2 images\n')
    writeFileSync(join(folder, 'k3s-airgap-images-amd64.tar.zst'), 'damaged in transit\n')
    const sums = join(folder, 'sha256sum-amd64.txt')
    writeFileSync(sums, `${readFileSync(sums, 'utf8')}${createHash('sha256').update(archive).digest('hex')}  k3s-airgap-images-amd64.tar.zst\n`)
    const bad = await runAll(pool, target('agent-2'), p.run).catch((e: Error) => e)
    expect(String(bad)).toContain('kupgrade: k3s-airgap-images-amd64.tar.zst from /root/airgap/v1.30.4+k3s1/ does NOT match its checksum in sha256sum-amd64.txt')
    expect(readFileSync(join(images, 'k3s-airgap-images-amd64.tar.zst'), 'utf8')).toBe('the v1.29.2 images\n')
    // Nothing kept, and the damaged download gone with the folder it was fetched into.
    expect(await sh('agent-2', `sudo test -e ${kept} || sudo test -e /var/lib/rancher/k3s/agent/images.kupgrade-new; echo $?`)).toBe('1\n')
    writeFileSync(join(folder, 'k3s-airgap-images-amd64.tar.zst'), archive)
    await runAll(pool, target('agent-2'), p.run)
    expect(readFileSync(join(images, 'k3s-airgap-images-amd64.tar.zst'), 'utf8')).toBe(archive)
    expect(await sh('agent-2', `sudo cat ${kept}/k3s-airgap-images-amd64.tar.zst`)).toBe('the v1.29.2 images\n')
    // The node as the next tests expect it: no archives.
    await sh('agent-2', `sudo rm -rf /var/lib/rancher/k3s/agent/images ${kept}`)
  }, 120_000)

  it('k0s controller: k0s backup, binary kept, k0s stop, get.k0s.sh, k0s start; the only controller comes back from its k0s backup', async () => {
    const steps = planned('k0s')
    const mine = driverSteps(steps, 'ctrl-1', 'k0s')
    expect(mine.map((s) => s.action)).toEqual(['backup', 'backup-files', 'stop-service', 'replace-binary', 'start-service'])
    const unit = await sh('ctrl-1', 'cat /etc/systemd/system/k0scontroller.service')
    const done = await forward('ctrl-1', 'k0s', mine)
    expect(await sh('ctrl-1', 'k0s version')).toBe('v1.30.4+k0s.0\n')
    expect(await sh('ctrl-1', 'ls /var/lib/kupgrade/backup/v1.29.2+k0s.0/k0s-backup')).toMatch(/k0s_backup_.*\.tar\.gz/)
    // As with k3s: k0s does not support a controller downgrade, and its old binary alone does not come up on the newer
    // datastore (test/lab/downgrade-restore.test.ts). The only controller's undo is the documented restore: reset
    // (k0s restore refuses the controller's own etcd data), restore, its unit back (reset removed it), start.
    const replace = done.find((s) => s.action === 'replace-binary')!
    expect(replace.undo).toMatchObject({ action: 'restore-datastore', params: { kind: 'k0s' } })
    expect(await backward('ctrl-1', 'k0s', done)).toEqual(['replace-binary', 'stop-service'])
    expect(await sh('ctrl-1', 'sudo k0s status | grep ^Version')).toBe('Version: v1.29.2+k0s.0\n')
    expect(await sh('ctrl-1', 'cat /etc/systemd/system/k0scontroller.service')).toBe(unit)
    expect(node('ctrl-1').getState()).toMatchObject({ installedVersion: 'v1.29.2+k0s.0', runningVersion: 'v1.29.2+k0s.0', serviceActive: true })
  }, 120_000)

  it('kubeadm first control plane (apt): snapshot, files kept, repository switched, unhold, kubeadm, upgrade apply, kubelet+kubectl, restart, hold; undo back to v1.29', async () => {
    const steps = planned('kubeadm')
    const mine = driverSteps(steps, 'cp-1', 'kubeadm')
    expect(mine.map((s) => s.action)).toEqual(['backup', 'backup-files', 'switch-repo', 'unhold-packages', 'upgrade-package', 'upgrade-control-plane', 'upgrade-package', 'restart', 'hold-packages'])
    const done = await forward('cp-1', 'kubeadm', mine)
    expect(await sh('cp-1', 'kubeadm version -o short; kubelet --version; apt-mark showhold')).toBe('v1.30.4\nKubernetes v1.30.4\nkubeadm\nkubectl\nkubelet\n')
    expect(await sh('cp-1', 'cat /etc/apt/sources.list.d/kubernetes.list')).toContain('pkgs.k8s.io/core:/stable:/v1.30/deb/')
    // upgrade apply is undone by the snapshot restore (the only control-plane node), which needs a served API to see
    // it stopped and back: proven in test/executor/rollback-restore-kubeadm.e2e.test.ts. Everything else here.
    const apply = done.find((s) => s.action === 'upgrade-control-plane')!
    expect(apply.undo).toEqual({ action: 'restore-datastore', params: { kind: 'kubeadm', dir: '/var/lib/kupgrade/backup/v1.29.2', snapshot: '/var/lib/kupgrade/backup/v1.29.2/etcd-snapshot.db', release: 'v1.29.2' } })
    expect(await backward('cp-1', 'kubeadm', done.filter((s) => s !== apply))).toEqual(['hold-packages', 'upgrade-package', 'upgrade-package', 'unhold-packages', 'switch-repo'])
    expect(await sh('cp-1', 'kubeadm version -o short; kubelet --version; apt-mark showhold')).toBe('v1.29.2\nKubernetes v1.29.2\nkubeadm\nkubectl\nkubelet\n')
    expect(await sh('cp-1', 'cat /etc/apt/sources.list.d/kubernetes.list')).toContain('pkgs.k8s.io/core:/stable:/v1.29/deb/')
  }, 180_000)

  it("kubeadm, before a restore of several members stops anything: the node's etcd manifest must name it as the plan does", async () => {
    const dir = '/var/lib/kupgrade/backup/prepare-test'
    const snapshot = `${dir}/etcd-snapshot.db`
    await runAll(pool, target('cp-1'), [{ on: 'node', command: { script: `mkdir -p ${dir} && ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 snapshot save ${snapshot} >/dev/null 2>&1 && sha256sum ${snapshot} > ${snapshot}.sha256` }, why: 'a snapshot to restore' }])
    const step = (peerURL: string): Step => ({
      id: 's/kubeadm/hop1/restore/1-cp-1-prepare-etcd-restore', title: '', phase: 'control-plane', stage: 's', cluster: 'kubeadm', hop: 1, node: 'cp-1', role: 'control-plane', mutates: true,
      action: 'prepare-etcd-restore', params: { kind: 'kubeadm', dir, snapshot, release: 'v1.29.2', member: 'cp-1', peerURL },
    })
    // No files kept in this folder: the node's own manifest says who it is (kubeadm: its address, port 2380).
    const right = programFor(step('https://127.0.80.5:2380'), { distribution: 'kubeadm' })
    expect((await checkAll(pool, target('cp-1'), right.verify)).holds).toBe(true)
    const wrong = programFor(step('https://cp-1.example:2380'), { distribution: 'kubeadm' })
    expect((await checkAll(pool, target('cp-1'), wrong.verify)).holds).toBe(false)
    await expect(runAll(pool, target('cp-1'), wrong.run)).rejects.toThrow("kupgrade: this node's etcd is member cp-1 at https://127.0.80.5:2380 (/etc/kubernetes/manifests/etcd.yaml), not cp-1 at https://cp-1.example:2380 as the restore would name it from the plan (node name, host)")
    // Nothing was stopped.
    expect(await sh('cp-1', 'ls /etc/kubernetes/manifests')).toBe('etcd.yaml\nkube-apiserver.yaml\nkube-controller-manager.yaml\nkube-scheduler.yaml\n')
    await runAll(pool, target('cp-1'), [{ on: 'node', command: ['rm', '-rf', dir], why: 'clean up' }])
  })

  it('kubeadm worker (dnf): repository switched, packages from it with --disableexcludes, upgrade node; undo back', async () => {
    const mine = driverSteps(planned('kubeadm'), 'w-1', 'kubeadm')
    expect(mine.map((s) => s.action)).toEqual(['backup-files', 'switch-repo', 'unhold-packages', 'upgrade-package', 'upgrade-control-plane', 'upgrade-package', 'restart', 'hold-packages'])
    const done = await forward('w-1', 'kubeadm', mine)
    expect(await sh('w-1', 'kubelet --version; grep -c v1.30 /etc/yum.repos.d/kubernetes.repo')).toBe('Kubernetes v1.30.4\n2\n')
    await backward('w-1', 'kubeadm', done)
    expect(await sh('w-1', 'kubeadm version -o short; kubelet --version')).toBe('v1.29.2\nKubernetes v1.29.2\n')
  }, 180_000)
})
