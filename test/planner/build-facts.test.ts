import { describe, expect, it } from 'vitest'
import { parsePlan } from '../../src/plan/load.js'
import type { PlanDocument } from '../../src/plan/schema.js'
import { buildExecutionPlan } from '../../src/planner/build.js'
import type { PlannerFacts } from '../../src/planner/types.js'

/** Live facts make the planner mark steps already done as skipped (plan --live, resume). */
function plan(dist: 'k3s' | 'k0s' | 'kubeadm', from: string, target: Record<string, string>): PlanDocument {
  const source = JSON.stringify({
    apiVersion: 'kupgrade.dev/v1alpha1', kind: 'UpgradePlan', metadata: { name: 'facts' },
    spec: {
      target, stages: [{ name: 's', clusters: ['c'] }],
      clusters: [{ name: 'c', distribution: dist, from, apiEndpoint: 'https://10.0.0.1:6443', nodes: [
        { name: 'cp', host: '10.0.0.2', role: 'control-plane' }, { name: 'w1', host: '10.0.0.3', role: 'worker' }, { name: 'w2', host: '10.0.0.4', role: 'worker' },
      ] }],
    },
  })
  const r = parsePlan('facts.yaml', source)
  if (!r.plan) throw new Error(r.problems.map((p) => p.message).join('\n'))
  return r.plan
}
const facts = (nodes: Record<string, { kubeletVersion?: string; installedVersion?: string }>): PlannerFacts => ({ clusters: { c: { nodes } } })
const skipped = (doc: PlanDocument, f?: PlannerFacts) => {
  const steps = buildExecutionPlan(doc, f ? { facts: f } : {}).steps
  return {
    nodes: [...new Set(steps.filter((s) => s.node && s.phase !== 'backup' && s.skip).map((s) => s.node))].sort(),
    backup: steps.find((s) => s.action === 'backup')?.skip,
    upgrades: steps.filter((s) => s.action === 'replace-binary' && !s.skip).map((s) => s.node),
  }
}

describe('planning with live facts', () => {
  it('offline: nothing is skipped', () => {
    expect(skipped(plan('k3s', 'v1.29.2+k3s1', { kubernetes: 'v1.30.4' }))).toEqual({ nodes: [], backup: undefined, upgrades: ['cp', 'w1', 'w2'] })
  })

  it('nodes whose kubelet is at the target are skipped, the others not; the backup only when all are done', () => {
    const doc = plan('k3s', 'v1.29.2+k3s1', { kubernetes: 'v1.30.4' })
    expect(skipped(doc, facts({ cp: { kubeletVersion: 'v1.30.4+k3s1' }, w1: { kubeletVersion: 'v1.29.2+k3s1' } }))).toEqual({ nodes: ['cp'], backup: undefined, upgrades: ['w1', 'w2'] })
    const all = facts({ cp: { kubeletVersion: 'v1.30.4+k3s1' }, w1: { kubeletVersion: 'v1.30.4+k3s1' }, w2: { kubeletVersion: 'v1.30.5+k3s1' } })
    expect(skipped(doc, all)).toEqual({ nodes: ['cp', 'w1', 'w2'], backup: 'every node already at the target', upgrades: [] })
  })

  it('k3s revision: +k3s2 is not done when the target is +k3s10 (numeric order)', () => {
    const doc = plan('k3s', 'v1.30.4+k3s2', { kubernetes: 'v1.30.4', k3s: 'v1.30.4+k3s10' })
    expect(skipped(doc, facts({ cp: { kubeletVersion: 'v1.30.4+k3s2' }, w1: { kubeletVersion: 'v1.30.4+k3s10' } })).nodes).toEqual(['w1'])
  })

  it('k0s minor hop: a kubelet at v1.30.4+k0s is done', () => {
    const doc = plan('k0s', 'v1.29.7+k0s.0', { kubernetes: 'v1.30.4' })
    expect(skipped(doc, facts({ cp: { kubeletVersion: 'v1.30.4+k0s' }, w1: { kubeletVersion: 'v1.29.7+k0s' } })).nodes).toEqual(['cp'])
  })

  // The kubelet on k0s says v1.30.4+k0s before and after +k0s.0 → +k0s.1; it used to mark every node done, so the
  // pinned release was never installed.
  it('k0s revision-only hop: a bare +k0s kubelet does not prove the node is done; the installed version does', () => {
    const doc = plan('k0s', 'v1.30.4+k0s.0', { kubernetes: 'v1.30.4', k0s: 'v1.30.4+k0s.1' })
    expect(skipped(doc, facts({ cp: { kubeletVersion: 'v1.30.4+k0s' }, w1: { kubeletVersion: 'v1.30.4+k0s' }, w2: { kubeletVersion: 'v1.30.4+k0s' } }))).toEqual({ nodes: [], backup: undefined, upgrades: ['cp', 'w1', 'w2'] })
    const withInstalled = facts({
      cp: { kubeletVersion: 'v1.30.4+k0s', installedVersion: 'v1.30.4+k0s.1' },
      w1: { kubeletVersion: 'v1.30.4+k0s', installedVersion: 'v1.30.4+k0s.0' },
      w2: { kubeletVersion: 'v1.30.4+k0s' },
    })
    expect(skipped(doc, withInstalled)).toEqual({ nodes: ['cp'], backup: undefined, upgrades: ['w1', 'w2'] })
  })

  it('facts for another cluster or unknown versions change nothing', () => {
    const doc = plan('kubeadm', 'v1.29.6', { kubernetes: 'v1.30.4' })
    const steps = buildExecutionPlan(doc, { facts: { clusters: { other: { nodes: { cp: { kubeletVersion: 'v1.30.4' } } } } } }).steps
    expect(steps.filter((s) => s.skip)).toEqual([])
    expect(buildExecutionPlan(doc, { facts: facts({ cp: { kubeletVersion: 'garbage' } }) }).steps.filter((s) => s.skip)).toEqual([])
  })
})
