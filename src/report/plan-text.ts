import type { ExecutionPlan, Step } from '../planner/types.js'
import { batchesText, countSteps, hopsText, nodesText } from './plan-summary.js'

export interface TextOptions {
  color: boolean
}

const paint = (on: boolean, code: number, s: string) => (on ? `\u001b[${code}m${s}\u001b[0m` : s)

/** A readable tree for terminals: stage → cluster → hop → phase → node → steps. */
export function renderPlanText(plan: ExecutionPlan, opts: TextOptions): string {
  const bold = (s: string) => paint(opts.color, 1, s)
  const dim = (s: string) => paint(opts.color, 2, s)
  const yellow = (s: string) => paint(opts.color, 33, s)
  const out: string[] = []
  const total = plan.steps.length
  const mutating = plan.steps.filter((s) => s.mutates && !s.skip).length
  out.push(bold(`Plan ${plan.plan}`) + ` → ${plan.target.kubernetes ?? 'no Kubernetes change'}${plan.target.os ? `, OS ${JSON.stringify(plan.target.os.packages)} (reboot ${plan.target.os.reboot})` : ''}`)
  out.push(dim(`${total} steps, ${mutating} change the cluster.  Legend: * changes   - reads only   = skipped`))
  for (const w of plan.warnings) out.push(yellow(`warning: ${w}`))
  for (const stage of plan.stages) {
    out.push('')
    out.push(bold(`stage ${stage.name}`) + dim(`${stage.approval === 'required' ? '  approval required' : ''}${stage.parallelClusters > 1 ? `  up to ${stage.parallelClusters} clusters at once` : ''}`))
    for (const s of stage.before) out.push(line(s, 1))
    for (const c of stage.clusters) {
      const n = countSteps(c)
      out.push(`  ${bold(`cluster ${c.name}`)}  ${c.distribution} ${c.from} → ${hopsText(c, plan.target)}`)
      out.push(dim(`    nodes: ${nodesText(c)}; worker batches: ${batchesText(c)}; on failure: ${c.onFailure} (max ${c.maxFailedNodes} failed node${c.maxFailedNodes === 1 ? '' : 's'}); ${n.total} steps${n.skipped ? `, ${n.skipped} skipped` : ''}`))
      for (const g of c.gates.skipped) out.push(yellow(`    gate ${g.gate} skipped by the plan: ${g.reason}`))
      let header = ''
      for (const s of c.steps) {
        const h = groupHeader(s)
        if (h !== header) {
          header = h
          out.push(`    ${h}`)
        }
        out.push(line(s, s.node ? 4 : 3))
      }
    }
    for (const s of stage.after) out.push(line(s, 1))
  }
  return `${out.join('\n')}\n`

  function line(s: Step, depth: number): string {
    const mark = s.skip ? '=' : s.mutates ? '*' : '-'
    const text = `${'  '.repeat(depth)}${mark} ${s.title}${s.skip ? ` (skipped: ${s.skip})` : ''}`
    return s.skip ? dim(text) : text
  }
}

function groupHeader(s: Step): string {
  const hop = s.hop !== undefined ? `hop ${s.hop} · ` : ''
  switch (s.phase) {
    case 'control-plane':
      return `${hop}control plane · ${s.node}`
    case 'workers':
      return `${hop}workers · batch ${s.batch}${s.batch === 1 ? ' (canary)' : ''} · ${s.node}`
    case 'backup':
      return `${hop}backup`
    default:
      return `${hop}${s.phase}`
  }
}
