import { ExitCode, KupgradeError } from '../errors.js'
import type { ClusterPlan, ExecutionPlan } from '../planner/types.js'
import { NODE_WRITE_ACTIONS } from './executor.js'
import type { Selection } from './journal.js'

/** The nodes of a cluster with a change left to make, by the live facts the plan was built from (its steps' skips). */
export function nodesLeft(c: ClusterPlan): string[] {
  const left = new Set<string>()
  for (const s of c.steps) if (s.node !== undefined && s.skip === undefined && NODE_WRITE_ACTIONS.has(s.action)) left.add(s.node)
  return [...left]
}

/**
 * Stages go in order: a stage starts only when the ones before it are done (brief §5). A run that starts at a later
 * stage (`--stage production`, `--cluster` of a production cluster) while an earlier stage of the plan still has
 * nodes to upgrade would upgrade production before staging was ever tried; it is refused before anything runs, unless
 * --ignore-stage-order says so on purpose. Done is the clusters' state, read live, not a journal: the earlier stage
 * may have run in another job, on another machine (examples/ci runs a job per stage).
 */
export function checkStageOrder(plan: ExecutionPlan, sel: Selection, planShown: string): void {
  const selected = (c: ClusterPlan) => !sel.clusters || sel.clusters.includes(c.name)
  const first = plan.stages.findIndex((st) => (!sel.stages || sel.stages.includes(st.name)) && st.clusters.some(selected))
  if (first <= 0) return
  const behind = plan.stages.slice(0, first).flatMap((st) => st.clusters.map((c) => ({ stage: st.name, cluster: c.name, nodes: nodesLeft(c) }))).filter((c) => c.nodes.length > 0)
  if (behind.length === 0) return
  const stages = [...new Set(behind.map((b) => b.stage))]
  const list = (xs: string[]) => (xs.length > 4 ? `${xs.slice(0, 4).join(', ')} and ${xs.length - 4} more` : xs.join(', '))
  throw new KupgradeError(
    `stage ${plan.stages[first]!.name} comes after stage ${stages.join(', ')}, which ${stages.length > 1 ? 'are' : 'is'} not done: ${behind.map((b) => `cluster ${b.cluster} has ${b.nodes.length} node${b.nodes.length === 1 ? '' : 's'} not yet at the target (${list(b.nodes)})`).join('; ')}`,
    { exitCode: ExitCode.blocked, hint: `stages go in order: run kupgrade apply ${planShown} --stage ${stages[0]} first (or the whole plan), or pass --ignore-stage-order to upgrade ${plan.stages[first]!.name} before it on purpose; nothing was changed` },
  )
}
