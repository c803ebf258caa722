import type { Step } from '../planner/types.js'

/**
 * How the executor walks a cluster's steps. The planner alone decides order; the executor only reads two facts it
 * states: consecutive steps of one node in one hop belong together (a node run, with node-started/done events), and
 * the worker nodes of one batch of one hop are upgraded at once (`Step.batch`). Everything else runs one at a time.
 */
export type Segment =
  | { kind: 'step'; step: Step }
  /** Consecutive gate steps of one point: read-only, so they are checked side by side. */
  | { kind: 'gates'; steps: Step[] }
  | { kind: 'node'; node: string; hop?: number; steps: Step[] }
  | { kind: 'batch'; hop?: number; batch: number; nodes: { node: string; hop?: number; steps: Step[] }[] }

export function segments(steps: readonly Step[]): Segment[] {
  const out: Segment[] = []
  for (const s of steps) {
    const last = out.at(-1)
    const isNodeStep = s.node !== undefined && (s.phase === 'control-plane' || s.phase === 'workers')
    if (!isNodeStep) {
      if (s.action === 'gate' && last?.kind === 'gates' && last.steps[0]!.phase === s.phase && last.steps[0]!.hop === s.hop) last.steps.push(s)
      else if (s.action === 'gate') out.push({ kind: 'gates', steps: [s] })
      else out.push({ kind: 'step', step: s })
      continue
    }
    if (s.phase === 'workers' && s.batch !== undefined) {
      if (last?.kind === 'batch' && last.hop === s.hop && last.batch === s.batch) {
        const run = last.nodes.find((n) => n.node === s.node)
        if (run) run.steps.push(s)
        else last.nodes.push({ node: s.node!, ...(s.hop !== undefined ? { hop: s.hop } : {}), steps: [s] })
      } else {
        out.push({ kind: 'batch', ...(s.hop !== undefined ? { hop: s.hop } : {}), batch: s.batch, nodes: [{ node: s.node!, ...(s.hop !== undefined ? { hop: s.hop } : {}), steps: [s] }] })
      }
      continue
    }
    if (last?.kind === 'node' && last.node === s.node && last.hop === s.hop) last.steps.push(s)
    else out.push({ kind: 'node', node: s.node!, ...(s.hop !== undefined ? { hop: s.hop } : {}), steps: [s] })
  }
  return out
}

/** A node run's steps with each stretch of consecutive gate steps as one group (checked side by side). */
export function gateGroups(steps: readonly Step[]): Step[][] {
  const out: Step[][] = []
  for (const s of steps) {
    const last = out.at(-1)
    if (s.action === 'gate' && last?.[0]?.action === 'gate') last.push(s)
    else out.push([s])
  }
  return out
}

/** The node runs of a segment: one for a node, each node's for a batch, none for a step or a point's gates. */
export function nodeRuns(seg: Segment): { node: string; hop?: number; steps: Step[] }[] {
  return seg.kind === 'node' ? [seg] : seg.kind === 'batch' ? seg.nodes : []
}

/** Every step of a segment, in plan order. */
export function segmentSteps(seg: Segment): Step[] {
  switch (seg.kind) {
    case 'step': return [seg.step]
    case 'gates': return seg.steps
    case 'node': return seg.steps
    case 'batch': return seg.nodes.flatMap((n) => n.steps)
  }
}
