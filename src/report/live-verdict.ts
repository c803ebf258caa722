import { blocks } from '../gates/run.js'
import type { GateReport } from './gate-report.js'
import { paint } from './paint.js'

/**
 * The last lines of `plan --live` as text: can the plan be applied as the clusters stand, and if not, why. The live
 * state, the gates and the steps run to hundreds of lines; the verdict behind exit code 3 must not be buried in them.
 */
export function renderLiveVerdictText(blockers: readonly string[], gates: GateReport, o: { color: boolean }): string {
  const results = gates.clusters.flatMap((c) => c.results)
  const n = (s: string) => results.filter((r) => r.status === s).length
  const stopping = results.filter((r) => blocks(r.status))
  if (blockers.length === 0 && stopping.length === 0) {
    const warned = n('warn')
    return `${paint(o.color, 32, 'ready')}: the clusters are as the plan says and every pre-gate passed (${results.length} checks${warned ? `, ${warned} warned` : ''})\n`
  }
  const clusters = new Set(stopping.map((r) => r.cluster)).size
  const why = [
    ...blockers,
    ...(stopping.length ? [`pre-gates: ${[n('fail') && `${n('fail')} failed`, n('unknown') && `${n('unknown')} could not check`].filter(Boolean).join(', ')} in ${clusters} cluster${clusters === 1 ? '' : 's'} (the gate results above)`] : []),
  ]
  return `${paint(o.color, 31, 'BLOCKED')}: apply would stop before it changes any node. Nothing was changed; fix these, then run plan --live again:\n${why.map((w) => `  - ${w}\n`).join('')}`
}
