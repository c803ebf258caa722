import { describe, expect, it } from 'vitest'
import type { GateRun } from '../../src/gates/run.js'
import type { GateReport } from '../../src/report/gate-report.js'
import { renderLiveVerdictText } from '../../src/report/live-verdict.js'

const run = (status: GateRun['status']): GateRun => ({
  cluster: 'prod', gate: 'disk-space', label: 'disk-space', attempts: 1, durationMs: 5, status,
  summary: 'enough space', evidence: [], incident: 'k3s-expired-certs-disk-full',
})

describe('plan --live verdict (text)', () => {
  const passing = run('pass')
  const two = (a: GateRun, b: GateRun): GateReport => ({ checkedAt: '2026-12-06T04:00:00Z', durationMs: 900, clusters: [{ name: 'prod', distribution: 'k3s', results: [a], skipped: [] }, { name: 'stg', distribution: 'k3s', results: [{ ...b, cluster: 'stg' }], skipped: [] }] })

  it('ready when nothing blocks, with the warnings counted', () => {
    expect(renderLiveVerdictText([], two(passing, { ...passing, status: 'warn' }), { color: false })).toBe('ready: the clusters are as the plan says and every pre-gate passed (2 checks, 1 warned)\n')
  })

  it('blocked: every blocker, then the gates that stop it counted across the clusters they are in', () => {
    const failing = run('fail')
    expect(renderLiveVerdictText(['could not read prod/w-1: cannot connect'], two(failing, run('unknown')), { color: false })).toBe([
      'BLOCKED: apply would stop before it changes any node. Nothing was changed; fix these, then run plan --live again:',
      '  - could not read prod/w-1: cannot connect',
      '  - pre-gates: 1 failed, 1 could not check in 2 clusters (the gate results above)',
      '',
    ].join('\n'))
    expect(renderLiveVerdictText(['the plan says from v1.29.9, but the API servers report v1.29.6'], two(passing, passing), { color: false }).split('\n').slice(1)).toEqual(['  - the plan says from v1.29.9, but the API servers report v1.29.6', ''])
  })
})
