import type { ExecutionPlan } from '../planner/types.js'

/**
 * `plan --format json`: the ExecutionPlan with one canonical, ordered `steps` list. Stages and clusters carry their
 * summaries and the ids of their first and last steps instead of repeating the steps (which would double the output
 * of a 2,000-node plan), one step per line. The shape is versioned by `schemaVersion` and described in docs/execution-plan.md.
 */
export function renderPlanJson(plan: ExecutionPlan, extras: { gates?: Record<string, unknown> } = {}): string {
  return renderPlanJsonBytes(plan, extras).toString('utf8')
}

/** renderPlanJson as UTF-8, which is what `plan` writes (and scans for characters to escape, escapeJsonBytes). */
export function renderPlanJsonBytes(plan: ExecutionPlan, extras: { gates?: Record<string, unknown> } = {}): Buffer {
  const span = (steps: { id: string }[]) => (steps.length ? { firstStep: steps[0]!.id, lastStep: steps[steps.length - 1]!.id, stepCount: steps.length } : { stepCount: 0 })
  // A stage's span runs from its first step to its last, through its clusters' steps: counted, not copied.
  const stageSpan = ({ before, clusters, after }: ExecutionPlan['stages'][number]) => {
    const lists = [before, ...clusters.map((c) => c.steps), after].filter((l) => l.length > 0)
    const stepCount = lists.reduce((n, l) => n + l.length, 0)
    return stepCount ? { firstStep: lists[0]![0]!.id, lastStep: lists[lists.length - 1]!.at(-1)!.id, stepCount } : { stepCount: 0 }
  }
  const doc = {
    apiVersion: plan.apiVersion,
    kind: plan.kind,
    schemaVersion: plan.schemaVersion,
    plan: plan.plan,
    target: plan.target,
    warnings: plan.warnings,
    // plan --live: the pre-gates' GateReport (docs/execution-plan.md).
    ...(extras.gates ? { gates: extras.gates } : {}),
    stages: plan.stages.map((whole) => {
      const { clusters, before: _before, after: _after, ...stage } = whole
      return { ...stage, clusters: clusters.map(({ steps, ...cluster }) => ({ ...cluster, ...span(steps) })), ...stageSpan(whole) }
    }),
  }
  // One step per line: a 2,000-node plan stays a few MB, and diffs and grep work line by line. Still plain JSON.
  // The planner makes steps with their keys in reading order (planner/build.ts `step`), so they print as they are.
  const head = `${JSON.stringify(doc, null, 2).replace(/\n}$/, '')},\n  "steps": [\n${plan.steps.length ? '    ' : ''}`
  return withStepLines(head, plan.steps, '\n  ]\n}\n')
}

const BOUNDARY = Buffer.from('},{"id":', 'utf8')
/** What goes in after the `},` of a boundary: a line break and the next step's indent. */
const BREAK = Buffer.from('\n    ', 'utf8')

/**
 * `head`, the steps as `{step}` lines joined by `,\n    ` (the first line's indent is the head's), and `tail`, as
 * UTF-8 — the steps as one JSON.stringify per step would make them. One JSON.stringify over the whole list is about
 * twice as quick for tens of thousands of steps (and leaves no string per step for the collector), and the steps are
 * found in it by the boundary between two of them, `},{"id":` — every step's text starts with `{"id":`
 * (planner/build.ts `step` puts the id first, and no step has a toJSON of its own; both checked below). The sequence
 * cannot occur inside a string (a quote in one is escaped), only inside some step's params: then there are more of
 * them than steps less one, and each step is stringified alone.
 *
 * The line breaks go in as bytes, in the one buffer the document is written to: a string with 28,000 replacements is
 * a rope that encoding must copy flat first, and every extra copy of 11 MB is memory the kernel has to hand out page
 * by page; both cost more than the stringify did. In UTF-8 an ASCII byte is never part of another character, so the
 * boundary's bytes are found exactly where its characters are.
 */
function withStepLines(head: string, steps: ExecutionPlan['steps'], tail: string): Buffer {
  let idFirst = steps.length > 0
  for (const s of steps) {
    for (const key in s) {
      idFirst = key === 'id' && typeof s.id === 'string'
      break
    }
    if (typeof (s as { toJSON?: unknown }).toJSON === 'function') idFirst = false
    if (!idFirst) break
  }
  if (!idFirst) return Buffer.from(`${head}${steps.map((s) => JSON.stringify(s)).join(',\n    ')}${tail}`, 'utf8')
  const all = JSON.stringify(steps)
  const headBytes = Buffer.byteLength(head, 'utf8')
  const allBytes = Buffer.byteLength(all, 'utf8')
  const tailBytes = Buffer.byteLength(tail, 'utf8')
  // Room for the breaks of every boundary there may be: what is not used is cut off at the end.
  const out = Buffer.allocUnsafe(headBytes + allBytes - 2 + (steps.length - 1) * BREAK.length + tailBytes)
  // `[a},{"id":b]` written so that its `[` is overwritten by the head's last byte, then the head.
  out.write(all, headBytes - 1, 'utf8')
  out.write(head, 0, 'utf8')
  const end = headBytes - 1 + allBytes - 1
  const at: number[] = []
  for (let i = out.indexOf(BOUNDARY, headBytes); i !== -1 && i < end && at.length < steps.length; i = out.indexOf(BOUNDARY, i + BOUNDARY.length)) at.push(i)
  if (at.length !== steps.length - 1) return Buffer.from(`${head}${steps.map((s) => JSON.stringify(s)).join(',\n    ')}${tail}`, 'utf8')
  // From the last step back, each step's text moves right by the breaks before it: moved text never overwrites text
  // not moved yet.
  let segmentEnd = end
  for (let k = at.length - 1; k >= 0; k--) {
    const start = at[k]! + 2
    out.copyWithin(start + (k + 1) * BREAK.length, start, segmentEnd)
    BREAK.copy(out, start + k * BREAK.length)
    segmentEnd = start
  }
  const written = end + at.length * BREAK.length
  return out.subarray(0, written + out.write(tail, written, 'utf8'))
}
