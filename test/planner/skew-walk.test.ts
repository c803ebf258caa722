import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { PlanError } from '../../src/errors.js'
import { loadPlan } from '../../src/plan/load.js'
import { parsePlan } from '../../src/plan/load.js'
import { Locator } from '../../src/plan/locate.js'
import type { PlanDocument } from '../../src/plan/schema.js'
import { buildExecutionPlan } from '../../src/planner/build.js'
import { planSkewProblems, refuseLiveSkew, walkPlanSkew, type SkewRefusal } from '../../src/planner/skew-walk.js'
import type { ExecutionPlan, PlannerFacts } from '../../src/planner/types.js'

/** A plan of one cluster: 3 control-plane nodes and 2 workers. */
function planText(o: { dist: 'k3s' | 'k0s' | 'kubeadm'; from: string; target: string; gate?: string }): string {
  return `apiVersion: kupgrade.dev/v1alpha1
kind: UpgradePlan
metadata: { name: walk }
spec:
  target: { kubernetes: ${o.target} }
  stages: [{ name: prod, clusters: [alpha] }]
  clusters:
    - name: alpha
      distribution: ${o.dist}
      from: ${o.from}
      apiEndpoint: https://10.0.0.10:6443
      nodes:
        - { name: cp-1, host: 10.0.0.11, role: control-plane }
        - { name: cp-2, host: 10.0.0.12, role: control-plane }
        - { name: cp-3, host: 10.0.0.13, role: control-plane }
        - { name: w-1, host: 10.0.0.21, role: worker }
        - { name: w-2, host: 10.0.0.22, role: worker }
${o.gate ? `  gates:\n    pre: [${o.gate}]\n` : ''}`
}

function load(text: string): PlanDocument {
  const { plan, problems } = parsePlan('walk.yaml', text)
  if (!plan) throw new Error(problems.map((p) => p.message).join('\n'))
  return plan
}

const FROM = { k3s: 'v1.29.6+k3s1', k0s: 'v1.29.6+k0s.0', kubeadm: 'v1.29.6' } as const
const lagging = (kubelet: string): PlannerFacts => ({ clusters: { alpha: { nodes: { 'w-2': { kubeletVersion: kubelet } } } } })
const brief = (rs: SkewRefusal[]) => rs.map((r) => `${r.step} ${r.rule}${r.node ? `@${r.node}` : ''}`)

describe('the version-skew walk over every intermediate state of a plan', () => {
  for (const dist of ['k3s', 'k0s', 'kubeadm'] as const) {
    it(`${dist}: the planner's own order, across two minors (via the release list), passes every step`, () => {
      const doc = load(planText({ dist, from: FROM[dist], target: 'v1.31.2' }))
      const exec = buildExecutionPlan(doc)
      expect(exec.stages[0]!.clusters[0]!.hops).toHaveLength(2)
      expect(walkPlanSkew(exec, doc)).toEqual([])
    })

    it(`${dist}: workers moved before the control plane are refused at the first worker's restart`, () => {
      const doc = load(planText({ dist, from: FROM[dist], target: 'v1.30.4' }))
      const exec = buildExecutionPlan(doc)
      const cluster = exec.stages[0]!.clusters[0]!
      // The same steps, the workers' before the control plane's (a planner bug this walk exists to catch).
      const workers = cluster.steps.filter((s) => s.role === 'worker')
      const rest = cluster.steps.filter((s) => s.role !== 'worker')
      const firstCp = rest.findIndex((s) => s.role === 'control-plane')
      cluster.steps = [...rest.slice(0, firstCp), ...workers, ...rest.slice(firstCp)]
      const refused = walkPlanSkew(exec, doc)
      // k0s stops the worker before replacing its binary and starts it after; k3s restarts it; kubeadm restarts the kubelet.
      const moved = dist === 'k0s' ? 'start-service' : 'restart'
      expect(refused[0]).toMatchObject({ cluster: 'alpha', step: `prod/alpha/hop1/w-1/${moved}`, rule: 'kubelet-newer-than-apiserver', node: 'w-1' })
      expect(refused[0]!.message).toContain('must not be newer than kube-apiserver')
    })
  }

  it('a kubelet 3 minors behind the target: the conservative policy refuses the first apiserver move, the permissive one lets it pass', () => {
    const facts = lagging('v1.27.9+k3s1')
    const conservative = load(planText({ dist: 'k3s', from: FROM.k3s, target: 'v1.30.4' }))
    expect(brief(walkPlanSkew(buildExecutionPlan(conservative, { facts }), conservative, facts))).toEqual(['prod/alpha/hop1/cp-1/restart kubelet-too-old-for-apiserver-upgrade@w-2'])
    const permissive = load(planText({ dist: 'k3s', from: FROM.k3s, target: 'v1.30.4', gate: '{ version-skew: { policy: permissive } }' }))
    expect(walkPlanSkew(buildExecutionPlan(permissive, { facts }), permissive, facts)).toEqual([])
  })

  it("kubeadm: upgrade apply refuses kubelets more than one minor behind the target, even under the permissive policy", () => {
    const facts = lagging('v1.28.3')
    const doc = load(planText({ dist: 'kubeadm', from: FROM.kubeadm, target: 'v1.30.4', gate: '{ version-skew: { policy: permissive } }' }))
    expect(brief(walkPlanSkew(buildExecutionPlan(doc, { facts }), doc, facts))).toEqual(['prod/alpha/hop1/cp-1/upgrade-control-plane kubeadm-kubelet-too-old@w-2'])
  })

  it('k0s: a worker one minor behind is fine until the first controller moves: then it is two behind, which k0s does not support', () => {
    const facts = lagging('v1.28.4+k0s')
    const doc = load(planText({ dist: 'k0s', from: FROM.k0s, target: 'v1.30.4' }))
    expect(brief(walkPlanSkew(buildExecutionPlan(doc, { facts }), doc, facts))).toEqual(['prod/alpha/hop1/cp-1/start-service k0s-worker-skew@w-2'])
  })

  it('what the live state already breaks is left to the live gate; a node already past the hop is never moved down', () => {
    // w-2 runs a kubelet newer than every apiserver: the gate reports it; its steps are skipped; no step makes it worse.
    const facts = lagging('v1.31.0+k3s1')
    const doc = load(planText({ dist: 'k3s', from: FROM.k3s, target: 'v1.30.4' }))
    const exec = buildExecutionPlan(doc, { facts })
    expect(exec.steps.filter((s) => s.node === 'w-2').every((s) => s.skip !== undefined)).toBe(true)
    expect(walkPlanSkew(exec, doc, facts)).toEqual([])
  })

  it('kubeadm before 1.28 rolls the kube-proxy DaemonSet at apply, newer than the other apiservers: a warning, as no order avoids it', () => {
    const doc = load(planText({ dist: 'kubeadm', from: 'v1.26.9', target: 'v1.27.16' }))
    const found = walkPlanSkew(buildExecutionPlan(doc), doc)
    // Every node's kube-proxy goes through the VIP; workers in the same versions are reported once, by the first.
    expect(brief(found)).toEqual(['cp-1', 'cp-2', 'cp-3', 'w-1'].map((n) => `prod/alpha/hop1/cp-1/upgrade-control-plane kube-proxy-newer-than-apiserver@${n}`))
    expect(new Set(found.map((r) => r.severity))).toEqual(new Set(['warning']))
    expect(found[0]!.message).toContain('kubeadm before 1.28 upgrades the kube-proxy DaemonSet at upgrade apply')
    // From 1.28 kubeadm waits for the last control-plane node: nothing to say.
    const later = load(planText({ dist: 'kubeadm', from: 'v1.27.9', target: 'v1.28.15' }))
    expect(walkPlanSkew(buildExecutionPlan(later), later)).toEqual([])
  })

  it('a refusal is a validation problem located at the cluster, naming the step and the rule', () => {
    const text = planText({ dist: 'k3s', from: FROM.k3s, target: 'v1.30.4' })
    const facts = lagging('v1.27.9+k3s1')
    const problems = planSkewProblems(load(text), 'walk.yaml', Locator.lazy(text), facts)
    expect(problems).toEqual([{
      file: 'walk.yaml', line: 8, col: 13, severity: 'error',
      message: expect.stringMatching(/^cluster alpha: step prod\/alpha\/hop1\/cp-1\/restart would break the version skew policy \(kubelet-too-old-for-apiserver-upgrade\): kubelet v1\.27\.9\+k3s1 on w-2 must be at v1\.28 or newer/),
    }])
  })

  it('plan --live: the walk on live versions throws a PlanError (exit 2) located in the file; warnings go to stderr', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kupgrade-skew-walk-'))
    try {
      const file = join(dir, 'plan.yaml')
      writeFileSync(file, planText({ dist: 'k3s', from: FROM.k3s, target: 'v1.30.4' }))
      const loaded = loadPlan(file)
      const facts = lagging('v1.27.9+k3s1')
      const err = (() => {
        try {
          refuseLiveSkew(loaded, facts, buildExecutionPlan(loaded.plan, { facts }), { write: () => true })
        } catch (e) {
          return e
        }
        return undefined
      })()
      expect(err).toBeInstanceOf(PlanError)
      expect((err as PlanError).exitCode).toBe(2)
      expect((err as PlanError).message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:8:13: cluster alpha: step prod/alpha/hop1/cp-1/restart would break the version skew policy \\(kubelet-too-old-for-apiserver-upgrade\\)`))
      const written: string[] = []
      const old = loadPlan((writeFileSync(file, planText({ dist: 'kubeadm', from: 'v1.26.9', target: 'v1.27.16' })), file))
      refuseLiveSkew(old, { clusters: {} }, buildExecutionPlan(old.plan), { write: (s: string) => written.push(s) })
      expect(written.join('')).toContain(':8:13: warning: cluster alpha: step prod/alpha/hop1/cp-1/upgrade-control-plane would break the version skew policy (kube-proxy-newer-than-apiserver)')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('turning the gate off (gates.skip) turns the walk off', () => {
    const facts = lagging('v1.27.9+k3s1')
    const text = planText({ dist: 'k3s', from: FROM.k3s, target: 'v1.30.4' }).replace('spec:\n', 'spec:\n  gates: { skip: [{ gate: version-skew, reason: test }] }\n')
    const doc = load(text)
    const exec: ExecutionPlan = buildExecutionPlan(doc, { facts })
    expect(walkPlanSkew(exec, doc, facts)).toEqual([])
  })
})
