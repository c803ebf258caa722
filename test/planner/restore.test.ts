import { describe, expect, it } from 'vitest'
import { programFor } from '../../src/drivers/registry.js'
import { KupgradeError } from '../../src/errors.js'
import { parsePlan } from '../../src/plan/load.js'
import type { PlanDocument } from '../../src/plan/schema.js'
import { buildRestorePlan } from '../../src/planner/restore.js'
import type { Step } from '../../src/planner/types.js'

/** A one-cluster plan: `cps` control-plane nodes, `workers` workers, from `from` to `to`. */
function plan(distribution: 'k3s' | 'k0s' | 'kubeadm', from: string, to: string, cps: number, workers: number): PlanDocument {
  const nodes = [
    ...Array.from({ length: cps }, (_, i) => ({ name: `cp-${i + 1}`, host: `10.0.0.${i + 1}`, role: 'control-plane' })),
    ...Array.from({ length: workers }, (_, i) => ({ name: `w-${i + 1}`, host: `10.0.1.${i + 1}`, role: 'worker' })),
  ]
  const r = parsePlan('restore.yaml', JSON.stringify({
    apiVersion: 'kupgrade.dev/v1alpha1', kind: 'UpgradePlan', metadata: { name: 'restore' },
    spec: {
      target: { kubernetes: to }, stages: [{ name: 's', clusters: ['c'] }],
      clusters: [{ name: 'c', distribution, from, apiEndpoint: 'https://10.0.0.100:6443', nodes }],
    },
  }))
  if (!r.plan) throw new Error(r.problems.map((p) => p.message).join('\n'))
  return r.plan
}

const shape = (steps: Step[]) => steps.map((s) => `${s.node ?? '-'} ${s.action}${s.action === 'gate' ? ` ${s.params.gate}` : ''}${s.force ? ' (forced)' : ''}`)
const caught = (f: () => unknown): KupgradeError => {
  try {
    f()
  } catch (err) {
    return err as KupgradeError
  }
  throw new Error('expected an error')
}

describe('kupgrade restore: a cluster back to before a hop, from that hop\'s backup', () => {
  it('k3s, one server, two hops: back before hop 1 restores hop 1\'s snapshot (forced), each agent takes both kept binaries back, Ready at the old version, then the post-gates', () => {
    const p = buildRestorePlan(plan('k3s', 'v1.28.9+k3s1', 'v1.30.4', 1, 2), { cluster: 'c', hop: 1 })
    const gates = ['nodes-ready', 'version-skew', 'kube-proxy-sync', 'api-vip', 'system-pods', 'dns', 'pending-pods'].map((g) => `- gate ${g}`)
    expect(shape(p.steps)).toEqual([
      '- lock',
      'cp-1 restore-datastore (forced)', 'cp-1 wait-ready', 'cp-1 uncordon',
      'w-1 restore-binary', 'w-1 restore-binary', 'w-1 wait-ready', 'w-1 uncordon',
      'w-2 restore-binary', 'w-2 restore-binary', 'w-2 wait-ready', 'w-2 uncordon',
      ...gates, '- unlock',
    ])
    const restore = p.steps.find((s) => s.action === 'restore-datastore')!
    expect(restore.params).toMatchObject({ kind: 'k3s', release: 'v1.28.9+k3s1', dir: '/var/lib/kupgrade/backup/v1.28.9+k3s1' })
    expect(restore.title).toMatch(/--cluster-reset --cluster-reset-restore-path=/)
    expect(p.steps.filter((s) => s.node === 'w-1' && s.action === 'restore-binary').map((s) => (s.params as { release: string }).release)).toEqual(['v1.29.15+k3s1', 'v1.28.9+k3s1'])
    expect(p.steps.filter((s) => s.action === 'wait-ready').map((s) => (s.params as { kubelet: string }).kubelet)).toEqual(['v1.28.9+k3s1', 'v1.28.9+k3s1', 'v1.28.9+k3s1'])
    // The post-gates expect the old version: the restore is planned as one hop backwards.
    expect(p.stages[0]!.clusters[0]!.hops).toEqual([expect.objectContaining({ index: 1, from: 'v1.30.4+k3s1', to: expect.objectContaining({ release: 'v1.28.9+k3s1', kubelet: 'v1.28.9+k3s1' }) })])
    expect(p.stages[0]!.clusters[0]!.onFailure).toBe('pause')
    expect(p.target.kubernetes).toBe('v1.28.9+k3s1')
    // Back before hop 2 only: hop 2's snapshot, and only hop 2's kept binaries.
    const two = buildRestorePlan(plan('k3s', 'v1.28.9+k3s1', 'v1.30.4', 1, 2), { cluster: 'c', hop: 2 })
    expect(two.steps.find((s) => s.action === 'restore-datastore')!.params).toMatchObject({ release: 'v1.29.15+k3s1' })
    expect(two.steps.filter((s) => s.action === 'restore-binary').map((s) => `${s.node} ${(s.params as { release: string }).release}`)).toEqual(['w-1 v1.29.15+k3s1', 'w-2 v1.29.15+k3s1'])
  })

  it('k3s, three servers: every server stopped, the first reset from the snapshot, the others rejoin (both forced), then the agent', () => {
    const p = buildRestorePlan(plan('k3s', 'v1.29.6+k3s1', 'v1.30.4', 3, 1), { cluster: 'c', hop: 1 })
    expect(shape(p.steps).slice(0, 9)).toEqual([
      '- lock', 'cp-3 stop-service', 'cp-2 stop-service', 'cp-1 restore-datastore (forced)', 'cp-2 rejoin-datastore (forced)', 'cp-3 rejoin-datastore (forced)',
      'cp-1 wait-ready', 'cp-2 wait-ready', 'cp-3 wait-ready',
    ])
    expect(p.steps.filter((s) => s.action === 'restore-datastore')).toHaveLength(1)
    expect(shape(p.steps.filter((s) => s.node === 'w-1'))).toEqual(['w-1 restore-binary', 'w-1 wait-ready', 'w-1 uncordon'])
  })

  it('k0s, three controllers: every controller stopped, k0s restore on the first, the others reset and joined to it (both forced), then the worker', () => {
    const p = buildRestorePlan(plan('k0s', 'v1.29.6+k0s.0', 'v1.30.4', 3, 1), { cluster: 'c', hop: 1 })
    expect(shape(p.steps).slice(0, 9)).toEqual([
      '- lock', 'cp-3 stop-service', 'cp-2 stop-service', 'cp-1 restore-datastore (forced)', 'cp-2 rejoin-datastore (forced)', 'cp-3 rejoin-datastore (forced)',
      'cp-1 wait-ready', 'cp-2 wait-ready', 'cp-3 wait-ready',
    ])
    const kept = { dir: '/var/lib/kupgrade/backup/v1.29.6+k0s.0', binary: '/usr/local/bin/k0s', backup: '/var/lib/kupgrade/backup/v1.29.6+k0s.0/files/usr/local/bin/k0s', release: 'v1.29.6+k0s.0', service: 'k0scontroller' }
    expect(p.steps.find((s) => s.action === 'restore-datastore')!.params).toEqual({ kind: 'k0s', ...kept })
    expect(p.steps.filter((s) => s.action === 'rejoin-datastore').map((s) => s.params)).toEqual([{ kind: 'k0s', ...kept }, { kind: 'k0s', ...kept }])
    expect(p.steps.find((s) => s.action === 'rejoin-datastore')!.title).toMatch(/k0s reset, .*k0s token create --role=controller --expiry=1h on the first controller into its token file, k0s start$/)
    expect(shape(p.steps.filter((s) => s.node === 'w-1'))).toEqual(['w-1 restore-binary', 'w-1 start-service', 'w-1 wait-ready', 'w-1 uncordon'])
  })

  it('kubeadm, three control-plane nodes: each checked, all stopped (the first last), every etcd member restored from the one snapshot (forced), the old packages held, then the worker', () => {
    const p = buildRestorePlan(plan('kubeadm', 'v1.29.6', 'v1.30.4', 3, 1), { cluster: 'c', hop: 1 })
    expect(shape(p.steps).slice(0, 19)).toEqual([
      '- lock',
      'cp-1 prepare-etcd-restore', 'cp-2 prepare-etcd-restore', 'cp-3 prepare-etcd-restore',
      'cp-3 stop-control-plane', 'cp-2 stop-control-plane', 'cp-1 stop-control-plane',
      'cp-1 restore-datastore (forced)', 'cp-2 restore-datastore (forced)', 'cp-3 restore-datastore (forced)',
      'cp-1 downgrade-packages', 'cp-2 downgrade-packages', 'cp-3 downgrade-packages',
      'cp-1 hold-packages', 'cp-2 hold-packages', 'cp-3 hold-packages',
      'cp-1 wait-ready', 'cp-2 wait-ready', 'cp-3 wait-ready',
    ])
    const initialCluster = 'cp-1=https://10.0.0.1:2380,cp-2=https://10.0.0.2:2380,cp-3=https://10.0.0.3:2380'
    expect(p.steps.filter((s) => s.action === 'restore-datastore').map((s) => s.params)).toEqual(['cp-1', 'cp-2', 'cp-3'].map((name, i) => ({
      kind: 'kubeadm', dir: '/var/lib/kupgrade/backup/v1.29.6', snapshot: '/var/lib/kupgrade/backup/v1.29.6/etcd-snapshot.db', release: 'v1.29.6',
      member: { name, peerURL: `https://10.0.0.${i + 1}:2380`, initialCluster, token: 'kupgrade-restore-v1.29.6', last: i === 2 },
    })))
    // The others restore from the first node's snapshot, put there from its copy kept off the node.
    expect(p.steps.filter((s) => s.action === 'prepare-etcd-restore').map((s) => (s.params as { snapshotFrom?: string }).snapshotFrom)).toEqual([undefined, 'cp-1', 'cp-1'])
    expect(p.steps.filter((s) => s.action === 'stop-control-plane').map((s) => (s.params as { last: boolean }).last)).toEqual([false, false, true])
    // The worker: its own undos of the hop in reverse, as a rollback runs them.
    expect(shape(p.steps.filter((s) => s.node === 'w-1'))).toEqual(['w-1 unhold-packages', 'w-1 downgrade-packages', 'w-1 restore-files', 'w-1 downgrade-packages', 'w-1 hold-packages', 'w-1 switch-repo', 'w-1 wait-ready', 'w-1 uncordon'])
  })

  it('k0s and kubeadm with one control-plane node: that node restored from its backup (forced), the workers\' own undos in reverse', () => {
    const k0s = buildRestorePlan(plan('k0s', 'v1.29.6+k0s.0', 'v1.30.4', 1, 1), { cluster: 'c', hop: 1 })
    expect(k0s.steps.filter((s) => s.node === 'cp-1' && s.force).map((s) => s.action)).toEqual(['restore-datastore'])
    expect(k0s.steps.find((s) => s.action === 'restore-datastore')!.title).toMatch(/k0s restore/)
    expect(k0s.steps.filter((s) => s.node === 'w-1').map((s) => s.action)).toContain('restore-binary')
    const kubeadm = buildRestorePlan(plan('kubeadm', 'v1.29.6', 'v1.30.4', 1, 1), { cluster: 'c', hop: 1 })
    expect(kubeadm.steps.find((s) => s.action === 'restore-datastore')).toMatchObject({ node: 'cp-1', force: true, params: { kind: 'kubeadm', release: 'v1.29.6' } })
    expect(kubeadm.steps.filter((s) => s.node === 'w-1' && s.action === 'downgrade-packages').map((s) => s.params)).not.toHaveLength(0)
  })

  it('every step has its program, ids are unique, and the same plan gives the same steps (a resumed restore finds its journal)', () => {
    for (const [d, from] of [['k3s', 'v1.28.9+k3s1'], ['k0s', 'v1.29.6+k0s.0'], ['kubeadm', 'v1.29.6']] as const) {
      const doc = plan(d, from, 'v1.30.4', 3, 2)
      const p = buildRestorePlan(doc, { cluster: 'c', hop: 1 })
      expect(new Set(p.steps.map((s) => s.id)).size, d).toBe(p.steps.length)
      for (const s of p.steps) if (!['lock', 'unlock', 'gate'].includes(s.action)) expect(() => programFor(s, { distribution: d }), s.id).not.toThrow()
      expect(JSON.stringify(buildRestorePlan(doc, { cluster: 'c', hop: 1 }))).toBe(JSON.stringify(p))
    }
  })

  it('refuses, saying what to do, where the request names nothing the plan has', () => {
    const hop = caught(() => buildRestorePlan(plan('k3s', 'v1.28.9+k3s1', 'v1.30.4', 1, 1), { cluster: 'c', hop: 3 }))
    expect(hop.message).toBe('cluster c has no hop 3: its hops are 1 (v1.28.9+k3s1 → v1.29.15+k3s1), 2 (v1.29.15+k3s1 → v1.30.4+k3s1)')
    expect(caught(() => buildRestorePlan(plan('k3s', 'v1.28.9+k3s1', 'v1.30.4', 1, 1), { cluster: 'x', hop: 1 })).message).toBe('the plan has no cluster x (clusters: c)')
  })
})
