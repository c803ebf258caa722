import type { ClusterPlan, ExecutionPlan, Step } from '../planner/types.js'
import { aboutText, clusterSeconds, planSeconds, stageSeconds } from './plan-estimate.js'
import { batchesText, countSteps, hopsText, nodesText, rebuildGroups, undoText } from './plan-summary.js'
import { paint } from './paint.js'

export interface TextOptions {
  color: boolean
  /** Titles longer than this are cut with … (the JSON and markdown formats keep them whole). Default 100. */
  titleWidth?: number
}

/**
 * A terminal dry-run: stage → cluster → hop → groups that run at once. Each step shows its id (relative to the
 * group's id prefix), what it does and how it is undone. Nodes whose steps are the same (the usual case) are listed
 * once with `<node>` standing for each of them, so a fleet fits on a screen; control-plane nodes go one at a time,
 * the nodes of a worker batch at once.
 */
export function renderPlanText(plan: ExecutionPlan, opts: TextOptions): string {
  const bold = (s: string) => paint(opts.color, 1, s)
  const dim = (s: string) => paint(opts.color, 2, s)
  const yellow = (s: string) => paint(opts.color, 33, s)
  const width = opts.titleWidth ?? 100
  const out: string[] = []
  const total = plan.steps.length
  const mutating = plan.steps.filter((s) => s.mutates && !s.skip).length
  out.push(bold(`Plan ${plan.plan}`) + ` → ${plan.target.kubernetes ?? 'no Kubernetes change'}${plan.target.os ? `, OS ${JSON.stringify(plan.target.os.packages)} (reboot ${plan.target.os.reboot})` : ''}`)
  out.push(dim(`${total} steps, ${mutating} change the cluster; ${aboutText(planSeconds(plan))} (typical step times, approvals not counted).`))
  out.push(dim('Legend: * changes  - reads only  = skipped  ↩ undo  <node> each node of the group'))
  for (const w of plan.warnings) out.push(yellow(`warning: ${w}`))
  for (const stage of plan.stages) {
    out.push('')
    out.push(bold(`stage ${stage.name}`) + dim(`  ${aboutText(stageSeconds(stage))}${stage.approval === 'required' ? '  approval required' : ''}${stage.parallelClusters > 1 ? `  up to ${stage.parallelClusters} clusters at once` : ''}`))
    for (const line of sequence(stage.before, `${stage.name}/`, 1)) out.push(line)
    for (const c of stage.clusters) cluster(c, `${stage.name}/${c.name}/`)
    for (const line of sequence(stage.after, `${stage.name}/`, 1)) out.push(line)
    if (stage.onFailureHooks.length > 0) {
      out.push(dim(`  if the run stops in stage ${stage.name} on a failure:`))
      for (const line of sequence(stage.onFailureHooks, `${stage.name}/`, 2)) out.push(line)
    }
  }
  return `${out.join('\n')}\n`

  function cluster(c: ClusterPlan, prefix: string): void {
    const n = countSteps(c)
    out.push(`  ${bold(`cluster ${c.name}`)}  ${c.distribution} ${c.from} → ${hopsText(c, plan.target)}${dim(`  ${aboutText(clusterSeconds(c))}`)}`)
    out.push(dim(`    nodes: ${nodesText(c)}; worker batches: ${batchesText(c)}; on failure: ${c.onFailure} (max ${c.maxFailedNodes} failed node${c.maxFailedNodes === 1 ? '' : 's'}); ${n.total} steps${n.skipped ? `, ${n.skipped} skipped` : ''}`))
    if (c.rollback.length > 0) out.push(dim(`    rollback per node: ${rollbackText(c)}`))
    for (const g of rebuildGroups(c)) {
      out.push(dim(`    rebuild on failure${g.hop !== undefined ? ` (hop ${g.hop})` : ''} of ${g.nodes.join(', ')}: ${g.detail}`))
      g.steps.forEach((t, i) => out.push(dim(`      ${i + 1}. ${t}${i === 0 && g.nodes.length > 1 ? `  (as on ${g.nodes[0]})` : ''}`)))
    }
    for (const r of c.restore ?? []) {
      out.push(dim(`    control-plane restore (hop ${r.hop}), when a moved control-plane node is rolled back: ${r.automatic ? 'automatic' : r.detail}`))
      if (r.automatic) out.push(dim(`      ${restoreSequence(r.steps)}  (${r.steps.length} steps; plan --format markdown lists each)`))
    }
    for (const g of c.gates.skipped) out.push(yellow(`    gate ${g.gate} skipped by the plan: ${g.reason}`))
    // Consecutive runs of steps by section: cluster-level (preflight, postflight), backup, control plane, workers.
    const hops = new Map<string, Step[]>()
    const order: string[] = []
    for (const s of c.steps) {
      // An OS-only plan is one pass whose ids say `os` where a hop would say `hopN`.
      const key = s.hop !== undefined ? `hop${s.hop}` : s.node || s.id.startsWith(`${prefix}os/`) ? 'os' : s.phase
      if (!hops.has(key)) {
        hops.set(key, [])
        order.push(key)
      }
      hops.get(key)!.push(s)
    }
    for (const key of order) {
      const steps = hops.get(key)!
      if (key === 'preflight' || key === 'postflight') {
        out.push(`    ${key}`)
        for (const line of sequence(steps, prefix, 3)) out.push(line)
        continue
      }
      const hop = c.hops.find((h) => `hop${h.index}` === key)
      out.push(`    ${hop ? `hop ${hop.index} · ${hop.from} → ${hop.to.release}` : 'OS packages'}`)
      const hopPrefix = `${prefix}${key}/`
      const backup = steps.filter((s) => s.phase === 'backup')
      if (backup.length) {
        out.push(`      backup on ${backup[0]!.node}`)
        for (const line of sequence(backup, hopPrefix, 4)) out.push(line)
      }
      for (const g of groups(steps.filter((s) => s.phase === 'control-plane'))) {
        out.push(`      control plane, one node at a time: ${g.nodes.join(' → ')}  ${dim(`ids ${hopPrefix}${g.nodes.length > 1 ? '<node>' : g.nodes[0]}/…`)}`)
        for (const line of merged(g, `${hopPrefix}${g.nodes[0]}/`, 4)) out.push(line)
      }
      const workerSteps = steps.filter((s) => s.phase === 'workers')
      if (workerSteps.length) {
        // One pass: filtering the steps once per batch was quadratic (18 s for 10,000 one-node batches).
        const byBatch = new Map<number, Set<string>>()
        for (const s of workerSteps) {
          let nodes = byBatch.get(s.batch!)
          if (!nodes) byBatch.set(s.batch!, (nodes = new Set()))
          nodes.add(s.node!)
        }
        const batches = [...byBatch.values()].map((nodes) => [...nodes])
        out.push(`      workers, batch after batch, the nodes of a batch at once: ${batches.map((b, i) => `[${b.join(', ')}]${i === 0 && c.canary && c.batches.length > 1 ? ' (canary)' : ''}`).join(' → ')}`)
        const wg = groups(workerSteps)
        for (const g of wg) {
          out.push(`        ${wg.length > 1 ? `${g.nodes.join(', ')}: ` : ''}${dim(`ids ${hopPrefix}${g.nodes.length > 1 ? '<node>' : g.nodes[0]}/…`)}`)
          for (const line of merged(g, `${hopPrefix}${g.nodes[0]}/`, 4)) out.push(line)
        }
      }
      const rest = steps.filter((s) => !s.node)
      if (rest.length) {
        out.push('      after the hop')
        for (const line of sequence(rest, hopPrefix, 4)) out.push(line)
      }
    }
  }

  /** Lines for steps in order; consecutive gates fold into one line. `node` is replaced by <node> when given. */
  function sequence(steps: Step[], prefix: string, depth: number, node?: string): string[] {
    const lines: string[] = []
    const pad = '  '.repeat(depth)
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i]!
      if (s.action === 'gate') {
        let j = i
        while (j + 1 < steps.length && steps[j + 1]!.action === 'gate' && !!steps[j + 1]!.skip === !!s.skip) j++
        const run = steps.slice(i, j + 1)
        const id = rel(s.id, prefix).replace(/gate\/[^/]+$/, 'gate/…')
        lines.push(paintStep(s, `${pad}${mark(s)} ${id.padEnd(24)} ${cut(`gates: ${run.map((g) => g.title.replace(/^gate /, '')).join(', ')}`)}${s.skip ? ` (skipped: ${s.skip})` : ''}`))
        i = j
        continue
      }
      const title = node ? genericTitle(s.title, node) : s.title
      const undo = s.undo && 'irreversible' in s.undo ? 'not undone' : undoText(s)
      lines.push(paintStep(s, `${pad}${mark(s)} ${rel(s.id, prefix).padEnd(24)} ${cut(title)}${undo ? dim(`  ↩ ${undo}`) : ''}${s.skip ? ` (skipped: ${s.skip})` : ''}`))
    }
    return lines
  }

  /**
   * The steps of a group of nodes, position by position: one line where every node's step reads the same with
   * <node> for its name, else one line per variant, naming its nodes (kubeadm's `upgrade apply` on the first node).
   */
  function merged(g: Group, prefix: string, depth: number): string[] {
    if (g.nodes.length === 1) return sequence(g.perNode[0]!, prefix, depth)
    const lines: string[] = []
    const first = g.perNode[0]!
    let i = 0
    while (i < first.length) {
      // A run of positions where all nodes agree prints as a sequence (gates folded); a disagreeing position alone.
      let j = i
      while (j < first.length && agree(g, j)) j++
      if (j > i) {
        for (const line of sequence(first.slice(i, j), prefix, depth, g.nodes[0])) lines.push(line)
        i = j
        continue
      }
      const variants = new Map<string, { step: Step; nodes: string[] }>()
      g.perNode.forEach((steps, k) => {
        const key = variantKey(steps[i]!, g.nodes[k]!)
        const v = variants.get(key) ?? { step: steps[i]!, nodes: [] }
        v.nodes.push(g.nodes[k]!)
        variants.set(key, v)
      })
      for (const v of variants.values()) {
        const base = prefix.slice(0, prefix.length - g.nodes[0]!.length - 1)
        const [line] = sequence([v.step], `${base}${v.nodes[0]}/`, depth, v.nodes.length > 1 ? v.nodes[0] : undefined)
        lines.push(line!.replace(/^(\s*[*=-] \S+\s+)/, `$1${v.nodes.join(', ')}: `))
      }
      i++
    }
    return lines
  }

  function cut(text: string): string {
    return text.length > width ? `${text.slice(0, width - 1)}…` : text
  }
  function paintStep(s: Step, text: string): string {
    return s.skip ? dim(text) : text
  }
}

const mark = (s: Step): string => (s.skip ? '=' : s.mutates ? '*' : '-')
const rel = (id: string, prefix: string): string => (id.startsWith(prefix) ? id.slice(prefix.length) : id)
/** A character that continues a node name (`\w`, `.`, `-`): the name must not be part of a longer one. */
const namePart = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 46 || c === 45
/**
 * The node's name as a word (not inside a longer name) becomes <node>. By indexOf, not a RegExp per node: it runs for
 * every step of every node of a group, and a 2,000-node plan spent most of its text rendering in the RegExps.
 */
export const genericTitle = (text: string, node: string): string => {
  let at = text.indexOf(node)
  if (at < 0 || node.length === 0) return text
  let out = ''
  let from = 0
  while (at >= 0) {
    const end = at + node.length
    if ((at === 0 || !namePart(text.charCodeAt(at - 1))) && (end === text.length || !namePart(text.charCodeAt(end)))) {
      out += `${text.slice(from, at)}<node>`
      from = end
      at = text.indexOf(node, end)
    } else at = text.indexOf(node, at + 1)
  }
  return from === 0 ? text : out + text.slice(from)
}

interface Group {
  nodes: string[]
  /** Each node's steps, in the order of `nodes`. */
  perNode: Step[][]
}

const tail = (s: Step): string => s.id.slice(s.id.lastIndexOf(`/${s.node}/`) + s.node!.length + 2)
const variantKey = (s: Step, node: string): string => `${mark(s)}|${genericTitle(s.title, node)}|${undoText(s)}|${s.skip ?? ''}`
const agree = (g: Group, i: number): boolean => {
  const key = variantKey(g.perNode[0]![i]!, g.nodes[0]!)
  return g.perNode.every((steps, k) => variantKey(steps[i]!, g.nodes[k]!) === key)
}

/** Nodes, in order, grouped with the next ones while they have the same steps (by id), so they print once. */
function groups(steps: Step[]): Group[] {
  const byNode = new Map<string, Step[]>()
  for (const s of steps) {
    const list = byNode.get(s.node!) ?? []
    list.push(s)
    byNode.set(s.node!, list)
  }
  const out: (Group & { sig: string })[] = []
  for (const [node, list] of byNode) {
    const sig = list.map(tail).join('\n')
    const last = out[out.length - 1]
    if (last && last.sig === sig) {
      last.nodes.push(node)
      last.perNode.push(list)
    } else out.push({ nodes: [node], perNode: [list], sig })
  }
  return out
}

function rollbackText(c: ClusterPlan): string {
  const byPath = new Map<string, string[]>()
  for (const r of c.rollback) byPath.set(r.path, [...(byPath.get(r.path) ?? []), r.node])
  return [...byPath].map(([path, nodes]) => `${nodes.join(', ')} ${path}`).join(' · ')
}

/** A control-plane restore on one line, as the screen has room for: each action with the nodes it runs on, in order. */
function restoreSequence(steps: readonly Step[]): string {
  const runs: { action: string; nodes: string[] }[] = []
  for (const s of steps) {
    const last = runs.at(-1)
    if (last?.action === s.action) last.nodes.push(s.node ?? '')
    else runs.push({ action: s.action, nodes: [s.node ?? ''] })
  }
  return runs.map((r) => `${r.action} ${r.nodes.join(', ')}`).join(' → ')
}
