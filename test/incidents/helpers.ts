import { readFileSync } from 'node:fs'
import { expect } from 'vitest'
import { faultKey, type FaultName, type FaultTrigger } from '../../src/lab/faults.js'
import type { TopologyInput } from '../../src/lab/topology.js'
import { events, startExecLab, topology, type ClusterShape, type ExecLab } from '../executor/helpers.js'

/**
 * Incident replays (issue 11 "Proof"): a small lab, the incident's fault armed in the topology to fire on an event in
 * the middle of `kupgrade apply`, and the questions every replay asks of the run — which gate saw it, on which node,
 * with what evidence, after how many checks; what the policy did; what state the fleet is left in.
 */
export interface Armed {
  fault: FaultName
  node?: string
  params?: Record<string, unknown>
  when?: { after: FaultTrigger; node: string }
}

/** The plan's `spec.gates.wait` in every replay: fast enough for the lab, the interval the detection count uses. */
export const WAIT = { interval: '1s', intervalMs: 1000, stableFor: 2, timeout: '12s' }

export interface Replay extends ExecLab {
  cluster: string
  /** When each fault switched on (ms since the epoch), by `cluster/node/fault`, seen from the lab's own model. */
  firedAt: Map<string, number>
  apply(extra?: string[]): Promise<{ code: number; out: string; err: string; ev: any[] }>
}

export async function startReplay(net: string, shape: ClusterShape, armed: Armed[], tweak?: (t: TopologyInput) => void): Promise<Replay> {
  const t = topology(net, [shape])
  const c = t.spec.clusters[0]!
  c.faults = armed.map((a) => ({ fault: a.fault, ...(a.node ? { node: a.node } : {}), ...(a.params ? { params: a.params } : {}), ...(a.when ? { when: a.when } : {}) }))
  tweak?.(t)
  const l = await startExecLab(t)
  const firedAt = new Map<string, number>()
  const model = l.lab.clusters.get(shape.name)!.model
  const seen = () => new Set(model.faults.keys())
  let before = seen()
  model.on('faults', () => {
    const nowOn = seen()
    for (const k of nowOn) if (!before.has(k)) firedAt.set(k, Date.now())
    before = nowOn
  })
  for (const k of before) firedAt.set(k, Date.now())
  await l.editPlan((d) => {
    d.spec.gates = { ...d.spec.gates, wait: { interval: WAIT.interval, stableFor: WAIT.stableFor, timeout: WAIT.timeout } }
  })
  return {
    ...l,
    cluster: shape.name,
    firedAt,
    apply: async (extra = []) => {
      const r = await l.cli(['apply', l.plan, '--output', 'json', ...extra])
      return { ...r, ev: events(r.out) }
    },
  }
}

export const fired = (r: Replay, fault: FaultName, node?: string): number => {
  const at = r.firedAt.get(faultKey({ fault, cluster: r.cluster, ...(node ? { node } : {}) }))
  expect(at, `fault ${fault}${node ? ` on ${node}` : ''} never fired`).toBeDefined()
  return at!
}

/**
 * Detection within one gate interval, counted in checks from the run's own events: a polling gate's check k starts
 * at its step's start (k = 1) or one interval after check k-1 landed; every check that started after the fault fired
 * must have seen it. So the first check that started after the fault is the failing one — no check of the fault's
 * gate passed once it could have seen the fault. Returns the failing check and the verdict.
 */
export function detectedWithinOneInterval(ev: any[], gate: string, node: string | undefined, firedAtMs: number, intervalMs = WAIT.intervalMs) {
  const result = ev.find((e) => e.type === 'gate-result' && e.gate === gate && e.step.node === node && e.status === 'fail' && !e.during)
  expect(result, `gate ${gate}${node ? ` on ${node}` : ''} never failed: ${JSON.stringify(ev.filter((e) => e.type === 'gate-result' && e.status !== 'pass').map((e) => [e.gate, e.step.node, e.status, e.summary]))}`).toBeDefined()
  const stepId = result.step.id
  const started = ev.find((e) => e.type === 'step-started' && e.step.id === stepId && Date.parse(e.time) <= Date.parse(result.time))
  const checks = ev.filter((e) => e.type === 'gate-check' && e.step.id === stepId && Date.parse(e.time) >= Date.parse(started.time) && Date.parse(e.time) <= Date.parse(result.time))
  // A gate that looks once (before a change) has no gate-check events: its one check is the verdict.
  const timeline = checks.length ? checks.map((c, i) => ({ start: i === 0 ? Date.parse(started.time) : Date.parse(checks[i - 1].time) + intervalMs, status: c.status, attempt: c.attempt }))
    : [{ start: Date.parse(started.time), status: result.status, attempt: 1 }]
  const sawAfter = timeline.filter((c) => c.start >= firedAtMs)
  expect(sawAfter.length, `no check of ${gate} started after the fault fired`).toBeGreaterThan(0)
  expect(sawAfter[0]!.status, `the first check of ${gate} that started after the fault: ${JSON.stringify(timeline)}`).toBe('fail')
  expect(sawAfter.filter((c) => c.status === 'pass' || c.status === 'warn')).toEqual([])
  return { result, firstFailing: sawAfter[0]!, checks: timeline.length }
}

/** The nodes as the lab sees them (kubelet version, Ready, cordoned). */
export const labNodes = (r: Replay) => Object.fromEntries(r.lab.status().clusters.find((c) => c.name === r.cluster)!.nodes.map((n) => [n.name, n]))

/**
 * The end state every replay demands: every node Ready and uncordoned at the version `expected` names, no fault left
 * armed, and `kupgrade check` on the plan passing the data-plane and health gates (kube-proxy syncing, the API VIP
 * reachable from the runner, the nodes and a pod, the system pods and cluster DNS healthy).
 */
export async function expectHealthyEnd(r: Replay, expected: Record<string, string>): Promise<void> {
  const nodes = labNodes(r)
  expect(Object.fromEntries(Object.entries(nodes).map(([n, s]) => [n, [s.version, s.ready, s.cordoned]])))
    .toEqual(Object.fromEntries(Object.entries(expected).map(([n, v]) => [n, [v, 'True', false]])))
  const chk = await r.cli(['check', r.plan, '--format', 'json', '--gate', 'kube-proxy-sync,api-vip,system-pods,dns,nodes-ready', '--deadline', '90s'])
  const report = JSON.parse(chk.out)
  const results = report.clusters[0].results.map((x: any) => [x.gate, x.status, x.summary])
  expect(chk.code, JSON.stringify(results)).toBe(0)
  expect(results.map((x: string[]) => x[0]).sort()).toEqual(['api-vip', 'dns', 'kube-proxy-sync', 'nodes-ready', 'system-pods'])
  expect(results.every((x: string[]) => x[1] === 'pass' || x[1] === 'warn'), JSON.stringify(results)).toBe(true)
}

/** The journal of a run (header dropped), from the path `run-finished` names. */
export const journalOf = (fin: any): any[] => readFileSync(fin.journal, 'utf8').trim().split('\n').slice(1).map((x) => JSON.parse(x))

export const OLD = 'v1.29.6+k3s1'
export const NEW = 'v1.30.4+k3s1'
