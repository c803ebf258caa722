import type { ExecutionPlan } from '../planner/types.js'

/**
 * `plan --format json`: the ExecutionPlan with one canonical, ordered `steps` list. Stages and clusters carry their
 * summaries and the ids of their first and last steps instead of repeating the steps (which would double the output
 * of a 2,000-node plan), one step per line. The shape is versioned by `schemaVersion` and described in docs/execution-plan.md.
 */
export function renderPlanJson(plan: ExecutionPlan, extras: { gates?: Record<string, unknown> } = {}): string {
  const span = (steps: { id: string }[]) => (steps.length ? { firstStep: steps[0]!.id, lastStep: steps[steps.length - 1]!.id, stepCount: steps.length } : { stepCount: 0 })
  const doc = {
    apiVersion: plan.apiVersion,
    kind: plan.kind,
    schemaVersion: plan.schemaVersion,
    plan: plan.plan,
    target: plan.target,
    warnings: plan.warnings,
    // plan --live: the pre-gates' GateReport (docs/execution-plan.md).
    ...(extras.gates ? { gates: extras.gates } : {}),
    stages: plan.stages.map(({ clusters, before, after, ...stage }) => ({
      ...stage,
      clusters: clusters.map(({ steps, ...cluster }) => ({ ...cluster, ...span(steps) })),
      ...span([...before, ...clusters.flatMap((c) => c.steps), ...after]),
    })),
  }
  // One step per line: a 2,000-node plan stays a few MB, and diffs and grep work line by line. Still plain JSON.
  // The planner makes steps with their keys in reading order (planner/build.ts `step`), so they print as they are.
  const head = JSON.stringify(doc, null, 2).replace(/\n}$/, '')
  const steps = plan.steps.map((s) => `    ${JSON.stringify(s)}`).join(',\n')
  return `${head},\n  "steps": [\n${steps}\n  ]\n}\n`
}
