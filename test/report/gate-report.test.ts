import { describe, expect, it } from 'vitest'
import type { GateRun } from '../../src/gates/run.js'
import { renderGateReportText, type GateReport } from '../../src/report/gate-report.js'
import { sameButFor } from '../../src/util/same-but-for.js'

const noKey = (host: string) => `no SSH credentials for ops@${host}: no identity file and no ssh-agent`
const nodes = Array.from({ length: 12 }, (_, i) => ({ name: `w-${i + 1}`, host: `10.0.1.${i + 1}` }))

const run = (evidence: GateRun['evidence']): GateRun => ({
  cluster: 'prod', gate: 'disk-space', label: 'disk-space', attempts: 1, durationMs: 5, status: 'unknown',
  summary: 'w-1 unreachable over SSH; …', evidence, incident: 'k3s-expired-certs-disk-full', hint: 'free space first',
})
const report = (r: GateRun, withNodes = true): GateReport => ({ checkedAt: '2026-12-06T04:00:00Z', durationMs: 900, clusters: [{ name: 'prod', distribution: 'k3s', results: [r], skipped: [], ...(withNodes ? { nodes } : {}) }] })
const evidenceOf = (text: string) => text.split('\n').filter((l) => l.startsWith('         ') && !/^\s+(hint|stops incident):/.test(l)).map((l) => l.trim())

describe('gate report (text): evidence', () => {
  it('what nodes observed alike but for their own names and addresses is one line naming the others', () => {
    const r = run([
      ...nodes.slice(0, 3).map((n) => ({ source: `node ${n.name}`, observed: noKey(n.host) })),
      { source: 'node w-4', observed: 'disk /var: 97% used (max 85%)' },
      ...nodes.slice(4).map((n) => ({ source: `node ${n.name}`, observed: noKey(n.host) })),
      { source: 'runner', observed: 'GET https://10.0.0.1:6443/readyz: connect ECONNREFUSED 10.0.0.1:6443' },
    ])
    expect(evidenceOf(renderGateReportText(report(r), { color: false }))).toEqual([
      `node w-1: ${noKey('10.0.1.1')} (the same for 10 more nodes: w-2, w-3, w-5, w-6, w-7 and 5 more)`,
      'node w-4: disk /var: 97% used (max 85%)',
      'runner: GET https://10.0.0.1:6443/readyz: connect ECONNREFUSED 10.0.0.1:6443',
    ])
  })

  it('past eight lines the rest is counted in observations; without the nodes’ addresses nothing is grouped', () => {
    const distinct = nodes.map((n, i) => ({ source: `node ${n.name}`, observed: `disk /: ${80 + i}% used (max 85%)` }))
    expect(evidenceOf(renderGateReportText(report(run(distinct)), { color: false })).at(-1)).toBe('(+4 more observations; --format json has all)')
    const lines = evidenceOf(renderGateReportText(report(run(nodes.map((n) => ({ source: `node ${n.name}`, observed: noKey(n.host) }))), false), { color: false }))
    expect(lines).toHaveLength(9)
    expect(lines.at(-1)).toBe('(+4 more observations; --format json has all)')
  })
})

describe('sameButFor', () => {
  it('nodes named inside their addresses group; one observation twice is said once, and not counted again', () => {
    const down = (n: string) => ({ name: n, text: `cannot connect to ${n}.example.com:22: connect ETIMEDOUT`, own: [n, `${n}.example.com`] })
    expect(sameButFor([down('w-1'), down('w-2'), down('w-1'), down('w-10')])).toEqual([
      { first: 'w-1', index: 0, text: 'cannot connect to w-1.example.com:22: connect ETIMEDOUT', others: ['w-2', 'w-10'] },
    ])
  })
})
