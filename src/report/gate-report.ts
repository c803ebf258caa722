import type { GateRun } from '../gates/run.js'
import { blocks, worstStatus } from '../gates/run.js'
import type { GateStatus } from '../gates/types.js'
import { sameButFor, sameFor } from '../util/same-but-for.js'
import { paint } from './paint.js'

/** The results of one gate run over clusters (`check`, the pre-gates of `plan --live`), with the skipped gates. */
export interface GateReport {
  checkedAt: string
  durationMs: number
  clusters: {
    name: string
    distribution: string
    results: GateRun[]
    skipped: { gate: string; reason: string }[]
    /** The cluster's nodes and their addresses: an observation of many nodes alike is said once (evidenceLines). */
    nodes?: { name: string; host: string }[]
  }[]
}

export const reportStatus = (r: GateReport): GateStatus => worstStatus(r.clusters.flatMap((c) => c.results))
export const reportBlocks = (r: GateReport): boolean => r.clusters.some((c) => c.results.some((x) => blocks(x.status)))

const MARK: Record<GateStatus, string> = { pass: 'ok  ', warn: 'WARN', fail: 'FAIL', unknown: '??? ' }
const COLOR: Record<GateStatus, number> = { pass: 32, warn: 33, fail: 31, unknown: 35 }

function counts(rs: GateRun[]): string {
  const n = (s: GateStatus) => rs.filter((r) => r.status === s).length
  return `${n('pass')} passed, ${n('warn')} warned, ${n('fail')} failed, ${n('unknown')} unknown`
}

/** Terminal form: one line per gate; for anything not passing its evidence, hint and incident underneath. */
export function renderGateReportText(r: GateReport, o: { color: boolean; verbose?: boolean }): string {
  const out: string[] = []
  const all = r.clusters.flatMap((c) => c.results)
  for (const c of r.clusters) {
    const hosts = new Map((c.nodes ?? []).map((n) => [n.name, n.host]))
    out.push(paint(o.color, 1, `gates for cluster ${c.name}`) + ` (${c.distribution}): ${counts(c.results)}`)
    const width = Math.max(0, ...c.results.map((x) => x.label.length))
    const referTo = toldOnce()
    for (const x of c.results) {
      out.push(`  ${paint(o.color, COLOR[x.status], MARK[x.status])} ${x.label.padEnd(width)}  ${x.node ? `[${x.node}] ` : ''}${x.summary}`)
      if (x.status !== 'pass' || o.verbose) {
        const { lines, held } = heldFolded(x, evidenceLines(x, hosts))
        const shown = lines.slice(0, x.status === 'pass' ? 20 : 8)
        for (const l of shown) {
          // By what was observed, whoever observed it: every API gate of a cluster whose API gave no answer saw the same.
          const first = x.status === 'pass' ? undefined : referTo(l.observed, x.label)
          out.push(`         ${first === undefined ? l.text.replace(/\n/g, '\n           ') : referred(l, first)}`)
        }
        const more = lines.slice(shown.length).reduce((n, l) => n + l.observations, 0)
        if (more > 0 && x.status !== 'pass') out.push(`         (+${more} more observations; --format json has all)`)
        if (held > 0) out.push(`         (+${held} observation${held === 1 ? '' : 's'} that held; --format json has all)`)
        if (x.hint && x.status !== 'pass') {
          const first = referTo(`hint: ${x.hint}`, x.label)
          out.push(`         hint: ${first === undefined ? x.hint : `as for ${first} above`}`)
        }
        if (x.status !== 'pass' && x.incident !== 'custom') out.push(`         stops incident: ${x.incident}`)
      }
    }
    for (const s of c.skipped) out.push(`  ${paint(o.color, 2, 'skip')} ${s.gate.padEnd(width)}  skipped by the plan: ${s.reason}`)
  }
  const st = worstStatus(all)
  out.push(paint(o.color, COLOR[st], `${blocks(st) ? 'BLOCKED' : 'healthy'}: ${counts(all)} in ${(r.durationMs / 1000).toFixed(1)}s`))
  return `${out.join('\n')}\n`
}

/**
 * One cause (no SSH key, no kubeconfig) makes many gates of a cluster observe the same and get the same hint: it is
 * said in full at the first gate and referred to at the others. Returns the other gate that said TEXT first, if one
 * did (within one gate two sources that saw the same, `HTTP 200`, are each said).
 */
function toldOnce(): (text: string, label: string) => string | undefined {
  const saidAt = new Map<string, string>()
  return (text, label) => {
    const first = saidAt.get(text)
    if (first === undefined) saidAt.set(text, label)
    return first === label ? undefined : first
  }
}

interface EvidenceLine { source: string; observed: string; text: string; observations: number; held: boolean }

/**
 * Under a failure, what held is a count (the gate judged each observation), not lines between what did not: the
 * lines to show and how many observations held.
 */
function heldFolded(x: GateRun, all: EvidenceLine[]): { lines: EvidenceLine[]; held: number } {
  const notHeld = all.filter((l) => !l.held)
  if (x.status === 'pass' || notHeld.length === 0 || notHeld.length === all.length) return { lines: all, held: 0 }
  return { lines: notHeld, held: all.filter((l) => l.held).reduce((n, l) => n + l.observations, 0) }
}

/** An evidence line said already at gate FIRST: its source (and how many more nodes), and where. */
const referred = (l: { source: string; observations: number }, first: string): string =>
  `${l.source}${l.observations > 1 ? ` and ${l.observations - 1} more` : ''}: as for ${first} above`

/**
 * A gate's evidence as report lines: what several nodes observed alike but for their own names and addresses (no
 * SSH credentials, the same unreachable VIP, the same certificate file expiring on every controller) is one line
 * naming the others, so one cause does not fill the report.
 */
function evidenceLines(x: GateRun, hosts: Map<string, string>): EvidenceLine[] {
  const onNodes = x.evidence.flatMap((e, at) => {
    // `node ctrl-1` or `node ctrl-1: /var/lib/k0s/pki/admin.crt`: alike when what follows the name is alike too.
    const m = /^node (\S+?)(: .*)?$/.exec(e.source)
    const name = m?.[1]
    return name ? [{ name, text: `${m![2] ?? ''}\u0001${e.observed}`, own: [name, hosts.get(name) ?? ''], at }] : []
  })
  // Each group is said at its first observation; the others in it are named there and not said again.
  const said = new Map(sameButFor(onNodes).map((g) => [onNodes[g.index]!.at, g]))
  const grouped = new Set(onNodes.map((n) => n.at))
  return x.evidence.flatMap((e, at) => {
    const held = e.status === 'pass'
    if (!grouped.has(at)) return [{ source: e.source, observed: e.observed, text: `${e.source}: ${e.observed}`, observations: 1, held }]
    const g = said.get(at)
    if (!g) return []
    const observed = `${e.observed}${sameFor(g.others, 'node')}`
    return [{ source: e.source, observed, text: `${e.source}: ${observed}`, observations: 1 + g.others.length, held }]
  })
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const EMOJI: Record<GateStatus, string> = { pass: ':white_check_mark:', warn: ':warning:', fail: ':x:', unknown: ':grey_question:' }

/** Pull-request form: a table per cluster, evidence of non-passing gates in a details block. */
export function renderGateReportMarkdown(r: GateReport): string {
  const out: string[] = [`### Gates: ${blocks(reportStatus(r)) ? 'blocked' : 'healthy'} (${counts(r.clusters.flatMap((c) => c.results))})`]
  for (const c of r.clusters) {
    out.push('', `**${cell(c.name)}** (${c.distribution})`, '', '| gate | status | summary |', '|---|---|---|')
    for (const x of c.results) out.push(`| \`${cell(x.label)}\` | ${EMOJI[x.status]} ${x.status} | ${cell(`${x.node ? `[${x.node}] ` : ''}${x.summary}`)} |`)
    for (const s of c.skipped) out.push(`| \`${cell(s.gate)}\` | skipped | ${cell(`skipped by the plan: ${s.reason}`)} |`)
    // As in the text form: nodes alike said once, and what an earlier gate said referred to (a pull-request comment
    // holds 65,536 characters; a fleet without credentials filled it twice over).
    const hosts = new Map((c.nodes ?? []).map((n) => [n.name, n.host]))
    const referTo = toldOnce()
    for (const x of c.results.filter((y) => y.status !== 'pass')) {
      out.push('', `<details><summary>${cell(x.label)}: evidence</summary>`, '')
      const { lines, held } = heldFolded(x, evidenceLines(x, hosts))
      for (const l of lines) {
        const first = referTo(l.observed, x.label)
        out.push(first === undefined ? `- ${cell(l.source)}: \`${cell(l.observed).replace(/`/g, "'")}\`` : `- ${cell(referred(l, first))}`)
      }
      if (held > 0) out.push(`- … and ${held} observation${held === 1 ? '' : 's'} that held (\`--format json\` has all)`)
      if (x.hint) {
        const first = referTo(`hint: ${x.hint}`, x.label)
        out.push(`- hint: ${cell(first === undefined ? x.hint : `as for ${first} above`)}`)
      }
      if (x.incident !== 'custom') out.push(`- stops incident: \`${x.incident}\``)
      out.push('', '</details>')
    }
  }
  return `${out.join('\n')}\n`
}

/** Machine form (versioned): every result with all its evidence. */
export function gateReportJson(r: GateReport): Record<string, unknown> {
  return {
    apiVersion: 'kupgrade.dev/v1alpha1',
    kind: 'GateReport',
    status: reportStatus(r),
    blocked: reportBlocks(r),
    checkedAt: r.checkedAt,
    durationMs: r.durationMs,
    clusters: r.clusters.map((c) => ({
      name: c.name,
      distribution: c.distribution,
      status: worstStatus(c.results),
      results: c.results.map((x) => ({ gate: x.gate, label: x.label, ...(x.node ? { node: x.node } : {}), status: x.status, summary: x.summary, evidence: x.evidence, ...(x.hint ? { hint: x.hint } : {}), incident: x.incident, attempts: x.attempts, durationMs: x.durationMs })),
      skipped: c.skipped,
    })),
  }
}
