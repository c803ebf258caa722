import type { ExecutionPlan, Step } from '../planner/types.js'
import { batchesText, countSteps, hopsText, nodesText, rebuildGroups, undoText } from './plan-summary.js'

/** Live state rendered by facts gathering, appended when `plan --live` ran. */
export interface MarkdownExtras {
  liveSection?: string
}

/** A pull-request comment: summary table, warnings, then each cluster's steps folded in <details>. */
export function renderPlanMarkdown(plan: ExecutionPlan, extras: MarkdownExtras = {}): string {
  const out: string[] = []
  const mutating = plan.steps.filter((s) => s.mutates && !s.skip).length
  out.push(`### kupgrade plan \`${plan.plan}\``)
  out.push('')
  out.push(`Target: ${plan.target.kubernetes ? `Kubernetes **${plan.target.kubernetes}**` : 'no Kubernetes change'}${plan.target.os ? `; OS packages ${cell(JSON.stringify(plan.target.os.packages))}, reboot ${plan.target.os.reboot}` : ''}. ${plan.steps.length} steps, ${mutating} of which change a cluster.`)
  out.push('')
  out.push('| stage | cluster | distribution | from → to | hops | nodes | worker batches | gates (pre / post) | on failure |')
  out.push('|---|---|---|---|---|---|---|---|---|')
  for (const stage of plan.stages) {
    const stageCell = `${stage.name}${stage.approval === 'required' ? ' (approval)' : ''}${stage.soak !== '0s' ? `, soak ${stage.soak}` : ''}`
    for (const c of stage.clusters) {
      out.push(`| ${cell(stageCell)} | ${cell(c.name)} | ${c.distribution} | ${cell(`${c.from} → ${c.to ?? c.from}`)} | ${cell(hopsText(c, plan.target))} | ${nodesText(c)} | ${batchesText(c)} | ${c.gates.pre.length} / ${c.gates.post.length} | ${c.onFailure}, max ${c.maxFailedNodes} failed |`)
    }
  }
  if (plan.warnings.length > 0) {
    out.push('')
    out.push('**Warnings**')
    out.push('')
    for (const w of plan.warnings) out.push(`- ⚠️ ${cell(w)}`)
  }
  if (extras.liveSection) {
    out.push('')
    out.push(extras.liveSection.trimEnd())
  }
  for (const stage of plan.stages) {
    for (const c of stage.clusters) {
      const n = countSteps(c)
      out.push('')
      out.push(`<details><summary><b>${stage.name} / ${c.name}</b>: ${n.total} steps, ${n.mutating} changes${n.skipped ? `, ${n.skipped} skipped` : ''}</summary>`)
      out.push('')
      out.push(`Gates before: ${c.gates.pre.map((g) => `\`${g}\``).join(', ')}. After each node: ${c.gates.afterNode.map((g) => `\`${g}\``).join(', ')}. After: ${c.gates.post.map((g) => `\`${g}\``).join(', ')}.${c.gates.skipped.map((g) => ` **Skipped:** \`${g.gate}\` (${cell(g.reason)}).`).join('')}`)
      out.push('')
      for (const g of rebuildGroups(c)) {
        out.push(`**Rebuild on failure**${g.hop !== undefined ? ` (hop ${g.hop})` : ''} of ${g.nodes.map((n) => `\`${n}\``).join(', ')}: ${cell(g.detail)}${g.steps.length ? `, as on \`${g.nodes[0]}\`:` : ''}`)
        out.push('')
        g.steps.forEach((t, i) => out.push(`${i + 1}. ${cell(t)}`))
        if (g.steps.length) out.push('')
      }
      for (const r of c.restore ?? []) {
        out.push(`**Control-plane restore** (hop ${r.hop}), when a moved control-plane node is rolled back: ${r.automatic ? 'automatic' : cell(r.detail)}${r.automatic ? ':' : ''}`)
        out.push('')
        if (r.automatic) {
          r.steps.forEach((s, i) => out.push(`${i + 1}. \`${s.node}\`: ${cell(s.title)}`))
          out.push('')
        }
      }
      out.push('| # | phase | node | step | undo |')
      out.push('|---|---|---|---|---|')
      const steps = [...(c === stage.clusters[0] ? stage.before : []), ...c.steps, ...(c === stage.clusters[stage.clusters.length - 1] ? stage.after : [])]
      steps.forEach((s, i) => out.push(`| ${i + 1} | ${phase(s)} | ${s.node ?? ''} | ${s.skip ? `~~${cell(s.title)}~~ (skipped: ${cell(s.skip)})` : `${s.mutates ? '**change** ' : ''}${cell(s.title)}`} | ${cell(undoText(s))} |`))
      out.push('')
      if (c === stage.clusters[stage.clusters.length - 1] && stage.onFailureHooks.length > 0) {
        out.push(`If the run stops in stage ${stage.name} on a failure: ${stage.onFailureHooks.map((s) => cell(s.title)).join(', ')}.`)
        out.push('')
      }
      out.push('</details>')
    }
  }
  return `${out.join('\n')}\n`
}

const phase = (s: Step): string =>
  `${s.hop !== undefined ? `hop ${s.hop} ` : ''}${s.phase}${s.batch !== undefined ? ` (batch ${s.batch})` : ''}`

// Titles carry versions and paths; a pipe or newline would break the table, and HTML is never wanted.
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ').replace(/</g, '&lt;').replace(/>/g, '&gt;')
