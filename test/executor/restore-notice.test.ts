import { describe, expect, it } from 'vitest'
import { datastoreRestores, restoreNotice } from '../../src/executor/restore-notice.js'
import type { JournalEntry } from '../../src/executor/journal.js'
import { parsePlan } from '../../src/plan/load.js'
import { buildExecutionPlan } from '../../src/planner/build.js'

/** A k3s cluster (one server, two agents) and a kubeadm one (three control-plane nodes), v1.29 → v1.31: two hops each. */
function plan() {
  const cluster = (name: string, distribution: string, from: string, cps: number) => ({
    name, distribution, from, apiEndpoint: `https://10.${cps}.0.1:6443`, nodes: [
      ...Array.from({ length: cps }, (_, i) => ({ name: `${name}-cp-${i + 1}`, host: `10.${cps}.1.${i + 1}`, role: 'control-plane' })),
      { name: `${name}-w-1`, host: `10.${cps}.2.1`, role: 'worker' },
    ],
  })
  const source = JSON.stringify({
    apiVersion: 'kupgrade.dev/v1alpha1', kind: 'UpgradePlan', metadata: { name: 'restores' },
    spec: {
      target: { kubernetes: 'v1.31.2' }, stages: [{ name: 's', clusters: ['edge', 'core'] }],
      clusters: [cluster('edge', 'k3s', 'v1.29.6+k3s1', 1), cluster('core', 'kubeadm', 'v1.29.6', 3)],
    },
  })
  const r = parsePlan('restores.yaml', source)
  if (!r.plan) throw new Error(r.problems.map((p) => p.message).join('\n'))
  return buildExecutionPlan(r.plan, {})
}

/** A journal where the given steps are done (and changed), in that order, one second apart. */
function journal(done: string[], extra: Partial<JournalEntry>[] = []) {
  const entries = new Map<string, JournalEntry>()
  let seq = 0
  for (const step of done) entries.set(step, { seq: ++seq, time: new Date(Date.UTC(2026, 11, 7, 10, 0, seq)).toISOString(), step, state: 'done', attempt: 1, changed: true })
  for (const e of extra) entries.set(e.step!, { seq: ++seq, time: '2026-12-07T11:00:00.000Z', attempt: 1, state: 'done', ...e } as JournalEntry)
  return (id: string) => entries.get(id)
}

describe('which clusters a rollback restores from a datastore snapshot (and loses what the API got since)', () => {
  const p = plan()
  const ids = (cluster: string, hop: number, node: string, action: string) =>
    p.stages[0]!.clusters.find((c) => c.name === cluster)!.steps.find((s) => s.hop === hop && s.node === node && s.action === action)!.id

  it('a moved control-plane node: its cluster, from the earliest hop it moved in, with that snapshot\'s time', () => {
    const last = journal([
      's/edge/hop1/backup', ids('edge', 1, 'edge-cp-1', 'replace-binary'), ids('edge', 1, 'edge-cp-1', 'restart'), 's/edge/hop2/backup', ids('edge', 2, 'edge-cp-1', 'replace-binary'),
      's/core/hop1/backup', ids('core', 1, 'core-cp-2', 'upgrade-control-plane'),
    ])
    expect(datastoreRestores(p, last)).toEqual([
      { cluster: 'edge', hop: 1, takenAt: '2026-12-07T10:00:01.000Z' },
      { cluster: 'core', hop: 1, takenAt: '2026-12-07T10:00:06.000Z' },
    ])
    expect(datastoreRestores(p, last, ['core']).map((r) => r.cluster)).toEqual(['core'])
    expect(restoreNotice({ cluster: 'edge', hop: 1, takenAt: '2026-12-07T10:00:01.000Z' }, Date.parse('2026-12-07T12:03:01.000Z')))
      .toBe('cluster edge: its control plane is restored from the datastore snapshot taken before hop 1, at 2026-12-07T10:00:01Z (2h3m ago): every API object goes back to that moment, and what was created or changed in the cluster since is lost')
  })

  it('no restore where a control-plane node changed only what its undos take back: its new version never started', () => {
    // kubeadm: the repository switched, the packages unheld, the new kubeadm installed, `kubeadm upgrade apply` not run.
    const core = ['switch-repo', 'unhold-packages', 'upgrade-package'].map((a) => ids('core', 1, 'core-cp-1', a))
    expect(datastoreRestores(p, journal(['s/core/hop1/backup', ...core]))).toEqual([])
    // k3s: the new binary in place, never restarted onto; then restarted (or the restart failed: it may have started).
    const edge = ['s/edge/hop1/backup', ids('edge', 1, 'edge-cp-1', 'replace-binary')]
    expect(datastoreRestores(p, journal(edge))).toEqual([])
    expect(datastoreRestores(p, journal(edge, [{ step: ids('edge', 1, 'edge-cp-1', 'restart'), state: 'failed' }]))).toEqual([{ cluster: 'edge', hop: 1, takenAt: '2026-12-07T10:00:01.000Z' }])
    // kubeadm's upgrade apply failed: kubeadm may have moved part of the control plane before giving up.
    expect(datastoreRestores(p, journal(['s/core/hop1/backup', ...core], [{ step: ids('core', 1, 'core-cp-1', 'upgrade-control-plane'), state: 'failed' }])).map((r) => r.cluster)).toEqual(['core'])
  })

  it('no restore where only workers moved, where a control-plane node was only drained, or where its onFailure already took it back', () => {
    expect(datastoreRestores(p, journal(['s/edge/hop1/backup', ids('edge', 1, 'edge-w-1', 'replace-binary'), ids('edge', 1, 'edge-cp-1', 'drain')]))).toEqual([])
    const rolledBack = journal(['s/core/hop1/backup', ids('core', 1, 'core-cp-1', 'upgrade-control-plane')], [{ step: 'core/core-cp-1/hop1/rollback' }])
    expect(datastoreRestores(p, rolledBack)).toEqual([])
    // Moved again after that rollback (a resume went on): restored again.
    const again = journal(['s/core/hop1/backup'], [{ step: 'core/core-cp-1/hop1/rollback' }, { step: ids('core', 1, 'core-cp-1', 'upgrade-control-plane'), changed: true }])
    expect(datastoreRestores(p, again)).toEqual([{ cluster: 'core', hop: 1, takenAt: '2026-12-07T10:00:01.000Z' }])
  })

  it('a newer rollback or rebuild of the node that did not finish: what it left is taken back (and restored) again, as kupgrade rollback does', () => {
    const unfinished = journal(['s/core/hop1/backup', ids('core', 1, 'core-cp-1', 'upgrade-control-plane')], [
      { step: 'core/core-cp-1/hop1/rollback' },
      { step: 'core/core-cp-1/hop1/rebuild', state: 'failed' },
    ])
    expect(datastoreRestores(p, unfinished)).toEqual([{ cluster: 'core', hop: 1, takenAt: '2026-12-07T10:00:01.000Z' }])
  })
})
