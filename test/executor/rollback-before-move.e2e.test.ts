import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { NodeEvent } from '../../src/lab/recorder/types.js'
import { downloadFailsMidRun, events, rollbackOnFailure, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * A control-plane node that fails before its control plane moved to the new version is rolled back by undoing its done
 * steps, not by restoring the datastore: a restore takes every API object back to the pre-hop snapshot (what the
 * cluster wrote since is lost, the drained pods' evictions among it) and stops every API server, for a failure that
 * changed nothing the old binaries cannot run. kubeadm: the new `kubeadm` package failing to install (a dpkg error, as
 * an apt lock held by unattended-upgrades or a missing package would fail it) after the repository switch and the
 * unhold; k0s: the new binary's download failing after `k0s stop`. The lab refuses an old binary on a datastore a
 * newer one wrote, so a node that had moved could not come back this way.
 */
const lastNodeEvents = (l: ExecLab, cluster: string, mark: number) => l.lab.recorder.events({ cluster, source: 'node', afterSeq: mark }) as NodeEvent[]

describe('rollback of a kubeadm control-plane node whose kubeadm package failed to install', () => {
  let l: ExecLab
  const CPS = ['kb-cp-1', 'kb-cp-2', 'kb-cp-3']
  const nodeFile = (node: string, path: string) => join(l.dir, 'nodes', 'kb', node, path)
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.177', [{ name: 'kb', distribution: 'kubeadm', controlPlanes: 3, workers: 2 }]))
    await l.editPlan(rollbackOnFailure())
  }, 120_000)
  afterAll(async () => l?.stop())

  it('undoes the repository switch and the unhold and uncordons it; no control-plane restore, the other nodes untouched', async () => {
    const mark = l.lab.recorder.mark()
    const fault = { fault: 'upgrade-command-fails' as const, cluster: 'kb', node: 'kb-cp-1' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    const failed = ev.find((e) => e.type === 'step-failed')
    expect([failed.step.node, failed.step.action, failed.step.title]).toEqual(['kb-cp-1', 'upgrade-package', expect.stringMatching(/^kubeadm v1\.30\.4: apt-get install/)])
    expect(ev.find((e) => e.type === 'rollback-started')).toMatchObject({ node: 'kb-cp-1', path: 'previous-version', detail: expect.stringMatching(/^its control plane had not moved to the new version/) })
    expect(ev.some((e) => e.type === 'step-started' && /\/restore\//.test(e.step.id))).toBe(false)
    expect(ev.filter((e) => e.type === 'undo-done').map((e) => e.step.action)).toEqual(['upgrade-package', 'unhold-packages', 'switch-repo', 'drain'])
    expect(ev.find((e) => e.type === 'rollback-done')).toMatchObject({ node: 'kb-cp-1' })
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })

    // The lab's view: the pre-hop snapshot was taken and never restored; every node at v1.29, uncordoned; kb-cp-1's
    // repository back at v1.29 and its packages held again.
    const changes = lastNodeEvents(l, 'kb', mark)
    expect(changes.filter((e) => e.action === 'backup').map((e) => e.node)).toEqual(['kb-cp-1'])
    expect(changes.filter((e) => e.action === 'restore')).toEqual([])
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ...CPS.map((n) => [n, 'v1.29.6', 'True', false]), ['kb-w-1', 'v1.29.6', 'True', false], ['kb-w-2', 'v1.29.6', 'True', false],
    ])
    expect(readFileSync(nodeFile('kb-cp-1', 'etc/apt/sources.list.d/kubernetes.list'), 'utf8')).toContain('/v1.29/')
    expect(readFileSync(nodeFile('kb-cp-1', 'lab/state/apt-holds'), 'utf8').trim().split('\n').sort()).toEqual(['kubeadm', 'kubectl', 'kubelet'])
    expect(ev.some((e) => e.type === 'step-started' && e.step.node !== 'kb-cp-1' && e.step.node !== undefined && e.step.mutates)).toBe(false)
  }, 300_000)

  it('kubeadm upgrade apply that failed and left the static pod manifests as they were: its undos, no restore', async () => {
    const mark = l.lab.recorder.mark()
    const fault = { fault: 'upgrade-command-fails' as const, cluster: 'kb', node: 'kb-cp-1', params: { tool: 'kubeadm' } }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    const failed = ev.find((e) => e.type === 'step-failed')
    expect([failed.step.node, failed.step.action]).toEqual(['kb-cp-1', 'upgrade-control-plane'])
    expect(failed.error).toContain("couldn't upgrade control plane")
    const started = ev.find((e) => e.type === 'rollback-started')
    expect(started).toMatchObject({ node: 'kb-cp-1', path: 'previous-version', detail: expect.stringMatching(/^its control plane had not moved to the new version \(upgrade-control-plane failed and left it as it was\)/) })
    expect(ev.some((e) => e.type === 'step-started' && /\/restore\//.test(e.step.id))).toBe(false)
    expect(ev.find((e) => e.type === 'rollback-done').evidence.join('\n')).toMatch(/upgrade-control-plane failed and left the node as it was: ✓ the static pod manifests in \/etc\/kubernetes\/manifests are those kept before the hop/)
    expect(lastNodeEvents(l, 'kb', mark).filter((e) => e.action === 'restore')).toEqual([])
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ...CPS.map((n) => [n, 'v1.29.6', 'True', false]), ['kb-w-1', 'v1.29.6', 'True', false], ['kb-w-2', 'v1.29.6', 'True', false],
    ])
    expect(readFileSync(nodeFile('kb-cp-1', 'etc/kubernetes/manifests/kube-apiserver.yaml'), 'utf8')).toMatch(/kube-apiserver:v1\.29\.6$/m)
    expect(readFileSync(nodeFile('kb-cp-1', 'lab/state/apt-holds'), 'utf8').trim().split('\n').sort()).toEqual(['kubeadm', 'kubectl', 'kubelet'])
  }, 300_000)
})

describe('rollback of a k0s controller whose new binary failed to download', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.178', [{ name: 'kc', distribution: 'k0s', controlPlanes: 3, workers: 2, enableWorker: [1, 2, 3] }]))
    await l.editPlan(rollbackOnFailure())
    await l.editPlan(downloadFailsMidRun)
  }, 120_000)
  afterAll(async () => l?.stop())

  it('starts k0s again on its kept binary; no controller stopped or reset for a restore', async () => {
    const mark = l.lab.recorder.mark()
    const fault = { fault: 'upgrade-command-fails' as const, cluster: 'kc', node: 'kc-cp-1' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    const failed = ev.find((e) => e.type === 'step-failed')
    expect([failed.step.node, failed.step.action]).toEqual(['kc-cp-1', 'replace-binary'])
    expect(ev.find((e) => e.type === 'rollback-started')).toMatchObject({ node: 'kc-cp-1', path: 'previous-version' })
    expect(ev.some((e) => e.type === 'step-started' && /\/restore\//.test(e.step.id))).toBe(false)
    expect(ev.find((e) => e.type === 'rollback-done')).toMatchObject({ node: 'kc-cp-1' })

    const changes = lastNodeEvents(l, 'kc', mark)
    expect(changes.filter((e) => e.action === 'restore')).toEqual([])
    // Only kc-cp-1's own k0s was stopped (by its upgrade, then started again by the undo); no other controller was.
    expect([...new Set(changes.filter((e) => e.action === 'service-stop').map((e) => e.node))]).toEqual(['kc-cp-1'])
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.ready, n.cordoned])).toEqual([
      ['kc-cp-1', 'v1.29.6+k0s', 'True', false], ['kc-cp-2', 'v1.29.6+k0s', 'True', false], ['kc-cp-3', 'v1.29.6+k0s', 'True', false],
      ['kc-w-1', 'v1.29.6+k0s', 'True', false], ['kc-w-2', 'v1.29.6+k0s', 'True', false],
    ])
  }, 300_000)
})
