import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { NodeEvent } from '../../src/lab/recorder/types.js'
import { events, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * An OS upgrade with `reboot: if-required` in a kubeadm apply (1 control plane + 2 workers, Debian), proven from the
 * lab's state rather than kupgrade's output: every node's packages upgraded; the two nodes whose updates carry a
 * kernel and libc rebooted exactly once each (a new boot id on the machine and on its Node, one `reboot` in the lab's
 * recorder) while the node whose updates need no reboot (its /var/run/reboot-required never appears) kept its boot;
 * the Kubernetes packages stayed held through the OS step although the v1.29 repository offered a newer patch; every
 * node ends Ready, uncordoned, at the target; the journal shows each reboot waited for SSH on the new boot and then
 * for the Node Ready on it.
 */
const NET = '127.0.111'
const CLUSTER = 'osr'
const NODES = ['osr-cp-1', 'osr-w-1', 'osr-w-2']
const REBOOTING = ['osr-cp-1', 'osr-w-1']
const NO_REBOOT = 'osr-w-2'

describe('apply: OS upgrade and reboot if required (kubeadm 1 + 2)', () => {
  let l: ExecLab
  beforeAll(async () => {
    // v1.29.8 in the mirror: the v1.29 package repository has a newer kubelet/kubeadm than the nodes run, which an
    // `apt-get upgrade` installs unless the packages are held.
    const t = topology(NET, [{ name: CLUSTER, distribution: 'kubeadm', version: 'v1.29.6', controlPlanes: 1, workers: 2 }], ['v1.29.6', 'v1.29.8', 'v1.30.4'])
    // openssl and curl only: upgraded, but nothing a reboot is needed for.
    t.spec.clusters[0]!.nodes[2]!.osUpdates = ['openssl', 'curl']
    l = await startExecLab(t)
    await l.editPlan((d) => {
      d.spec.target.os = { packages: 'all', reboot: 'if-required' }
      d.spec.gates.wait.interval = '500ms'
      // The pod probes (seconds per node, after every node) judge the data plane, not the reboot this test is about;
      // kube-proxy-sync, nodes-ready and version-skew still run after every node, so a node back from its reboot
      // without its kube-proxy or Ready still fails the run.
      const reason = 'pod probes, not what this test proves (the reboot); proven in rollback.e2e and test/incidents'
      d.spec.gates.skip = ['api-vip', 'dns'].map((gate) => ({ gate, reason }))
    })
  }, 60_000)
  afterAll(async () => l?.stop())

  const model = (node: string) => l.lab.clusters.get(CLUSTER)!.model.nodes.get(node)!
  const nodeState = (node: string, file: string) => join(l.dir, 'nodes', CLUSTER, node, 'lab', 'state', file)
  const machineBootId = (node: string) => readFileSync(nodeState(node, 'boot_id'), 'utf8').trim()

  it('upgrades the OS of every node, reboots exactly the nodes whose OS asks for it, once, and keeps the Kubernetes packages held', async () => {
    const bootBefore = Object.fromEntries(NODES.map((n) => [n, model(n).bootId]))
    const kernelBefore = Object.fromEntries(NODES.map((n) => [n, model(n).kernel]))
    // The Node reports the machine's boot (what `cat /proc/sys/kernel/random/boot_id` shows over SSH).
    for (const n of NODES) expect(bootBefore[n]).toBe(machineBootId(n))
    const mark = l.lab.recorder.mark()

    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)

    // End state: every node Ready, uncordoned, at the target.
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual(NODES.map((n) => [n, 'v1.30.4', 'True', false]))

    const nodeEvents = l.lab.recorder.mutations({ afterSeq: mark, source: 'node' }) as NodeEvent[]
    const of = (node: string) => nodeEvents.filter((e) => e.node === node)
    for (const n of NODES) {
      // The OS upgrade ran on every node: its package state changed.
      expect(of(n).some((e) => e.action === 'package' && e.path === '/var/lib/dpkg/status (OS upgrade)'), `${n}: OS packages`).toBe(true)
    }
    for (const n of REBOOTING) {
      // Exactly one reboot, on a new boot id that the machine and its Node agree on; the staged kernel now runs.
      expect(of(n).filter((e) => e.action === 'reboot').length, `${n} reboots`).toBe(1)
      expect(model(n).bootId).not.toBe(bootBefore[n])
      expect(model(n).bootId).toBe(machineBootId(n))
      expect(model(n).kernel).not.toBe(kernelBefore[n])
      expect(existsSync(nodeState(n, 'os-updated')), `${n}: the update applied at boot`).toBe(true)
      // The reboot came before the Kubernetes upgrade touched the node, while it was cordoned.
      const reboot = of(n).find((e) => e.action === 'reboot')!
      const firstInstall = of(n).find((e) => e.action === 'install')!
      expect(reboot.seq).toBeLessThan(firstInstall.seq)
    }
    // The node whose OS did not ask for a reboot was not rebooted: same boot, same kernel, its update staged.
    expect(of(NO_REBOOT).filter((e) => e.action === 'reboot')).toEqual([])
    expect(model(NO_REBOOT).bootId).toBe(bootBefore[NO_REBOOT])
    expect(model(NO_REBOOT).kernel).toBe(kernelBefore[NO_REBOOT])
    expect(existsSync(nodeState(NO_REBOOT, 'os-staged'))).toBe(true)

    // Kubernetes packages: the OS step left them held, so the only versions ever installed are the target's (an
    // unheld kubelet would have gone to v1.29.8 with `apt-get upgrade`), and they end held.
    const installs = nodeEvents.filter((e) => e.action === 'install')
    expect(installs.length).toBeGreaterThan(0)
    expect(new Set(installs.map((e) => e.version))).toEqual(new Set(['v1.30.4']))
    for (const n of NODES) expect(readFileSync(nodeState(n, 'apt-holds'), 'utf8').trim().split('\n').sort(), n).toEqual(['kubeadm', 'kubectl', 'kubelet'])

    // The journal: each reboot waited for SSH on the new boot, then for the Node Ready on that same boot; the node
    // without a reboot signal skipped it on the distribution's own signal.
    const ev = events(r.out)
    const fin = ev.at(-1)
    expect(fin).toMatchObject({ type: 'run-finished', outcome: 'done', exitCode: 0 })
    const journal = readFileSync(fin.journal, 'utf8').trim().split('\n').slice(1).map((x) => JSON.parse(x))
    const rebootDone = (n: string) => journal.find((e) => e.step === `${CLUSTER}/${CLUSTER}/hop1/${n}/reboot` && e.state === 'done')
    for (const n of REBOOTING) {
      const done = rebootDone(n)
      expect(done, n).toMatchObject({ changed: true })
      const evidence = done.evidence.join('\n')
      expect(evidence).toContain('ran: systemctl reboot')
      expect(evidence).toMatch(new RegExp(`waited [\\d.]+s for SSH back after a reboot \\(new boot id\\): boot id ${model(n).bootId} \\(before: ${bootBefore[n]}\\)`))
      expect(evidence).toMatch(new RegExp(`waited [\\d.]+s for ${n} Ready after boot ${model(n).bootId}: ${n}: Ready=True, kubelet v1\\.29\\.6, boot id ${model(n).bootId}`))
      expect(evidence).toContain('✓ /var/run/reboot-required is absent')
    }
    const skipped = rebootDone(NO_REBOOT)
    expect(skipped).toMatchObject({ changed: false })
    expect(skipped.evidence).toEqual([expect.stringContaining('✓ /var/run/reboot-required is absent')])
    // Order per node: OS upgrade, reboot, then the Kubernetes upgrade.
    for (const n of NODES) {
      const at = (action: string) => journal.findIndex((e) => e.step === `${CLUSTER}/${CLUSTER}/hop1/${n}/${action}` && e.state === 'done')
      expect(at('os-upgrade')).toBeGreaterThan(at('drain'))
      expect(at('reboot')).toBeGreaterThan(at('os-upgrade'))
      expect(at('unhold-packages')).toBeGreaterThan(at('reboot'))
    }
    runId = fin.runId
  }, 300_000)

  let runId = ''
  // "Back at the old version" is the node's Kubernetes: its OS upgrade is rolled forward, not back, and the rollback
  // says so for each node rather than leave it to the plan's `↩ not undone`.
  it('kupgrade rollback takes Kubernetes back on every node and says that each keeps its OS upgrade', async () => {
    const kernels = NODES.map((n) => model(n).kernel)
    const r = await l.cli(['rollback', runId, '--yes', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(0)
    const done = events(r.out).filter((e) => e.type === 'rollback-done')
    expect(done.map((e) => [e.node, e.kept]).sort()).toEqual(NODES.map((n) => [n, [{ step: `${CLUSTER}/${CLUSTER}/hop1/${n}/os-upgrade`, why: expect.stringMatching(/^OS packages are rolled forward, not downgraded/) }]]).sort())
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual(NODES.map((n) => [n, 'v1.29.6', 'True', false]))
    expect(NODES.map((n) => model(n).kernel)).toEqual(kernels)
  }, 300_000)
})
