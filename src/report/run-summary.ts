import type { GateStatus } from '../gates/types.js'
import type { ExecutorEvent, FinalNode } from '../executor/events.js'
import { ToldFailures } from './run-plain.js'
import { withHeldFolded } from './held-evidence.js'

/**
 * The final summary of a run, built from its events alone: what changed (per cluster and node), durations, gate
 * results, the journal path, and how to continue. Rendered as text for the terminal and as markdown for
 * $GITHUB_STEP_SUMMARY.
 */
export interface RunSummaryData {
  runId: string
  dryRun: boolean
  /** A resumed run: nodes an earlier process of it finished pass without an event of their own. */
  resumed: boolean
  outcome?: string
  exitCode?: number
  message?: string
  resume?: string
  durationMs: number
  journal: string
  /** The plan's warnings as the run started (run-started). */
  warnings: string[]
  /** The onFailure hooks the run ran once it had stopped, in order: whether each one told (`ok`), or its error. */
  onFailureHooks: { step: string; title: string; ok: boolean; error?: string }[]
  clusters: {
    stage: string; cluster: string; status: 'done' | 'failed' | 'skipped' | 'running' | 'not run'; note?: string; durationMs?: number
    /** Each node run: a node has one per hop it went through. */
    nodes: { node: string; hop?: number; status: 'done' | 'failed' | 'rolled back' | 'rebuilt'; durationMs?: number; cordoned?: boolean }[]
    /** Every node the run was to take through, in order (the run's outline). */
    planned: string[]
    /**
     * The nodes whose run began (node-started), finished or not: one the run stopped under (interrupted, the lock
     * lost) is not "not reached".
     */
    started: string[]
  }[]
  changed: number
  unchanged: number
  skipped: number
  /** Steps taken back (undo-done that changed something): a rollback's work, which `changed` does not count. */
  undone: number
  failed: { step: string; error: string }[]
  /** Each gate check once; a resume's, the soak's and the rollbacks' re-checks of the same gates apart (`rechecks`). */
  gates: { pass: number; warn: number; fail: number; unknown: number; notable: { gate: string; where: string; status: string; summary: string }[]; rechecks: Partial<Record<'soak' | 'rollback' | 'resume', Record<GateStatus, number>>> }
  wouldRun: number
  /** What happened when, for the failure report: stages, clusters, nodes, failures, gate verdicts that were not a pass, rollbacks. */
  timeline: { time: string; event: string }[]
  /** Gates that failed or could not check, with their evidence. */
  gateFailures: { gate: string; where: string; status: string; summary: string; evidence: string[]; hint?: string }[]
  /** Every node as the API showed it after the run. */
  final: { cluster: string; nodes: FinalNode[]; error?: string }[]
  rollbacks: { cluster: string; node: string; status: 'rolled back' | 'rollback stopped' | 'rolling back' | 'rebuilt' | 'rebuild stopped' | 'rebuilding'; path: string; detail: string; reason: string; error?: string; undone: string[]; restoredWith?: string; hop?: number
    /** What the rollback left as this run made it (an OS upgrade), and why. */
    kept?: { step: string; why: string }[] }[]
}

export class SummaryCollector {
  readonly data: RunSummaryData = {
    runId: '', dryRun: false, resumed: false, durationMs: 0, journal: '', warnings: [], onFailureHooks: [], clusters: [], changed: 0, unchanged: 0, skipped: 0, undone: 0, failed: [],
    gates: { pass: 0, warn: 0, fail: 0, unknown: 0, notable: [], rechecks: {} }, wouldRun: 0, rollbacks: [], timeline: [], gateFailures: [], final: [],
  }

  /** The timeline says a failure in full at the node it happened on, and `see above` where it is passed up. */
  private readonly told = new ToldFailures()

  private cluster(stage: string, cluster: string) {
    let c = this.data.clusters.find((x) => x.cluster === cluster)
    if (!c) this.data.clusters.push((c = { stage, cluster, status: 'running', nodes: [], planned: [], started: [] }))
    return c
  }

  add(e: ExecutorEvent): void {
    const d = this.data
    const moment = timelineText(e, this.told)
    if (moment) d.timeline.push({ time: e.time, event: moment })
    switch (e.type) {
      case 'nodes-final': d.final = e.clusters; break
      case 'run-started':
        d.runId = e.runId
        d.dryRun = e.dryRun
        d.resumed = e.resumed
        d.journal = e.journal
        d.warnings = e.warnings
        // Every cluster this run covers has a line, those it never reached (a stage after a failed one) too.
        for (const st of e.outline) for (const c of st.clusters) Object.assign(this.cluster(st.stage, c.name), { status: 'not run', planned: c.nodes })
        break
      case 'cluster-started': this.cluster(e.stage, e.cluster).status = 'running'; break
      case 'cluster-done': Object.assign(this.cluster(e.stage, e.cluster), { status: 'done', durationMs: e.durationMs }); break
      case 'cluster-failed': Object.assign(this.cluster(e.stage, e.cluster), { status: 'failed', note: e.error.split('\n')[0] }); break
      case 'cluster-skipped': Object.assign(this.cluster(e.stage, e.cluster), { status: 'skipped', note: e.reason }); break
      case 'node-started': {
        const c = this.cluster(e.stage, e.cluster)
        if (!c.started.includes(e.node)) c.started.push(e.node)
        break
      }
      case 'node-done': this.cluster(e.stage, e.cluster).nodes.push({ node: e.node, ...hopOf(e), status: 'done', durationMs: e.durationMs }); break
      case 'node-failed': this.cluster(e.stage, e.cluster).nodes.push({ node: e.node, ...hopOf(e), status: 'failed', cordoned: e.cordoned }); break
      case 'step-done':
        if (isOnFailureHook(e.step.id)) d.onFailureHooks.push({ step: e.step.id, title: e.step.title, ok: true })
        // The run lock is the run's own, taken and given back: counted, a blocked run would say "1 changed" beside
        // "nothing was changed".
        if (e.step.action === 'lock' || e.step.action === 'unlock') break
        if (e.changed) d.changed++
        else d.unchanged++
        if (d.dryRun) d.wouldRun += e.evidence.filter((x) => x.startsWith('would run:')).length
        break
      case 'step-skipped': d.skipped++; break
      case 'step-failed':
        if (isOnFailureHook(e.step.id)) d.onFailureHooks.push({ step: e.step.id, title: e.step.title, ok: false, error: e.error.split('\n')[0]! })
        d.failed.push({ step: e.step.id, error: e.error.split('\n')[0]! })
        break
      case 'gate-result':
        if (e.during) (d.gates.rechecks[e.during] ??= { pass: 0, warn: 0, fail: 0, unknown: 0 })[e.status]++
        else d.gates[e.status]++
        if (e.status !== 'pass') d.gates.notable.push({ gate: e.gate, where: [e.step.cluster, e.step.node].filter(Boolean).join('/'), status: e.status, summary: e.summary })
        if (e.status === 'fail' || e.status === 'unknown') d.gateFailures.push({ gate: e.gate, where: [e.step.cluster, e.step.node].filter(Boolean).join('/'), status: e.status, summary: e.summary, evidence: withHeldFolded(e.evidence, e.held), ...(e.hint ? { hint: e.hint } : {}) })
        break
      case 'rollback-started': d.rollbacks.push({ cluster: e.cluster, node: e.node, status: 'rolling back', path: e.path, detail: e.detail, reason: e.reason.split('\n')[0]!, undone: [], ...hopOf(e), ...(e.restoredWith ? { restoredWith: e.restoredWith } : {}) }); break
      case 'undo-done':
        if (!e.changed) break
        d.undone++
        d.rollbacks.findLast((r) => r.node === e.step.node && r.cluster === e.step.cluster)?.undone.push(e.step.id)
        break
      case 'rollback-done':
        Object.assign(d.rollbacks.findLast((r) => r.node === e.node && r.cluster === e.cluster) ?? {}, { status: 'rolled back', ...(e.kept ? { kept: e.kept } : {}) })
        for (const n of d.clusters.find((c) => c.cluster === e.cluster)?.nodes ?? []) if (n.node === e.node && n.hop === e.hop) Object.assign(n, { status: 'rolled back', cordoned: false })
        break
      case 'rollback-failed': Object.assign(d.rollbacks.findLast((r) => r.node === e.node && r.cluster === e.cluster) ?? {}, { status: 'rollback stopped', error: e.error.split('\n')[0] }); break
      case 'rebuild-started': d.rollbacks.push({ cluster: e.cluster, node: e.node, status: 'rebuilding', path: 'rebuild', detail: e.detail, reason: e.reason.split('\n')[0]!, undone: [], ...hopOf(e) }); break
      case 'rebuild-done':
        Object.assign(d.rollbacks.findLast((r) => r.node === e.node && r.cluster === e.cluster) ?? {}, { status: 'rebuilt' })
        for (const n of d.clusters.find((c) => c.cluster === e.cluster)?.nodes ?? []) if (n.node === e.node && n.hop === e.hop) Object.assign(n, { status: 'rebuilt', cordoned: false })
        break
      case 'rebuild-failed': Object.assign(d.rollbacks.findLast((r) => r.node === e.node && r.cluster === e.cluster) ?? {}, { status: 'rebuild stopped', error: e.error.split('\n')[0] }); break
      case 'run-finished':
        Object.assign(d, { outcome: e.outcome, exitCode: e.exitCode, message: e.message, durationMs: e.durationMs, journal: e.journal, ...(e.resume ? { resume: e.resume } : {}) })
        break
    }
  }
}

/** The moments a failure report's timeline keeps (progress of every step stays in the journal). */
function timelineText(e: ExecutorEvent, told: ToldFailures): string | undefined {
  const first = (x: string) => x.split('\n')[0]
  switch (e.type) {
    case 'stage-started': return `stage ${e.stage} started`
    case 'stage-done': return `stage ${e.stage} done`
    case 'stage-failed': return `stage ${e.stage} failed: ${told.compact(e.error)}`
    case 'cluster-started': return `${e.cluster} started`
    case 'cluster-done': return `${e.cluster} done`
    case 'cluster-failed': return `${e.cluster} failed: ${told.compact(e.error)}`
    case 'node-done': return `${e.cluster}/${e.node} upgraded`
    case 'node-failed':
      told.remember(e.error)
      return `${e.cluster}/${e.node} failed: ${first(e.error)}`
    case 'gate-result': return e.status === 'pass' ? undefined : `gate ${e.gate} ${e.status}${e.during ? ` (${e.during})` : ''} on ${[e.step.cluster, e.step.node].filter(Boolean).join('/')}: ${e.summary}`
    case 'rollback-started': return `${e.cluster}/${e.node}: rollback started (${e.path})`
    case 'undo-done': return `${e.step.cluster}/${e.step.node}: undone ${e.step.id}`
    case 'rollback-done': return `${e.cluster}/${e.node}: rolled back`
    case 'rollback-failed': return `${e.cluster}/${e.node}: rollback stopped: ${first(e.error)}`
    case 'rebuild-started': return `${e.cluster}/${e.node}: rebuild started`
    case 'rebuild-done': return `${e.cluster}/${e.node}: rebuilt`
    case 'rebuild-failed': return `${e.cluster}/${e.node}: rebuild stopped: ${first(e.error)}`
    case 'approval-needed': return `stage ${e.stage} waits for approval`
    case 'lock-lost': return `${e.cluster}: lock lost: ${e.reason}`
    case 'run-finished': return `run ${e.outcome} (exit ${e.exitCode})`
    default: return undefined
  }
}

/**
 * Warnings, failures and gates that could not check (unknown: never a pass), one by one; the same result said again
 * (a soak re-checks its post-gates every round) is one line with how often.
 */
function notableLines(list: RunSummaryData['gates']['notable']): string[] {
  const times = new Map<string, number>()
  for (const n of list) {
    const line = `${n.status}${n.status === 'unknown' ? ' (could not check)' : ''} ${n.gate}${n.where ? ` (${n.where})` : ''}: ${n.summary}`
    times.set(line, (times.get(line) ?? 0) + 1)
  }
  return [...times].map(([line, n]) => (n > 1 ? `${line} (${n} times)` : line))
}

/** `told`: the run's message already says why (the failure the rollback answered), so the line does not again. */
const rollbackLine = (r: RunSummaryData['rollbacks'][number], told: (text: string) => boolean): string =>
  `${r.status} ${r.cluster}/${r.node}${r.hop !== undefined && r.hop > 1 ? ` · hop ${r.hop}` : ''} (${r.path})${told(r.reason) ? '' : ` after: ${r.reason}`}${r.restoredWith ? `; with the control plane restored in the rollback of ${r.restoredWith}` : ''}${r.undone.length ? `; undone: ${r.undone.map((id) => id.split('/').pop()).join(', ')}` : ''}${r.kept?.length ? `; kept: ${r.kept.map((k) => `${k.step.split('/').pop()} (${k.why.split(';')[0]})`).join(', ')}` : ''}${r.error ? `; stopped: ${r.error}` : ''}`

/** Whether the run's message already says this text. */
const toldBy = (d: RunSummaryData) => (text: string): boolean => (d.message ?? '').includes(text)

const hopOf = (e: { hop?: number }): { hop?: number } => (e.hop !== undefined ? { hop: e.hop } : {})

/** `cp-1`, or `cp-1 · hop 2` where the node went through several hops of this run (one line each). */
const nodeRunName = (c: { nodes: { node: string; hop?: number }[] }, n: { node: string; hop?: number }): string =>
  n.hop !== undefined && c.nodes.some((x) => x.node === n.node && x.hop !== n.hop) ? `${n.node} · hop ${n.hop}` : n.node

/** `5 changed, 3 already done or read-only, 0 skipped, 1 failed`, and `, 6 undone` where a rollback took steps back. */
const stepCountsText = (d: RunSummaryData): string =>
  `${d.changed} changed, ${d.unchanged} already done or read-only, ${d.skipped} skipped, ${d.failed.length} failed${d.undone ? `, ${d.undone} undone` : ''}`

const secs = (ms?: number): string => (ms === undefined ? '' : `${(ms / 1000).toFixed(1)}s`)

/**
 * A failed cluster's nodes the run stopped under (begun, neither done nor failed: interrupted, the lock lost) and those
 * it never reached (after the failure, or behind the circuit breaker), with the version the API showed after the run:
 * where the cluster was left, besides the nodes it lists. Not for a resumed run, whose nodes done by an earlier process
 * of it have no event here to tell them from the ones never reached.
 */
function notReached(d: RunSummaryData, c: RunSummaryData['clusters'][number]): string | undefined {
  if (c.status !== 'failed' || d.resumed) return undefined
  const left = c.planned.filter((n) => !c.nodes.some((x) => x.node === n))
  if (left.length === 0) return undefined
  const final = new Map((d.final.find((f) => f.cluster === c.cluster)?.nodes ?? []).map((n) => [n.node, n.kubelet]))
  const named = (ns: string[]) => `${ns.slice(0, 8).map((n) => (final.has(n) ? `${n} (${final.get(n)})` : n)).join(', ')}${ns.length > 8 ? ` and ${ns.length - 8} more` : ''}`
  const underWay = left.filter((n) => c.started.includes(n))
  const never = left.filter((n) => !c.started.includes(n))
  return [...(underWay.length ? [`stopped under way: ${named(underWay)}`] : []), ...(never.length ? [`not reached: ${named(never)}`] : [])].join('; ')
}

/** `; resume re-checks: 5 pass; soak re-checks: 58 pass; rollback re-checks: 7 pass, 1 warn` (only the statuses seen). */
const recheckText = (g: RunSummaryData['gates']): string =>
  (['resume', 'soak', 'rollback'] as const).flatMap((k) => {
    const r = g.rechecks[k]
    return r ? [`; ${k} re-checks: ${(['pass', 'warn', 'fail', 'unknown'] as const).filter((s) => r[s] > 0).map((s) => `${r[s]} ${s}`).join(', ')}`] : []
  }).join('')

export function renderSummaryText(d: RunSummaryData): string {
  const out: string[] = []
  out.push('', `Summary of ${d.dryRun ? 'dry-run' : 'run'} ${d.runId}: ${d.outcome ?? 'unfinished'} (exit ${d.exitCode ?? '?'}) in ${secs(d.durationMs)}`)
  if (d.message) out.push(`  ${d.message}`)
  // The run's message already tells the failure that stopped it: a cluster's note or a failed step saying the same
  // again would only push the rest of the summary out of sight.
  const told = toldBy(d)
  for (const c of d.clusters) {
    out.push(`  ${c.stage} › ${c.cluster}: ${c.status}${c.durationMs !== undefined ? ` in ${secs(c.durationMs)}` : ''}${c.note && !told(c.note) ? ` (${c.note})` : ''}`)
    for (const n of c.nodes) out.push(`    ${n.status === 'done' ? '✓' : n.status === 'rolled back' ? '↩' : n.status === 'rebuilt' ? '⟳' : '✗'} ${nodeRunName(c, n)}${n.durationMs !== undefined ? ` ${secs(n.durationMs)}` : ''}${n.cordoned ? ' (left cordoned)' : ''}`)
    const left = notReached(d, c)
    if (left) out.push(`    – ${left}`)
  }
  out.push(`  steps: ${stepCountsText(d)}${d.dryRun ? `; ${d.wouldRun} command(s) recorded, not run` : ''}`)
  const g = d.gates
  out.push(`  gates: ${g.pass} pass, ${g.warn} warn, ${g.fail} fail, ${g.unknown} unknown${recheckText(g)}`)
  for (const n of notableLines(g.notable)) out.push(`    ${n}`)
  for (const f of failedToList(d, told)) out.push(`  failed: ${f.step}: ${f.error}`)
  for (const r of d.rollbacks) out.push(`  ${rollbackLine(r, told)}`)
  for (const h of d.onFailureHooks) out.push(`  ${onFailureLine(h)}`)
  for (const w of d.warnings) out.push(`  warning: ${w}`)
  const stuck = d.final.flatMap((c) => c.nodes.filter((n) => !n.ready || n.cordoned).map((n) => `${c.cluster}/${n.node} (${[n.ready ? '' : 'NotReady', n.cordoned ? 'cordoned' : ''].filter(Boolean).join(', ')})`))
  if (stuck.length) out.push(`  needs attention now: ${stuck.join(', ')}`)
  out.push(`  journal: ${d.journal}`)
  if (!d.dryRun && d.journal.endsWith('journal.jsonl')) out.push(`  report: ${d.journal.replace(/journal\.jsonl$/, 'report.md')} (and report.json)`)
  if (d.resume) out.push(`  to continue: ${d.resume}`)
  return `${out.join('\n')}\n`
}

/** The stage's onFailure hooks (planner ids `<stage>/hook/on-failure/N`): run once the run stopped, told apart. */
const isOnFailureHook = (id: string): boolean => /^[^/]+\/hook\/on-failure\/\d+$/.test(id)

/** The failed steps to list: not the one the run's message tells, nor an onFailure hook (it has its own line). */
const failedToList = (d: RunSummaryData, told: (text: string) => boolean): RunSummaryData['failed'] =>
  d.failed.filter((f) => !told(`step ${f.step} failed: ${f.error}`) && !isOnFailureHook(f.step))

const onFailureLine = (h: RunSummaryData['onFailureHooks'][number]): string =>
  h.ok ? `after the failure: ✓ ${h.title}` : `after the failure: ✗ ${h.title}: ${h.error}`

const md = (s: string): string => s.replace(/[|\\`*_<>]/g, (c) => `\\${c}`)

export function renderSummaryMarkdown(d: RunSummaryData): string {
  const icon = d.exitCode === 0 ? '✅' : d.outcome === 'awaiting-approval' || d.outcome === 'paused' ? '⏸️' : '❌'
  const out: string[] = []
  out.push(`### ${icon} kupgrade ${d.dryRun ? 'dry-run' : 'apply'} \`${d.runId}\`: ${d.outcome ?? 'unfinished'} (exit ${d.exitCode ?? '?'}) in ${secs(d.durationMs)}`, '')
  if (d.message) out.push(md(d.message), '')
  // As in the text: what the run's message says above is not said again in the table or the failed steps.
  const told = toldBy(d)
  out.push('| stage | cluster | result | duration | nodes |', '|---|---|---|---|---|')
  for (const c of d.clusters) {
    const left = notReached(d, c)
    const nodes = [...c.nodes.map((n) => `${n.status === 'done' ? '✓' : n.status === 'rolled back' ? '↩' : n.status === 'rebuilt' ? '⟳' : '✗'} ${md(nodeRunName(c, n))}${n.cordoned ? ' (cordoned)' : ''}`), ...(left ? [`– ${md(left)}`] : [])].join('<br>')
    out.push(`| ${md(c.stage)} | ${md(c.cluster)} | ${c.status}${c.note && !told(c.note) ? `: ${md(c.note)}` : ''} | ${secs(c.durationMs)} | ${nodes} |`)
  }
  const g = d.gates
  out.push('', `**Steps:** ${stepCountsText(d)}. **Gates:** ${g.pass} pass, ${g.warn} warn, ${g.fail} fail, ${g.unknown} unknown${recheckText(g)}.`)
  if (g.notable.length) out.push('', ...notableLines(g.notable).map((n) => `- ${md(n)}`))
  const failed = failedToList(d, told)
  if (failed.length) out.push('', ...failed.map((f) => `- failed \`${f.step}\`: ${md(f.error)}`))
  if (d.rollbacks.length) out.push('', '**Rollbacks:**', ...d.rollbacks.map((r) => `- ${md(rollbackLine(r, told))}`))
  if (d.onFailureHooks.length) out.push('', ...d.onFailureHooks.map((h) => `- ${md(onFailureLine(h))}`))
  if (d.warnings.length) out.push('', '**Warnings:**', ...d.warnings.map((w) => `- ${md(w)}`))
  if (d.final.length) {
    out.push('', '**Nodes after the run:**', '', '| cluster | node | kubelet | Ready | schedulable |', '|---|---|---|---|---|')
    for (const c of d.final) {
      if (c.error) out.push(`| ${md(c.cluster)} | (could not read: ${md(c.error)}) | | | |`)
      for (const n of c.nodes) out.push(`| ${md(c.cluster)} | ${md(n.node)} | ${md(n.kubelet)} | ${n.ready ? 'yes' : '**no**'} | ${n.cordoned ? '**cordoned**' : 'yes'} |`)
    }
  }
  if (d.gateFailures.length) {
    out.push('', '<details><summary>Gate evidence</summary>', '')
    for (const g of d.gateFailures) out.push(`- **${md(g.gate)}** ${g.status} on ${md(g.where)}: ${md(g.summary)}${g.hint ? ` (hint: ${md(g.hint)})` : ''}`, ...g.evidence.map((x) => `  - ${md(x).replace(/\n/g, '<br>')}`))
    out.push('', '</details>')
  }
  if (d.exitCode !== 0 && d.timeline.length) {
    out.push('', '<details><summary>Timeline</summary>', '')
    for (const t of d.timeline) out.push(`- ${t.time.slice(11, 19)} ${md(t.event)}`)
    out.push('', '</details>')
  }
  out.push('', `Journal: \`${d.journal}\``)
  if (d.resume) out.push('', `To continue: \`${d.resume}\``)
  return `${out.join('\n')}\n`
}
