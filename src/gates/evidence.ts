import { failureReason } from '../errors.js'
import { gateById } from './catalog.js'
import type { GateEvidence, GateResult, GateStatus } from './types.js'

/**
 * Building a verdict from findings. A gate collects findings (status + evidence) per thing it looked at and the
 * verdict is the worst of them: one unreadable node makes the gate `unknown` unless another node already fails it.
 */
export interface Finding {
  status: GateStatus
  source: string
  observed: string
  /** Short phrase for the summary ("prod-w-1 NotReady"); pass findings need none. */
  problem?: string
}

const RANK: Record<GateStatus, number> = { pass: 0, warn: 1, unknown: 2, fail: 3 }

export function verdict(id: string, findings: Finding[], o: { ok: string; hint?: string; hintFor?: Partial<Record<GateStatus, string>> }): GateResult {
  const incident = gateById(id)?.incident ?? 'unknown'
  if (findings.length === 0) return { status: 'unknown', summary: 'nothing to check was found', evidence: [], incident, hint: 'check the plan lists this cluster’s nodes' }
  const worst = findings.reduce<GateStatus>((w, f) => (RANK[f.status] > RANK[w] ? f.status : w), 'pass')
  const problems = findings.filter((f) => f.status !== 'pass')
  // Evidence: every non-passing observation first, then the passing ones (a pass needs proof too).
  const evidence: GateEvidence[] = [...problems, ...findings.filter((f) => f.status === 'pass')].map((f) => ({ source: f.source, observed: f.observed, status: f.status }))
  const summary = worst === 'pass' ? o.ok : problems.filter((f) => f.status === worst || RANK[f.status] >= RANK.unknown).map((f) => f.problem ?? f.observed).slice(0, 5).join('; ') + (problems.length > 5 ? ` (+${problems.length - 5} more)` : '')
  const hint = worst === 'pass' ? undefined : (o.hintFor?.[worst] ?? o.hint)
  return { status: worst, summary, evidence, incident, ...(hint ? { hint } : {}) }
}

export const errorText = (err: unknown): string => failureReason(err).slice(0, 400)

export const clip = (s: string, n = 300): string => {
  const t = s.trim().replace(/\s+\n/g, '\n')
  return t.length > n ? `${t.slice(0, n)}…` : t
}

/** `2Gi`, `500M`, `10` (bytes) → bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(s.trim())
  if (!m) return NaN
  const mult: Record<string, number> = { '': 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 }
  return Number(m[1]) * mult[m[2] ?? '']!
}

export const humanBytes = (b: number): string => {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++ }
  return `${i === 0 ? b : b.toFixed(1)} ${u[i]}`
}
