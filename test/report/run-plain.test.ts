import { describe, expect, it } from 'vitest'
import type { ExecutorEvent, StepRef } from '../../src/executor/events.js'
import { plainLines } from '../../src/report/run-plain.js'
import { renderSummaryMarkdown, renderSummaryText, SummaryCollector } from '../../src/report/run-summary.js'

const T = '2026-12-05T21:35:27.000Z'
const step = (node: string, action: string): StepRef => ({ id: `staging/staging/hop1/${node}/${action}`, stage: 'staging', cluster: 'staging', node, action: action as StepRef['action'], title: action === 'wait-ready' ? `wait for ${node} Ready with kubelet v1.30.4+k3s1 (timeout 1m)` : action, mutates: action !== 'wait-ready' })
const CORE = 'timed out after 60s waiting for staging-agent-1 Ready with kubelet v1.30.4+k3s1'
const NODE = `step staging/staging/hop1/staging-agent-1/wait-ready failed: ${CORE}`
const WHY = `staging/staging-agent-1: ${NODE}`
const DONE = `${WHY}; rolled back: staging-agent-1 back at the old version, uncordoned, post-gates passing`

/** The demo fleet's run under node-not-ready-after-upgrade with onFailure: rollback, as the executor sends it. */
const rolledBack: ExecutorEvent[] = [
  { type: 'run-started', time: T, runId: 'r1', plan: '/p/plan.yaml', journal: '/p/.kupgrade/runs/r1/journal.jsonl', dryRun: false, resumed: false, warnings: [], stages: ['staging'], outline: [] },
  { type: 'cluster-started', time: T, stage: 'staging', cluster: 'staging' },
  { type: 'step-failed', time: T, step: step('staging-agent-1', 'wait-ready'), attempt: 1, durationMs: 60_000, error: CORE, evidence: ['last observed: staging-agent-1: Ready=False, kubelet v1.30.4+k3s1'] },
  { type: 'node-failed', time: T, stage: 'staging', cluster: 'staging', node: 'staging-agent-1', hop: 1, error: NODE, cordoned: true },
  { type: 'rollback-started', time: T, cluster: 'staging', node: 'staging-agent-1', hop: 1, path: 'previous-version', detail: 'kept k3s binary back, restart k3s-agent, Ready at the old version', reason: WHY },
  { type: 'undo-done', time: T, step: step('staging-agent-1', 'replace-binary'), durationMs: 1500, changed: true, evidence: [] },
  { type: 'rollback-done', time: T, cluster: 'staging', node: 'staging-agent-1', hop: 1, durationMs: 8900, evidence: [] },
  { type: 'cluster-failed', time: T, stage: 'staging', cluster: 'staging', error: WHY },
  { type: 'stage-failed', time: T, stage: 'staging', error: WHY },
  { type: 'run-finished', time: T, runId: 'r1', outcome: 'failed', exitCode: 1, durationMs: 83_200, journal: '/p/.kupgrade/runs/r1/journal.jsonl', message: DONE },
] as ExecutorEvent[]

const render = (events: ExecutorEvent[]): string => {
  const line = plainLines()
  return events.map(line).filter((l) => l !== undefined).join('\n')
}

describe('plain progress: a failure told once as it climbs node → rollback → cluster → stage → run', () => {
  it('the step\'s ✗ line says it in full; every later line names its own part and points above', () => {
    const text = render(rolledBack)
    expect(text.split(CORE).length - 1).toBe(1)
    expect(text).toContain(`staging › staging › staging-agent-1: ✗ wait for staging-agent-1 Ready with kubelet v1.30.4+k3s1 (timeout 1m): ${CORE}\n    last observed:`)
    expect(text).toContain('staging › staging › staging-agent-1: FAILED (cordoned): step staging/staging/hop1/staging-agent-1/wait-ready failed: see above')
    expect(text).toContain('staging › staging-agent-1: ROLLING BACK (previous-version: kept k3s binary back, restart k3s-agent, Ready at the old version) because staging/staging-agent-1: see above')
    expect(text).toContain('staging › staging: FAILED: see above')
    expect(text).toContain('stage staging: FAILED: see above')
    expect(text).toContain('run r1: failed (exit 1) in 83.2s: see above; rolled back: staging-agent-1 back at the old version, uncordoned, post-gates passing')
  })

  it('another failure, or one that only shares a few words, is said in full', () => {
    const other = 'timed out after 60s waiting for staging-agent-2 Ready with kubelet v1.30.4+k3s1'
    const text = render([
      ...rolledBack.slice(0, 4),
      { type: 'node-failed', time: T, stage: 'staging', cluster: 'staging', node: 'staging-agent-2', hop: 1, error: `step staging/staging/hop1/staging-agent-2/wait-ready failed: ${other}`, cordoned: true },
      { type: 'cluster-failed', time: T, stage: 'staging', cluster: 'staging', error: `2 nodes failed: ${CORE.slice(0, 18)} and more` },
    ] as ExecutorEvent[])
    expect(text).toContain(`staging-agent-2: FAILED (cordoned): step staging/staging/hop1/staging-agent-2/wait-ready failed: ${other}`)
    expect(text).toContain(`staging › staging: FAILED: 2 nodes failed: ${CORE.slice(0, 18)} and more`)
  })

  it('each run starts with nothing told', () => {
    render(rolledBack)
    expect(render(rolledBack.slice(3, 4))).toContain(`FAILED (cordoned): ${NODE}`)
  })
})

describe('the summary of a rolled-back run', () => {
  it('says why once: the rollback line names the node, the path and what was undone, not the failure again', () => {
    const c = new SummaryCollector()
    for (const e of rolledBack) c.add(e)
    const text = renderSummaryText(c.data)
    expect(text.split(CORE).length - 1).toBe(1)
    expect(text).toContain(`\n  ${DONE}\n`)
    expect(text).toContain('\n  rolled back staging/staging-agent-1 (previous-version); undone: replace-binary\n')
  })
})

describe('plain progress: the plan\'s warnings', () => {
  it('are said under the run\'s first line, before anything runs', () => {
    const started = { ...rolledBack[0]!, warnings: ['cluster c: cp-2 already has kubeadm v1.30.4 installed …', 'spec.clusters[0].nodes: cluster c has 1 control-plane node'] } as ExecutorEvent
    expect(render([started]).split('\n')).toEqual([
      '2026-12-05 21:35:27Z apply run r1: /p/plan.yaml (stages: staging); journal /p/.kupgrade/runs/r1/journal.jsonl',
      '2026-12-05 21:35:27Z warning: cluster c: cp-2 already has kubeadm v1.30.4 installed …',
      '2026-12-05 21:35:27Z warning: spec.clusters[0].nodes: cluster c has 1 control-plane node',
    ])
  })
})

describe('plain progress: gates', () => {
  const gate = (node: string): StepRef => ({ id: `staging/staging/hop1/${node}/after/gate/nodes-ready`, stage: 'staging', cluster: 'staging', node, action: 'gate', title: 'gate nodes-ready (timeout 1m)', mutates: false })
  const result = (node: string, status: 'pass' | 'fail', during?: 'soak') => ({ type: 'gate-result', time: T, step: gate(node), gate: 'nodes-ready', status, summary: status === 'pass' ? '1 node Ready' : `${node} NotReady`, evidence: [], checks: 1, ...(during ? { during } : {}) })

  it('a gate step is one line: its verdict with its end (a failure with what the gate read, its summary and hint once); a soak\'s verdicts are said as they come', () => {
    const text = render([
      result('w-1', 'pass'),
      { ...result('w-2', 'fail'), hint: 'look at w-2', evidence: ['kubectl get node w-2: NotReady'] },
      { type: 'step-done', time: T, step: gate('w-1'), durationMs: 1_000, changed: false, evidence: [] },
      { type: 'step-failed', time: T, step: gate('w-2'), attempt: 1, error: 'gate nodes-ready failed: w-2 NotReady (hint: look at w-2)', evidence: ['kubectl get node w-2: NotReady'] },
      { type: 'node-failed', time: T, stage: 'staging', cluster: 'staging', node: 'w-2', error: 'step staging/staging/hop1/w-2/after/gate/nodes-ready failed: gate nodes-ready failed: w-2 NotReady (hint: look at w-2)', cordoned: true },
      result('w-3', 'pass', 'soak'),
      result('w-4', 'pass'),
      { type: 'run-finished', time: T, runId: 'r1', outcome: 'interrupted', exitCode: 130, durationMs: 5_000, journal: 'j', message: 'interrupted' },
    ] as ExecutorEvent[])
    expect(text.split('\n')).toEqual([
      '2026-12-05 21:35:27Z staging › staging › w-1: ✓ gate nodes-ready (timeout 1m): pass: 1 node Ready (1.0s)',
      '2026-12-05 21:35:27Z staging › staging › w-2: ✗ gate nodes-ready (timeout 1m): fail: w-2 NotReady (hint: look at w-2)',
      '    kubectl get node w-2: NotReady',
      '2026-12-05 21:35:27Z staging › staging › w-2: FAILED (cordoned): step staging/staging/hop1/w-2/after/gate/nodes-ready failed: see above',
      '2026-12-05 21:35:27Z staging › staging › w-3: gate nodes-ready (soak): pass: 1 node Ready',
      // Its step never ended: the verdict is said before the run's last line.
      '2026-12-05 21:35:27Z staging › staging › w-4: gate nodes-ready: pass: 1 node Ready',
      '2026-12-05 21:35:27Z run r1: interrupted (exit 130) in 5.0s: interrupted',
    ])
  })
})

describe('evidence of several lines (what a command printed)', () => {
  it('keeps its lines, indented under its first: every line that starts at the margin is a timestamped one', () => {
    const pre: StepRef = { id: 'staging/staging/pre/gate/release-source', stage: 'staging', cluster: 'staging', action: 'gate', title: 'gate release-source', mutates: false }
    const evidence = ['node staging-agent-1: v1.30.4+k3s1 from the install script: found https://get.k3s.io\ncurl: (56) Recv failure: Connection reset by peer\nkupgrade: cannot get k3s', 'node staging-agent-2: found https://get.k3s.io']
    const text = render([
      { type: 'gate-result', time: T, step: pre, gate: 'release-source', status: 'fail', summary: 'staging-agent-1: cannot get k3s', evidence, checks: 3 },
      { type: 'step-failed', time: T, step: pre, attempt: 1, durationMs: 2_000, error: 'gate release-source failed: staging-agent-1: cannot get k3s', evidence },
      { type: 'step-failed', time: T, step: step('staging-agent-1', 'replace-binary'), attempt: 1, durationMs: 2_000, error: 'exit 1', evidence: ['stderr:\ninstall: cannot stat'] },
    ] as ExecutorEvent[])
    expect(text.split('\n')).toEqual([
      '2026-12-05 21:35:27Z staging › staging: ✗ gate release-source: fail: staging-agent-1: cannot get k3s',
      '    node staging-agent-1: v1.30.4+k3s1 from the install script: found https://get.k3s.io',
      '      curl: (56) Recv failure: Connection reset by peer',
      '      kupgrade: cannot get k3s',
      '    node staging-agent-2: found https://get.k3s.io',
      '2026-12-05 21:35:27Z staging › staging › staging-agent-1: ✗ replace-binary: exit 1',
      '    stderr:',
      '      install: cannot stat',
    ])
  })
})

describe('a soak: the same post-gates re-checked every round', () => {
  const post = (gate: string): StepRef => ({ id: `staging/staging/hop1/post/gate/${gate}`, stage: 'staging', cluster: 'staging', action: 'gate', title: `gate ${gate}`, mutates: false })
  const soak: StepRef = { id: 'staging/soak', stage: 'staging', action: 'soak', title: 'soak 30m: re-check the post-gates of staging before the next stage', mutates: false }
  const result = (gate: string, status: 'pass' | 'warn', summary: string, during?: 'soak') =>
    ({ type: 'gate-result', time: T, step: post(gate), gate, status, summary, evidence: [], checks: 1, ...(during ? { during } : {}) }) as ExecutorEvent
  const done = (step: StepRef, durationMs: number) => ({ type: 'step-done', time: T, step, attempt: 1, durationMs, changed: false, evidence: [] }) as ExecutorEvent
  const run: ExecutorEvent[] = [
    result('dns', 'pass', 'kubernetes.default.svc resolves'), done(post('dns'), 900),
    result('system-pods', 'warn', 'coredns restarted 1 time'), done(post('system-pods'), 900),
    // Three rounds: dns says the same each time; system-pods changes its words once, then says them again.
    result('dns', 'pass', 'kubernetes.default.svc resolves', 'soak'), result('system-pods', 'warn', 'coredns restarted 1 time', 'soak'),
    result('dns', 'pass', 'kubernetes.default.svc resolves', 'soak'), result('system-pods', 'warn', 'coredns restarted 2 times', 'soak'),
    result('dns', 'pass', 'kubernetes.default.svc resolves', 'soak'), result('system-pods', 'warn', 'coredns restarted 2 times', 'soak'),
    done(soak, 1_800_000),
  ]

  it('prints a re-check only when it says something new; the soak\'s line says how many it did not repeat', () => {
    expect(render(run).split('\n')).toEqual([
      '2026-12-05 21:35:27Z staging › staging: ✓ gate dns: pass: kubernetes.default.svc resolves (0.9s)',
      '2026-12-05 21:35:27Z staging › staging: ✓ gate system-pods: warn: coredns restarted 1 time (0.9s)',
      '2026-12-05 21:35:27Z staging › staging: gate system-pods (soak): warn: coredns restarted 2 times',
      '2026-12-05 21:35:27Z staging: ✓ soak 30m: re-check the post-gates of staging before the next stage (1800.0s; 5 re-checks said what their gate had said before, not repeated)',
    ])
  })

  it('the summary lists a warning said again once, with how often', () => {
    const c = new SummaryCollector()
    for (const e of run) c.add(e)
    const text = renderSummaryText(c.data)
    // Each gate once in the counts; the soak's re-checks of them apart.
    expect(text).toContain('\n  gates: 1 pass, 1 warn, 0 fail, 0 unknown; soak re-checks: 3 pass, 3 warn\n    warn system-pods (staging): coredns restarted 1 time (2 times)\n    warn system-pods (staging): coredns restarted 2 times (2 times)\n')
  })
})

describe('plain progress: rollbacks of a node the run took through several hops', () => {
  it('name the hop from the second on, so the two rollbacks of one node read apart', () => {
    const lines = plainLines()
    const at = (hop: number) => ({ time: '2026-12-06T20:31:10.000Z', cluster: 'kh', node: 'kh-w-1', hop })
    expect(lines({ type: 'rollback-started', ...at(2), path: 'previous-version', detail: 'the previous packages', reason: 'kupgrade rollback' } as ExecutorEvent)).toBe('2026-12-06 20:31:10Z kh › kh-w-1 · hop 2: ROLLING BACK (previous-version: the previous packages) because kupgrade rollback')
    expect(lines({ type: 'rollback-done', ...at(2), durationMs: 4400, evidence: [] } as ExecutorEvent)).toBe('2026-12-06 20:31:10Z kh › kh-w-1 · hop 2: rolled back in 4.4s')
    expect(lines({ type: 'rollback-done', ...at(1), durationMs: 4300, evidence: [] } as ExecutorEvent)).toBe('2026-12-06 20:31:10Z kh › kh-w-1: rolled back in 4.3s')
  })

  it('say what the rollback kept of the run: the OS upgrade, and why', () => {
    const kept = [{ step: 'kh/kh/hop1/kh-w-1/os-upgrade', why: 'OS packages are rolled forward, not downgraded; a node that cannot recover is rebuilt' }]
    expect(plainLines()({ type: 'rollback-done', time: '2026-12-06T20:31:10.000Z', cluster: 'kh', node: 'kh-w-1', hop: 1, durationMs: 4300, evidence: [], kept } as ExecutorEvent))
      .toBe('2026-12-06 20:31:10Z kh › kh-w-1: rolled back in 4.3s; kept: os-upgrade (OS packages are rolled forward, not downgraded; a node that cannot recover is rebuilt)')
  })
})

describe('plain progress: a resume that checks the cluster again', () => {
  const MSG = 'cluster rk: checked again on resume, before rk-w-2: gate system-pods failed: kube-system/coredns-x CrashLoopBackOff; nothing more was changed'
  const recheck: ExecutorEvent[] = [
    { type: 'run-started', time: T, runId: 'r1', plan: '/p/plan.yaml', journal: '/p/j', dryRun: false, resumed: true, warnings: [], stages: ['rk'], outline: [] },
    { type: 'cluster-started', time: T, stage: 'rk', cluster: 'rk' },
    { type: 'resume-check', time: T, stage: 'rk', cluster: 'rk', point: 'the after-node gates of rk-w-1', before: 'rk-w-2', gates: ['rk/rk/hop1/rk-w-1/after/gate/nodes-ready', 'rk/rk/hop1/rk-w-1/after/gate/system-pods'], since: '2026-12-05T19:59:27.000Z' },
    { type: 'gate-result', time: T, step: { id: 'rk/rk/hop1/rk-w-1/after/gate/nodes-ready', stage: 'rk', cluster: 'rk', node: 'rk-w-1', action: 'gate', title: 'gate nodes-ready', mutates: false }, gate: 'nodes-ready', status: 'pass', summary: 'rk-w-1 Ready', evidence: ['node rk-w-1: Ready=True'], during: 'resume', checks: 1 },
    { type: 'gate-result', time: T, step: { id: 'rk/rk/hop1/rk-w-1/after/gate/system-pods', stage: 'rk', cluster: 'rk', node: 'rk-w-1', action: 'gate', title: 'gate system-pods', mutates: false }, gate: 'system-pods', status: 'fail', summary: 'kube-system/coredns-x CrashLoopBackOff', evidence: ['pod kube-system/coredns-x: CrashLoopBackOff, restarts 4'], during: 'resume', checks: 3 },
    { type: 'cluster-failed', time: T, stage: 'rk', cluster: 'rk', error: MSG },
    { type: 'run-finished', time: T, runId: 'r1', outcome: 'paused', exitCode: 4, durationMs: 5000, journal: '/p/j', message: `${MSG}; to go on after fixing it: kupgrade resume X`, resume: 'kupgrade resume X' },
  ] as ExecutorEvent[]

  it('says what it checks again, how long after the run stopped, and what the failing re-check read', () => {
    const text = render(recheck)
    expect(text).toContain('rk › rk: resumed 1h36m after the run stopped: checking the after-node gates of rk-w-1 again (2 gates) before rk-w-2')
    expect(text).toContain('rk › rk › rk-w-1: gate system-pods (resume): fail: kube-system/coredns-x CrashLoopBackOff\n    pod kube-system/coredns-x: CrashLoopBackOff, restarts 4')
    // A re-check that held shows no evidence.
    expect(text).toContain('rk › rk › rk-w-1: gate nodes-ready (resume): pass: rk-w-1 Ready\n')
  })

  it('the summary counts the resume\'s re-checks apart from the run\'s own gates', () => {
    const c = new SummaryCollector()
    for (const e of recheck) c.add(e)
    expect(renderSummaryText(c.data)).toContain('gates: 0 pass, 0 warn, 0 fail, 0 unknown; resume re-checks: 1 pass, 1 fail')
  })
})

describe('plain progress: a failed gate\'s evidence', () => {
  const gateStep: StepRef = { id: 'kh/kh/hop1/kh-cp-2/after/gate/system-pods', stage: 'kh', cluster: 'kh', node: 'kh-cp-2', action: 'gate', title: 'gate system-pods', mutates: false }
  const evidence = [
    'kubectl get pod kube-system/coredns-5d78c9869d-x7k2p (node kh-w-1): Running, ready 0/1, restarts 6; container coredns CrashLoopBackOff',
    'kubectl get pods -n kube-system -l k8s-app=kube-dns: 0/2 CoreDNS pods Ready',
    ...Array.from({ length: 18 }, (_, i) => `kubectl get pod kube-system/kube-proxy-${i} (node kh-w-1): Running, ready 1/1, restarts 0`),
  ]
  const failed = (held?: number): ExecutorEvent[] => [
    { type: 'gate-result', time: T, step: gateStep, gate: 'system-pods', status: 'fail', summary: 'kube-system/coredns-5d78c9869d-x7k2p CrashLoopBackOff; CoreDNS 0/2 Ready', evidence, ...(held ? { held } : {}), checks: 12 },
    { type: 'step-failed', time: T, step: gateStep, attempt: 1, durationMs: 12_000, error: 'gate system-pods failed: kube-system/coredns-5d78c9869d-x7k2p CrashLoopBackOff; CoreDNS 0/2 Ready', evidence },
  ] as ExecutorEvent[]

  it('is what did not hold and a count of what did', () => {
    const text = render(failed(18))
    expect(text.split('\n').slice(1)).toEqual([
      `    ${evidence[0]}`,
      `    ${evidence[1]}`,
      '    … and 18 observations that held (listed in --output json and the run\'s journal)',
    ])
  })

  it('the job summary folds it the same way', () => {
    const c = new SummaryCollector()
    for (const e of failed(18)) c.add(e)
    const md = renderSummaryMarkdown(c.data)
    expect(md).toContain('  - … and 18 observations that held')
    expect(md).not.toContain('kube-proxy-0')
  })

  it('is every observation where the gate did not judge each', () => {
    expect(render(failed()).split('\n')).toHaveLength(1 + evidence.length)
  })
})
