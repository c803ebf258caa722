import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { NodeEvent } from '../../src/lab/recorder/types.js'
import { KUBECTL } from '../lab/helpers.js'
import { cliKillable, events, rollbackOnFailure, startExecLab, topology, type ExecLab } from './helpers.js'

const run = promisify(execFile)

/**
 * onFailure: rollback of a kubeadm control plane of three stacked etcd members once it moved to v1.30 (issue 11: the
 * restore a team once did by hand). A control-plane node failing after its upgrade takes the whole control plane back
 * from the pre-hop snapshot the first node took (kubernetes.io "Restoring an etcd cluster"): that snapshot put on the
 * other nodes from its copy kept off the node, each node's kept etcd manifest checked, every static pod stopped, every
 * member restored with its own --name and peer URL and the same --initial-cluster and token (the lab refuses a member
 * restored alone or with other flags: test/lab/kubeadm-ha-etcd-restore.test.ts), /etc/kubernetes back, the old
 * packages held — then Ready at v1.29, the API at v1.29; the workers never touched. Then `kupgrade restore` does the
 * same after a finished upgrade.
 */
describe('kubeadm HA: the control plane back from the pre-hop etcd snapshot on every member', () => {
  let l: ExecLab
  const CPS = ['kh-cp-1', 'kh-cp-2', 'kh-cp-3']
  const nodeFile = (node: string, path: string) => join(l.dir, 'nodes', 'kh', node, path)
  const apiVersion = async () => JSON.parse((await run(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'kh', 'version', '-o', 'json'])).stdout).serverVersion.gitVersion as string
  const expectControlPlaneAt = (version: string, minor: string) => {
    for (const node of CPS) {
      expect(readFileSync(nodeFile(node, 'etc/kubernetes/manifests/kube-apiserver.yaml'), 'utf8'), node).toMatch(new RegExp(`kube-apiserver:${version.replace(/\./g, '\\.')}$`, 'm'))
      expect(readFileSync(nodeFile(node, 'var/lib/etcd/member/lab-written-by'), 'utf8').trim(), node).toBe(version)
      expect(readFileSync(nodeFile(node, 'etc/apt/sources.list.d/kubernetes.list'), 'utf8'), node).toContain(`/${minor}/`)
      expect(readFileSync(nodeFile(node, 'lab/state/apt-holds'), 'utf8').trim().split('\n').sort(), node).toEqual(['kubeadm', 'kubectl', 'kubelet'])
    }
  }

  beforeAll(async () => {
    // Two workers: control-plane nodes are tainted, so a worker's pods need the other worker for the capacity gate.
    l = await startExecLab(topology('127.0.149', [{ name: 'kh', distribution: 'kubeadm', controlPlanes: 3, workers: 2 }]))
    await l.editPlan(rollbackOnFailure())
  }, 120_000)
  afterAll(async () => l?.stop())

  it('a control-plane node that fails after the move: every etcd member restored from the one snapshot, the old packages held, the API at v1.29', async () => {
    const mark = l.lab.recorder.mark()
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'kh', node: 'kh-cp-2' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    expect(ev.find((e) => e.type === 'step-failed' && e.step.node === 'kh-cp-2').step.action).toBe('wait-ready')
    expect(ev.find((e) => e.type === 'rollback-started')).toMatchObject({ node: 'kh-cp-2', path: 'snapshot-restore', detail: expect.stringMatching(/^automatic, every control-plane node at once: /) })

    // The restore's own steps, in order (kh-cp-3 never moved: its packages stay, and its member is restored all the
    // same — the members are one cluster). The checks change nothing: the snapshot is put in place before them.
    const restore = ev.filter((e) => e.type === 'step-done' && /\/restore\/\d+-/.test(e.step.id)).map((e) => `${e.step.node} ${e.step.action}:${e.changed}`)
    expect(restore).toEqual([
      'kh-cp-1 prepare-etcd-restore:false', 'kh-cp-2 prepare-etcd-restore:false', 'kh-cp-3 prepare-etcd-restore:false',
      'kh-cp-3 stop-control-plane:true', 'kh-cp-2 stop-control-plane:true', 'kh-cp-1 stop-control-plane:true',
      'kh-cp-1 restore-datastore:true', 'kh-cp-2 restore-datastore:true', 'kh-cp-3 restore-datastore:true',
      'kh-cp-1 downgrade-packages:true', 'kh-cp-2 downgrade-packages:true', 'kh-cp-3 downgrade-packages:false',
      'kh-cp-1 hold-packages:false', 'kh-cp-2 hold-packages:false', 'kh-cp-3 hold-packages:false',
    ])
    // The others got the first node's snapshot from its copy kept off the node: they never took one.
    for (const node of ['kh-cp-2', 'kh-cp-3']) {
      const put = ev.find((e) => e.type === 'step-done' && e.step.node === node && e.step.action === 'prepare-etcd-restore')
      expect(put.evidence.join('\n'), node).toMatch(new RegExp(`on ${node} was missing or damaged: 2 file\\(s\\) put back from \\.kupgrade/backups/kh/.*/kh-cp-1/hop-1`))
    }
    const rbGates = ev.filter((e) => e.type === 'gate-result' && e.during === 'rollback')
    expect(rbGates.map((e) => e.gate)).toEqual(expect.arrayContaining(['kube-proxy-sync', 'api-vip', 'nodes-ready', 'version-skew']))
    expect(rbGates.every((e) => e.status === 'pass' || e.status === 'warn'), JSON.stringify(rbGates.map((e) => [e.gate, e.status, e.summary]))).toBe(true)
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })
    expect(ev.at(-1).message).toMatch(/; rolled back: kh-cp-2 back at the old version, uncordoned, post-gates passing; kh-cp-1 back at the old version too, with the control plane restored from the pre-hop snapshot/)
    // kh-cp-1 had finished its hop; the restore took it back too, and the run says so: rolled back with kh-cp-2's
    // restore, not listed as upgraded in the summary (its report's node list).
    expect(ev.filter((e) => e.type === 'rollback-done').map((e) => [e.node, e.restoredWith])).toEqual([['kh-cp-1', 'kh-cp-2'], ['kh-cp-2', undefined]])
    const report = readFileSync(join(dirname(ev.at(-1).journal), 'report.md'), 'utf8')
    expect(report).toContain('↩ kh-cp-1')
    expect(report).not.toContain('✓ kh-cp-1')
    expect(report).toContain('rolled back kh/kh-cp-1 (snapshot-restore); with the control plane restored in the rollback of kh-cp-2')

    // The lab's view: one snapshot taken (before the hop, on the first node), every member restored from it, every
    // node at v1.29, uncordoned; the workers untouched.
    const changes = l.lab.recorder.events({ cluster: 'kh', source: 'node', afterSeq: mark }) as NodeEvent[]
    expect(changes.filter((e) => e.action === 'backup').map((e) => `${e.node} ${e.path}`)).toEqual(['kh-cp-1 /var/lib/kupgrade/backup/v1.29.6/etcd-snapshot.db'])
    expect(changes.filter((e) => e.action === 'restore').map((e) => e.node).sort()).toEqual(CPS)
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ...CPS.map((n) => [n, 'v1.29.6', 'True', false]), ['kh-w-1', 'v1.29.6', 'True', false], ['kh-w-2', 'v1.29.6', 'True', false],
    ])
    expectControlPlaneAt('v1.29.6', 'v1.29')
    expect(ev.some((e) => e.type === 'step-started' && e.step.node?.startsWith('kh-w-') && e.step.mutates)).toBe(false)
    expect(await apiVersion()).toBe('v1.29.6')
  }, 300_000)

  it('kupgrade restore after a finished upgrade: every member from the snapshot again, every node back at v1.29', async () => {
    const up = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(up.code, up.err + up.out.slice(-3000)).toBe(0)
    expect(await apiVersion()).toBe('v1.30.4')
    const r = await l.cli(['restore', l.plan, '--cluster', 'kh', '--yes', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)
    const ev = events(r.out)
    expect(ev.filter((e) => e.type === 'step-done' && e.step.action === 'restore-datastore').map((e) => `${e.step.node}:${e.changed}`)).toEqual(CPS.map((n) => `${n}:true`))
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ...CPS.map((n) => [n, 'v1.29.6', 'True', false]), ['kh-w-1', 'v1.29.6', 'True', false], ['kh-w-2', 'v1.29.6', 'True', false],
    ])
    expectControlPlaneAt('v1.29.6', 'v1.29')
    const gates = ev.filter((e) => e.type === 'gate-result')
    expect(gates.every((e) => e.status === 'pass' || e.status === 'warn'), JSON.stringify(gates.map((e) => [e.gate, e.status, e.summary]))).toBe(true)
    expect(await apiVersion()).toBe('v1.29.6')
  }, 400_000)

  it('killed halfway through the control-plane restore (one member restored, two stopped), resume finishes it', async () => {
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'kh', node: 'kh-cp-2' }
    l.lab.setFault(fault, true)
    const runs = join(l.dir, '.kupgrade', 'runs')
    const before = new Set(existsSync(runs) ? readdirSync(runs) : [])
    try {
      const first = await cliKillable(l, ['apply', l.plan, '--output', 'json'], (e) => (e.type === 'step-done' && e.step.action === 'restore-datastore' && e.step.node === 'kh-cp-1' ? 0 : undefined))
      expect(first.killed, `${first.err}\n${first.out.slice(-3000)}`).toBe(true)
      // The API is down: one member of three runs the restored cluster, the others are stopped.
      await expect(apiVersion()).rejects.toThrow()
      const [dir] = readdirSync(runs).filter((d) => !before.has(d) && existsSync(join(runs, d, 'journal.jsonl')))
      const resumed = await cliKillable(l, ['resume', join(runs, dir!), '--output', 'json'])
      expect(resumed.code, `${resumed.err}\n${resumed.out.slice(-4000)}`).toBe(1)
      const ev = events(resumed.out)
      // With the API down, the resumed run goes on under its local lock (what it was doing is what brings the API
      // back) and takes the Lease once the API answers.
      expect(ev.find((e) => e.type === 'step-done' && e.step.action === 'lock').evidence[0]).toMatch(/^the API does not answer .*: going on under the local lock/)
      expect(ev.some((e) => e.type === 'lock-acquired')).toBe(true)
      // The members not yet restored are, each from the one snapshot with the same flags; then every node is back.
      expect(ev.filter((e) => e.type === 'step-done' && e.step.action === 'restore-datastore' && e.changed).map((e) => e.step.node)).toEqual(['kh-cp-2', 'kh-cp-3'])
      expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })
      expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
        ...CPS.map((n) => [n, 'v1.29.6', 'True', false]), ['kh-w-1', 'v1.29.6', 'True', false], ['kh-w-2', 'v1.29.6', 'True', false],
      ])
      expectControlPlaneAt('v1.29.6', 'v1.29')
      expect(await apiVersion()).toBe('v1.29.6')
    } finally {
      l.lab.setFault(fault, false)
    }
  }, 400_000)
})
