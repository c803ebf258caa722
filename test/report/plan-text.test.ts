import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadPlan } from '../../src/plan/load.js'
import { buildExecutionPlan } from '../../src/planner/build.js'
import { clusterSeconds, stepSeconds } from '../../src/report/plan-estimate.js'
import { genericTitle, renderPlanText } from '../../src/report/plan-text.js'

const root = join(import.meta.dirname, '..', '..')
const plan = buildExecutionPlan(loadPlan(join(root, 'examples', 'kubeadm-ha.yaml')).plan)
const text = renderPlanText(plan, { color: false })

describe('plan text: groups that run at once, ids, undo, duration', () => {
  it('a 5-node cluster (3 control-plane, 2 workers) fits on one screen', () => {
    const lines = text.split('\n')
    const start = lines.findIndex((l) => l.startsWith('  cluster kube-staging'))
    const end = lines.findIndex((l, i) => i > start && /^\s+\* unlock\b/.test(l))
    expect(end - start + 1).toBeLessThanOrEqual(50)
  })

  it('nodes with the same steps print once, with <node>; where one differs, the line names it', () => {
    expect(text).toContain('control plane, one node at a time: stg-cp-1 → stg-cp-2 → stg-cp-3  ids staging/kube-staging/hop1/<node>/…')
    expect(text).toMatch(/^ {8}\* cordon +kubectl cordon <node> {2}↩ uncordon$/m)
    expect(text).toMatch(/^ {8}\* upgrade-control-plane +stg-cp-1: kubeadm upgrade plan, then kubeadm upgrade apply v1\.30\.4 --yes {2}↩ restore-files$/m)
    expect(text).toMatch(/^ {8}\* upgrade-control-plane +stg-cp-2: kubeadm upgrade node {2}↩ restore-files$/m)
    expect(text).toContain('workers, batch after batch, the nodes of a batch at once: [prod-w-1] (canary) → [prod-w-2, prod-w-3] → [prod-w-4, prod-w-5] → [prod-w-6]')
    expect(text).toMatch(/↩ downgrade-packages v1\.29\.6$/m)
    expect(text).toContain('rollback per node: stg-cp-1, stg-cp-2, stg-cp-3 snapshot-restore · stg-w-1, stg-w-2 previous-version')
    // The control plane comes back as a whole, every etcd member from the one snapshot: one line, in order.
    expect(text).toContain('      prepare-etcd-restore stg-cp-1, stg-cp-2, stg-cp-3 → stop-control-plane stg-cp-3, stg-cp-2, stg-cp-1 → restore-datastore stg-cp-1, stg-cp-2, stg-cp-3 → downgrade-packages stg-cp-1, stg-cp-2, stg-cp-3 → hold-packages stg-cp-1, stg-cp-2, stg-cp-3 → wait-ready stg-cp-1, stg-cp-2, stg-cp-3  (18 steps; plan --format markdown lists each)')
  })

  it('the first batch is called the canary only where the strategy has one (canary: 0 splits by maxUnavailable alone)', () => {
    const doc = loadPlan(join(root, 'examples', 'kubeadm-ha.yaml')).plan
    const none = buildExecutionPlan({ ...doc, spec: { ...doc.spec, strategy: { ...doc.spec.strategy, workers: { ...doc.spec.strategy.workers, canary: 0 } } } })
    const prod = none.stages[1]!.clusters[0]!
    expect(prod.canary).toBe(false)
    expect(prod.batches.length).toBeGreaterThan(1)
    expect(renderPlanText(none, { color: false })).toContain('workers, batch after batch, the nodes of a batch at once: [prod-w-1, prod-w-2] → [prod-w-3, prod-w-4] → [prod-w-5, prod-w-6]\n')
    expect(plan.stages[1]!.clusters[0]!.canary).toBe(true)
  })

  it('estimates: a worker batch takes as long as one node, not the sum of its nodes', () => {
    const prod = plan.stages[1]!.clusters[0]!
    const node = (name: string) => prod.steps.filter((s) => s.node === name && s.phase === 'workers').reduce((n, s) => n + stepSeconds(s), 0)
    const rest = prod.steps.filter((s) => s.phase !== 'workers').reduce((n, s) => n + stepSeconds(s), 0)
    // Four batches ([1], [2], [2], [1]) of identical nodes: four node-times, not six.
    expect(clusterSeconds(prod)).toBe(rest + 4 * node('prod-w-1'))
    expect(text).toMatch(/^stage production {2}about \d+m {2}approval required$/m)
  })
})

describe('plan text: a node name becomes <node> only as a whole name', () => {
  it('not inside a longer name (w-10, xw-1, w-1.lan, w-1_a), wherever it stands, as often as it stands', () => {
    expect(genericTitle('kubectl drain w-1 --timeout=5m', 'w-1')).toBe('kubectl drain <node> --timeout=5m')
    expect(genericTitle('w-1', 'w-1')).toBe('<node>')
    expect(genericTitle('w-1 then w-10, xw-1, w-1.lan, w-1_a, (w-1)', 'w-1')).toBe('<node> then w-10, xw-1, w-1.lan, w-1_a, (<node>)')
    expect(genericTitle('w-10w-1 w-1', 'w-1')).toBe('w-10w-1 <node>')
    expect(genericTitle('cordon cp-1', 'w-1')).toBe('cordon cp-1')
  })
})
