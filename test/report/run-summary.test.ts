import { describe, expect, it } from 'vitest'
import type { ExecutorEvent, StepRef } from '../../src/executor/events.js'
import { renderSummaryMarkdown, renderSummaryText, SummaryCollector } from '../../src/report/run-summary.js'

const T = '2026-12-05T02:20:51.000Z'
const step = (node: string, action: string): StepRef => ({ id: `staging/staging/hop1/${node}/${action}`, stage: 'staging', cluster: 'staging', node, action: action as StepRef['action'], title: action, mutates: false })
const timedOut = (node: string) => `step staging/staging/hop1/${node}/wait-ready failed: timed out after 300s waiting for ${node} Ready with kubelet v1.30.4+k3s1`

/** The events of the demo fleet's paused run (node-not-ready-after-upgrade, onFailure: pause), as the executor sends them. */
function summaryOf(extra: ExecutorEvent[] = [], o: { outline?: boolean; markdown?: boolean; warnings?: string[] } = {}): string {
  const c = new SummaryCollector()
  const outline = o.outline ? [{ stage: 'staging', clusters: [{ name: 'staging', distribution: 'k3s', nodes: ['staging-server-1', 'staging-agent-1'] }] }, { stage: 'production', clusters: [{ name: 'prd', distribution: 'kubeadm', nodes: ['prd-cp-1'] }] }] : []
  const events: ExecutorEvent[] = [
    { type: 'run-started', time: T, runId: 'r1', plan: '/p/plan.yaml', journal: '/p/.kupgrade/runs/r1/journal.jsonl', dryRun: false, resumed: false, warnings: o.warnings ?? [], stages: ['staging'], outline },
    { type: 'cluster-started', time: T, stage: 'staging', cluster: 'staging' },
    { type: 'node-done', time: T, stage: 'staging', cluster: 'staging', node: 'staging-server-1', durationMs: 6700 },
    { type: 'step-failed', time: T, step: step('staging-agent-1', 'wait-ready'), attempt: 1, durationMs: 300_000, error: 'timed out after 300s waiting for staging-agent-1 Ready with kubelet v1.30.4+k3s1', evidence: [] },
    { type: 'node-failed', time: T, stage: 'staging', cluster: 'staging', node: 'staging-agent-1', error: timedOut('staging-agent-1'), cordoned: true },
    ...extra,
    { type: 'cluster-failed', time: T, stage: 'staging', cluster: 'staging', error: `staging/staging-agent-1: ${timedOut('staging-agent-1')} (staging-agent-1 is left cordoned)` },
    { type: 'run-finished', time: T, runId: 'r1', outcome: 'paused', exitCode: 4, durationMs: 315_100, journal: '/p/.kupgrade/runs/r1/journal.jsonl', message: `staging/staging-agent-1: ${timedOut('staging-agent-1')} (staging-agent-1 is left cordoned); to go on after fixing it: kupgrade resume r1`, resume: 'kupgrade resume r1' },
  ] as ExecutorEvent[]
  for (const e of events) c.add(e)
  return o.markdown ? renderSummaryMarkdown(c.data) : renderSummaryText(c.data)
}

describe('the run summary (text)', () => {
  it('says what each onFailure hook did once the run had stopped: the notifier that told, the one that failed', () => {
    const hook = (n: number, title: string): StepRef => ({ id: `staging/hook/on-failure/${n}`, stage: 'staging', action: 'hook', title, mutates: false })
    const extra = [
      { type: 'step-done', time: T, step: hook(1, 'hook onFailure: hooks/notify.mjs'), attempt: 1, durationMs: 300, changed: false, evidence: ['hook hooks/notify.mjs exited 0'] },
      { type: 'step-failed', time: T, step: hook(2, 'hook onFailure: page.sh'), attempt: 1, durationMs: 30, error: 'hook page.sh exited with 7', evidence: ['pager down'] },
    ] as ExecutorEvent[]
    const text = summaryOf(extra)
    expect(text).toContain('\n  after the failure: ✓ hook onFailure: hooks/notify.mjs\n  after the failure: ✗ hook onFailure: page.sh: hook page.sh exited with 7\n')
    // Said there, not again among the failed steps (it is counted with them).
    expect(text).not.toContain('failed: staging/hook/on-failure/2')
    expect(text).toContain(', 2 failed')
    expect(summaryOf(extra, { markdown: true })).toContain('\n- after the failure: ✓ hook onFailure: hooks/notify.mjs\n- after the failure: ✗ hook onFailure: page.sh: hook page.sh exited with 7\n')
  })

  it('a node the run took through two hops has a line per hop, each named by it; its hop-2 rollback leaves its hop-1 line done', () => {
    const c = new SummaryCollector()
    const events = [
      { type: 'run-started', time: T, runId: 'r2', plan: '/p/plan.yaml', journal: 'j', dryRun: false, resumed: false, warnings: [], stages: ['kh'], outline: [] },
      { type: 'cluster-started', time: T, stage: 'kh', cluster: 'kh' },
      { type: 'node-done', time: T, stage: 'kh', cluster: 'kh', node: 'kh-cp-1', hop: 1, durationMs: 6600 },
      { type: 'node-done', time: T, stage: 'kh', cluster: 'kh', node: 'kh-w-1', hop: 1, durationMs: 5400 },
      { type: 'node-done', time: T, stage: 'kh', cluster: 'kh', node: 'kh-cp-1', hop: 2, durationMs: 6700 },
      { type: 'node-failed', time: T, stage: 'kh', cluster: 'kh', node: 'kh-w-1', hop: 2, error: 'step kh/kh/hop2/kh-w-1/wait-ready failed: timed out', cordoned: true },
      { type: 'rollback-started', time: T, cluster: 'kh', node: 'kh-w-1', hop: 2, path: 'previous-version', detail: 'the previous packages', reason: 'step kh/kh/hop2/kh-w-1/wait-ready failed: timed out' },
      { type: 'undo-done', time: T, step: { ...step('kh-w-1', 'upgrade-package'), id: 'kh/kh/hop2/kh-w-1/upgrade-package', cluster: 'kh' }, durationMs: 900, changed: true, evidence: [] },
      { type: 'undo-done', time: T, step: { ...step('kh-w-1', 'switch-repo'), id: 'kh/kh/hop2/kh-w-1/switch-repo', cluster: 'kh' }, durationMs: 100, changed: false, evidence: [] },
      { type: 'rollback-done', time: T, cluster: 'kh', node: 'kh-w-1', hop: 2, durationMs: 4000, evidence: [] },
      { type: 'cluster-failed', time: T, stage: 'kh', cluster: 'kh', error: 'kh/kh-w-1: step kh/kh/hop2/kh-w-1/wait-ready failed: timed out' },
      { type: 'run-finished', time: T, runId: 'r2', outcome: 'failed', exitCode: 1, durationMs: 60_000, journal: 'j', message: 'kh/kh-w-1: step kh/kh/hop2/kh-w-1/wait-ready failed: timed out' },
    ] as ExecutorEvent[]
    for (const e of events) c.add(e)
    const text = renderSummaryText(c.data)
    expect(text).toContain('\n    ✓ kh-cp-1 · hop 1 6.6s\n    ✓ kh-w-1 · hop 1 5.4s\n    ✓ kh-cp-1 · hop 2 6.7s\n    ↩ kh-w-1 · hop 2\n')
    expect(text).toContain('\n  rolled back kh/kh-w-1 · hop 2 (previous-version); undone: upgrade-package\n')
    // What the rollback took back is counted with the steps (the one whose effect was already gone is not).
    expect(text).toContain('\n  steps: 0 changed, 0 already done or read-only, 0 skipped, 0 failed, 1 undone\n')
    expect(renderSummaryMarkdown(c.data)).toContain('✓ kh-cp-1 · hop 1<br>✓ kh-w-1 · hop 1<br>✓ kh-cp-1 · hop 2<br>↩ kh-w-1 · hop 2')
  })

  it("a rollback's line says what it kept of the run (the OS upgrade), and why in short", () => {
    const c = new SummaryCollector()
    const kept = [{ step: 'rk/rk/hop1/rk-w-2/os-upgrade', why: 'OS packages are rolled forward, not downgraded; a node that cannot recover is rebuilt' }]
    const events = [
      { type: 'run-started', time: T, runId: 'r3', plan: '/p/plan.yaml', journal: 'j', dryRun: false, resumed: false, warnings: [], stages: ['rk'], outline: [] },
      { type: 'rollback-started', time: T, cluster: 'rk', node: 'rk-w-2', hop: 1, path: 'previous-version', detail: 'the previous packages', reason: 'kupgrade rollback' },
      { type: 'undo-done', time: T, step: { ...step('rk-w-2', 'upgrade-package'), id: 'rk/rk/hop1/rk-w-2/upgrade-package', cluster: 'rk' }, durationMs: 900, changed: true, evidence: [] },
      { type: 'rollback-done', time: T, cluster: 'rk', node: 'rk-w-2', hop: 1, durationMs: 4000, evidence: [], kept },
      { type: 'run-finished', time: T, runId: 'r3', outcome: 'done', exitCode: 0, durationMs: 9_000, journal: 'j', message: 'rolled back: rk/rk-w-2' },
    ] as ExecutorEvent[]
    for (const e of events) c.add(e)
    expect(renderSummaryText(c.data)).toContain('\n  rolled back rk/rk-w-2 (previous-version) after: kupgrade rollback; undone: upgrade-package; kept: os-upgrade (OS packages are rolled forward, not downgraded)\n')
    expect(renderSummaryMarkdown(c.data)).toContain('; kept: os-upgrade (OS packages are rolled forward, not downgraded)')
  })

  it('ends its findings with the plan\'s warnings as the run started (text and markdown)', () => {
    const w = 'cluster staging: staging-agent-1 already has k3s v1.30.4+k3s1 installed while its kubelet runs v1.29.6+k3s1: …'
    expect(summaryOf([], { warnings: [w] })).toContain(`\n  warning: ${w}\n  journal: `)
    expect(summaryOf([], { warnings: [w], markdown: true })).toContain(`\n**Warnings:**\n- cluster staging: staging-agent-1 already has k3s v1.30.4+k3s1 installed while its kubelet runs v1.29.6+k3s1: …\n`)
    expect(summaryOf([])).not.toContain('warning')
  })

  it('does not count the run lock as a change: a run a pre-gate blocked changed nothing, and says so once', () => {
    const c = new SummaryCollector()
    const lock: StepRef = { id: 'staging/staging/lock', stage: 'staging', cluster: 'staging', action: 'lock', title: 'acquire the run lock', mutates: true }
    const gate: StepRef = { id: 'staging/staging/pre/gate/etcd', stage: 'staging', cluster: 'staging', action: 'gate', title: 'gate etcd', mutates: false }
    const events = [
      { type: 'run-started', time: T, runId: 'r3', plan: '/p/plan.yaml', journal: 'j', dryRun: false, resumed: false, warnings: [], stages: ['staging'], outline: [] },
      { type: 'cluster-started', time: T, stage: 'staging', cluster: 'staging' },
      { type: 'step-done', time: T, step: lock, attempt: 1, durationMs: 200, changed: true, evidence: [] },
      { type: 'step-done', time: T, step: { ...gate, id: 'staging/staging/pre/gate/dns' }, attempt: 1, durationMs: 300, changed: false, evidence: [] },
      { type: 'gate-result', time: T, step: gate, gate: 'etcd', status: 'fail', summary: 'etcd unhealthy', evidence: ['node cp-1: etcdctl endpoint health: exit 1\nError: unhealthy cluster'], checks: 3 },
      { type: 'step-failed', time: T, step: gate, attempt: 1, durationMs: 800, error: 'gate etcd failed: etcd unhealthy', evidence: [] },
      { type: 'cluster-failed', time: T, stage: 'staging', cluster: 'staging', error: 'step staging/staging/pre/gate/etcd failed: gate etcd failed: etcd unhealthy' },
      { type: 'run-finished', time: T, runId: 'r3', outcome: 'blocked', exitCode: 3, durationMs: 1_500, journal: 'j', message: 'step staging/staging/pre/gate/etcd failed: gate etcd failed: etcd unhealthy; nothing was changed' },
    ] as ExecutorEvent[]
    for (const e of events) c.add(e)
    expect(renderSummaryText(c.data)).toContain('\n  steps: 0 changed, 1 already done or read-only, 0 skipped, 1 failed\n')
    // A command's output in the evidence keeps its lines in one list item (markdown joins bare lines into one).
    expect(renderSummaryMarkdown(c.data)).toContain('\n  - node cp-1: etcdctl endpoint health: exit 1<br>Error: unhealthy cluster\n')
  })

  it('says the failure that stopped the run once: not again as the cluster note and the failed step', () => {
    const text = summaryOf()
    expect(text.split('timed out after 300s waiting for staging-agent-1').length - 1).toBe(1)
    expect(text).toContain('\n  staging › staging: failed\n    ✓ staging-server-1 6.7s\n    ✗ staging-agent-1 (left cordoned)\n')
    expect(text).not.toMatch(/^ {2}failed: /m)
  })

  it('a second failure the message does not tell keeps its own lines', () => {
    const text = summaryOf([
      { type: 'step-failed', time: T, step: step('staging-agent-2', 'wait-ready'), attempt: 1, durationMs: 300_000, error: 'timed out after 300s waiting for staging-agent-2 Ready with kubelet v1.30.4+k3s1', evidence: [] },
    ] as ExecutorEvent[])
    expect(text).toContain('  failed: staging/staging/hop1/staging-agent-2/wait-ready: timed out after 300s waiting for staging-agent-2 Ready')
    expect(text).not.toContain('  failed: staging/staging/hop1/staging-agent-1/')
  })
})

describe('the run summary: where a failed cluster was left', () => {
  const run = (o: { final: boolean; markdown?: boolean; resumed?: boolean; stoppedUnder?: boolean }) => {
    const c = new SummaryCollector()
    const outline = [{ stage: 'staging', clusters: [{ name: 'staging', distribution: 'k3s', nodes: ['staging-server-1', 'staging-agent-1', 'staging-agent-2'] }] }]
    const final = { type: 'nodes-final', time: T, clusters: [{ cluster: 'staging', nodes: [
      { node: 'staging-server-1', kubelet: 'v1.30.4+k3s1', ready: true, cordoned: false },
      { node: 'staging-agent-1', kubelet: 'v1.29.6+k3s1', ready: true, cordoned: false },
      { node: 'staging-agent-2', kubelet: 'v1.29.6+k3s1', ready: true, cordoned: false },
    ] }] }
    const events = [
      { type: 'run-started', time: T, runId: 'r1', plan: '/p/plan.yaml', journal: '/p/.kupgrade/runs/r1/journal.jsonl', dryRun: false, resumed: o.resumed === true, warnings: [], stages: ['staging'], outline },
      { type: 'cluster-started', time: T, stage: 'staging', cluster: 'staging' },
      ...(o.resumed ? [] : [{ type: 'node-done', time: T, stage: 'staging', cluster: 'staging', node: 'staging-server-1', durationMs: 6700 }]),
      { type: 'node-failed', time: T, stage: 'staging', cluster: 'staging', node: 'staging-agent-1', error: timedOut('staging-agent-1'), cordoned: false },
      { type: 'rollback-done', time: T, cluster: 'staging', node: 'staging-agent-1', durationMs: 5000, evidence: [] },
      // A node the run began and then stopped under (interrupted, the lock lost): no node-done or node-failed.
      ...(o.stoppedUnder ? [{ type: 'node-started', time: T, stage: 'staging', cluster: 'staging', node: 'staging-agent-2', hop: 1 }] : []),
      { type: 'cluster-failed', time: T, stage: 'staging', cluster: 'staging', error: `staging/staging-agent-1: ${timedOut('staging-agent-1')}` },
      ...(o.final ? [final] : []),
      { type: 'run-finished', time: T, runId: 'r1', outcome: 'failed', exitCode: 1, durationMs: 315_100, journal: '/p/.kupgrade/runs/r1/journal.jsonl', message: `staging/staging-agent-1: ${timedOut('staging-agent-1')}; rolled back: staging-agent-1` },
    ] as ExecutorEvent[]
    for (const e of events) c.add(e)
    return o.markdown ? renderSummaryMarkdown(c.data) : renderSummaryText(c.data)
  }

  it('names the nodes the run never reached, at the version the API showed after it', () => {
    expect(run({ final: true })).toContain('\n  staging › staging: failed\n    ✓ staging-server-1 6.7s\n    ↩ staging-agent-1\n    – not reached: staging-agent-2 (v1.29.6+k3s1)\n')
    expect(run({ final: false })).toContain('\n    – not reached: staging-agent-2\n')
    expect(run({ final: true, markdown: true })).toContain('| staging | staging | failed |  | ✓ staging-server-1<br>↩ staging-agent-1<br>– not reached: staging-agent-2 (v1.29.6+k3s1) |')
    // Resumed, the server an earlier process finished passes without an event: it is not said to be not reached.
    expect(run({ final: true, resumed: true })).toContain('\n  staging › staging: failed\n    ↩ staging-agent-1\n  steps:')
  })

  it('a node the run began and stopped under (interrupted, the lock lost) is not "not reached"', () => {
    expect(run({ final: true, stoppedUnder: true })).toContain('\n    ↩ staging-agent-1\n    – stopped under way: staging-agent-2 (v1.29.6+k3s1)\n')
  })
})

describe('the run summary (markdown, for report.md and $GITHUB_STEP_SUMMARY)', () => {
  it('says the failure in the message and at its node in the timeline, nowhere else; a cluster never reached is a row, not run', () => {
    const md = summaryOf([], { outline: true, markdown: true })
    expect(md.split('timed out after 300s waiting for staging-agent-1').length - 1).toBe(2)
    expect(md).toContain('| staging | staging | failed |')
    expect(md).toContain('| production | prd | not run |  |  |')
    expect(md).toContain('staging failed: staging/staging-agent-1: see above (staging-agent-1 is left cordoned)')
    expect(md).not.toMatch(/^- failed `/m)
    expect(summaryOf([], { outline: true })).toContain('\n  production › prd: not run\n')
  })
})
