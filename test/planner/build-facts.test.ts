import { describe, expect, it } from 'vitest'
import { parsePlan } from '../../src/plan/load.js'
import type { PlanDocument } from '../../src/plan/schema.js'
import { buildExecutionPlan } from '../../src/planner/build.js'
import { releaseFetches } from '../../src/planner/fetches.js'
import type { PlannerFacts } from '../../src/planner/types.js'

/** Live facts make the planner mark steps already done as skipped (plan --live, resume). */
function plan(dist: 'k3s' | 'k0s' | 'kubeadm', from: string, target: Record<string, unknown>): PlanDocument {
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

  it('what the nodes will fetch, for the release-source gate: not a node already at the target', () => {
    const doc = plan('k3s', 'v1.29.2+k3s1', { kubernetes: 'v1.30.4' })
    const fetched = (f?: PlannerFacts) => releaseFetches(buildExecutionPlan(doc, f ? { facts: f } : {}).stages[0]!.clusters[0]!).map((x) => `${x.node} ${x.release}`)
    expect(fetched()).toEqual(['cp v1.30.4+k3s1', 'w1 v1.30.4+k3s1', 'w2 v1.30.4+k3s1'])
    expect(fetched(facts({ cp: { kubeletVersion: 'v1.30.4+k3s1' }, w1: { kubeletVersion: 'v1.29.2+k3s1' } }))).toEqual(['w1 v1.30.4+k3s1', 'w2 v1.30.4+k3s1'])
  })

  it('nodes whose kubelet is at the target are skipped, the others not; the backup only when all are done', () => {
    const doc = plan('k3s', 'v1.29.2+k3s1', { kubernetes: 'v1.30.4' })
    expect(skipped(doc, facts({ cp: { kubeletVersion: 'v1.30.4+k3s1' }, w1: { kubeletVersion: 'v1.29.2+k3s1' } }))).toEqual({ nodes: ['cp'], backup: undefined, upgrades: ['w1', 'w2'] })
    const all = facts({ cp: { kubeletVersion: 'v1.30.4+k3s1' }, w1: { kubeletVersion: 'v1.30.4+k3s1' }, w2: { kubeletVersion: 'v1.30.5+k3s1' } })
    expect(skipped(doc, all)).toEqual({ nodes: ['cp', 'w1', 'w2'], backup: 'every node already at the target', upgrades: [] })
  })

  // kubeadm begun by hand on cp (kubeadm package and `upgrade apply` done, kubelet not yet): its backup can only keep
  // kubeadm v1.30.4, and checked against v1.29.6 it failed after the node had been drained. It is checked against what
  // the node has, and the plan says what a rollback of that node then means.
  it('a node whose hop was begun outside the run: its kept copy is checked against what it has, and the plan says so', () => {
    const doc = plan('kubeadm', 'v1.29.6', { kubernetes: 'v1.30.4' })
    const built = buildExecutionPlan(doc, { facts: facts({ cp: { kubeletVersion: 'v1.29.6', installedVersion: 'v1.30.4' }, w1: { kubeletVersion: 'v1.29.6', installedVersion: 'v1.29.6' }, w2: { kubeletVersion: 'v1.29.6' } }) })
    expect(built.steps.filter((s) => s.action === 'backup-files').map((s) => [s.node, (s.params as { release: string }).release, s.skip])).toEqual([
      ['cp', 'v1.30.4', undefined], ['w1', 'v1.29.6', undefined], ['w2', 'v1.29.6', undefined],
    ])
    expect(built.warnings).toContain('cluster c: cp already has kubeadm v1.30.4 installed while its kubelet runs v1.29.6: the hop to v1.30.4 was begun on it outside this run. kupgrade finishes it, but its backup keeps the node as found (kubeadm v1.30.4), so a rollback cannot put the files of v1.29.6 back on it')
    expect(built.warnings.filter((w) => w.includes('begun'))).toHaveLength(1)
    // Its steps are the whole hop still: what is already done is found so by each step's verify when it runs.
    expect(built.steps.filter((s) => s.node === 'cp' && s.skip).map((s) => s.action)).toEqual([])
    // k3s: a binary replaced but not restarted, the same.
    const k3s = buildExecutionPlan(plan('k3s', 'v1.29.2+k3s1', { kubernetes: 'v1.30.4' }), { facts: facts({ w2: { kubeletVersion: 'v1.29.2+k3s1', installedVersion: 'v1.30.4+k3s1' } }) })
    expect(k3s.steps.filter((s) => s.action === 'backup-files').map((s) => (s.params as { release: string }).release)).toEqual(['v1.29.2+k3s1', 'v1.29.2+k3s1', 'v1.30.4+k3s1'])
    // Past the hop, or behind its start, is not a hop begun: planned as before.
    const past = buildExecutionPlan(doc, { facts: facts({ cp: { kubeletVersion: 'v1.29.6', installedVersion: 'v1.31.0' } }) })
    expect(past.steps.filter((s) => s.action === 'backup-files').map((s) => (s.params as { release: string }).release)).toEqual(['v1.29.6', 'v1.29.6', 'v1.29.6'])
  })

  // A backup holds the state of its moment: each run takes its own (Step.fresh), except the hop's datastore backup once
  // a control-plane node already moved past the hop's start — a backup then would not be the pre-hop state, so the one
  // found in place (an earlier run's, of before the hop) is verified and kept.
  it('backups are fresh, but not the datastore backup of a control plane that already moved', () => {
    const doc = plan('kubeadm', 'v1.29.6', { kubernetes: 'v1.30.4' })
    const fresh = (f?: PlannerFacts) => buildExecutionPlan(doc, f ? { facts: f } : {}).steps.filter((s) => s.action === 'backup' || s.action === 'backup-files').map((s) => `${s.action}${s.node === 'cp' ? '' : ` ${s.node}`}: ${s.fresh ?? 'found in place is kept'}`)
    const all = ['backup: true', 'backup-files: true', 'backup-files w1: true', 'backup-files w2: true']
    expect(fresh()).toEqual(all)
    expect(fresh(facts({ cp: { kubeletVersion: 'v1.29.6', installedVersion: 'v1.29.6' }, w1: { kubeletVersion: 'v1.29.6' } }))).toEqual(all)
    // Begun by hand (kubeadm upgrade apply done), or at the target already (a run cut off after the control plane).
    for (const cp of [{ kubeletVersion: 'v1.29.6', installedVersion: 'v1.30.4' }, { kubeletVersion: 'v1.30.4', installedVersion: 'v1.30.4' }]) {
      expect(fresh(facts({ cp, w1: { kubeletVersion: 'v1.29.6' } }))[0]).toBe('backup: found in place is kept')
    }
    // A worker that moved does not make the control plane's backup any less the pre-hop state.
    expect(fresh(facts({ cp: { kubeletVersion: 'v1.29.6' }, w1: { kubeletVersion: 'v1.29.6', installedVersion: 'v1.30.4' } }))[0]).toBe('backup: true')
  })

  // A node at the Kubernetes target is skipped whole, its OS upgrade with it (whether its packages are current cannot
  // be read from facts): that is said, in each skipped step and in a plan warning, not left to look done.
  it('with an OS target, nodes at the Kubernetes target keep their OS as it is, and the plan says so', () => {
    const doc = plan('k3s', 'v1.29.2+k3s1', { kubernetes: 'v1.30.4', os: { packages: 'all', reboot: 'if-required' } })
    const built = buildExecutionPlan(doc, { facts: facts({ cp: { kubeletVersion: 'v1.30.4+k3s1' }, w1: { kubeletVersion: 'v1.30.4+k3s1' }, w2: { kubeletVersion: 'v1.29.2+k3s1' } }) })
    expect(built.steps.filter((s) => s.action === 'os-upgrade').map((s) => [s.node, s.skip])).toEqual([
      ['cp', 'already at v1.30.4+k3s1; its OS packages are left as they are'], ['w1', 'already at v1.30.4+k3s1; its OS packages are left as they are'], ['w2', undefined],
    ])
    expect(built.warnings).toContain('cluster c: 2 nodes are already at the Kubernetes target and skipped whole, the OS upgrade with them (cp, w1): kupgrade cannot tell whether their packages are current. To upgrade their OS, apply a plan with target.os and no target.kubernetes')
    // Without an OS target: the skip as it was, no warning.
    const k8sOnly = buildExecutionPlan(plan('k3s', 'v1.29.2+k3s1', { kubernetes: 'v1.30.4' }), { facts: facts({ cp: { kubeletVersion: 'v1.30.4+k3s1' } }) })
    expect(k8sOnly.steps.find((s) => s.node === 'cp' && s.action === 'cordon')?.skip).toBe('already at v1.30.4+k3s1')
    expect(k8sOnly.warnings.filter((w) => w.includes('OS'))).toEqual([])
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

  // The titles a reviewer reads are the commands that will run there: a dnf node's are dnf's only (the executor runs
  // the same program with the same facts); a node whose manager is not known keeps the both-ways title.
  it("a node's known package manager gives its steps that node's commands as titles", () => {
    const doc = plan('kubeadm', 'v1.29.6', { kubernetes: 'v1.30.4', os: { packages: 'all', reboot: 'if-required' } })
    const f: PlannerFacts = { clusters: { c: { nodes: { cp: { kubeletVersion: 'v1.29.6', packageManager: 'dnf' }, w1: { kubeletVersion: 'v1.29.6', packageManager: 'apt' } } } } }
    const titles = (node: string, action: string) => buildExecutionPlan(doc, { facts: f }).steps.filter((s) => s.node === node && s.action === action && !s.id.includes('/rebuild/')).map((s) => s.title)
    expect(titles('cp', 'upgrade-package')).toEqual([
      "kubeadm v1.30.4: dnf install -y --refresh 'kubeadm-1.30.4-*' --disableexcludes=kubernetes",
      "kubelet and kubectl v1.30.4: dnf install -y --refresh 'kubelet-1.30.4-*' 'kubectl-1.30.4-*' --disableexcludes=kubernetes",
    ])
    expect(titles('w1', 'upgrade-package')[0]).toBe("kubeadm v1.30.4: apt-get install -y 'kubeadm=1.30.4-*'")
    expect(titles('cp', 'os-upgrade')[0]).toMatch(/^upgrade OS all packages: dnf upgrade -y/)
    expect(titles('cp', 'os-upgrade')[0]).not.toContain('apt-get')
    expect(titles('cp', 'reboot')).toEqual(['systemctl reboot if the OS says so (needs-restarting -r), then wait for SSH (new boot id) and the Node Ready on that boot'])
    expect(titles('w1', 'reboot')).toEqual(['systemctl reboot if the OS says so (/var/run/reboot-required), then wait for SSH (new boot id) and the Node Ready on that boot'])
    expect(titles('w2', 'upgrade-package').slice(0, 1)).toEqual(["kubeadm v1.30.4: apt-get install -y 'kubeadm=1.30.4-*' (dnf: dnf install -y --refresh 'kubeadm-1.30.4-*' --disableexcludes=kubernetes)"])
    // Flatcar has no package manager for kubeadm: the plan still prints (the executor reports it as the step's failure).
    const flatcar: PlannerFacts = { clusters: { c: { nodes: { cp: { kubeletVersion: 'v1.29.6', packageManager: 'flatcar' } } } } }
    expect(buildExecutionPlan(doc, { facts: flatcar }).steps.find((s) => s.node === 'cp' && s.action === 'upgrade-package')!.title).toContain('(dnf: ')
  })

  // A k0s controller without a kubelet has no Node to say what it runs: the version its running k0s reports does. Its
  // binary replaced but k0s not restarted (a run cut off between the two), it still runs the old version and is not done.
  it('a controller without a kubelet is done only when k0s status says it runs the target', () => {
    const doc = plan('k0s', 'v1.29.6+k0s.0', { kubernetes: 'v1.30.4' })
    const controller = (f: Record<string, unknown>): PlannerFacts => ({ clusters: { c: { nodes: { cp: { kubernetesNode: false, serviceActive: true, installedVersion: 'v1.30.4+k0s.0', ...f } } } } })
    const cpSkipped = (f: PlannerFacts) => buildExecutionPlan(doc, { facts: f }).steps.find((s) => s.node === 'cp' && s.action === 'replace-binary')!.skip
    expect(cpSkipped(controller({ runningVersion: 'v1.30.4+k0s.0' }))).toBe('already at v1.30.4+k0s.0')
    expect(cpSkipped(controller({ runningVersion: 'v1.29.6+k0s.0' }))).toBeUndefined()
    expect(cpSkipped(controller({}))).toBeUndefined()
    const built = buildExecutionPlan(doc, { facts: controller({ runningVersion: 'v1.29.6+k0s.0' }) })
    expect(built.warnings).toContainEqual(expect.stringMatching(/^cluster c: cp already has k0s v1\.30\.4\+k0s\.0 installed while k0s runs v1\.29\.6\+k0s\.0: the hop to v1\.30\.4\+k0s\.0 was begun on it outside this run/))
  })

  it('facts for another cluster or unknown versions change nothing', () => {
    const doc = plan('kubeadm', 'v1.29.6', { kubernetes: 'v1.30.4' })
    const steps = buildExecutionPlan(doc, { facts: { clusters: { other: { nodes: { cp: { kubeletVersion: 'v1.30.4' } } } } } }).steps
    expect(steps.filter((s) => s.skip)).toEqual([])
    expect(buildExecutionPlan(doc, { facts: facts({ cp: { kubeletVersion: 'garbage' } }) }).steps.filter((s) => s.skip)).toEqual([])
  })
})
