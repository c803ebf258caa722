import type { ExecutionPlan } from '../planner/types.js'

/**
 * `plan --format json`: the ExecutionPlan with one canonical, ordered `steps` list. Stages and clusters carry their
 * summaries and the ids of their first and last steps instead of repeating the steps (which would double the output
 * of a 2,000-node plan), one step per line. The shape is versioned by `schemaVersion` and described in docs/execution-plan.md.
 */
export function renderPlanJson(plan: ExecutionPlan, extras: { gates?: Record<string, unknown> } = {}): string {
  return Buffer.concat([...planJsonChunks(plan, extras)]).toString('utf8')
}

/**
 * renderPlanJson as UTF-8 in pieces of 128 steps, which is how `plan` writes it (each piece scanned for
 * characters to escape, escapeJsonBytes; pieces end between steps, so none splits a character). Written piece by
 * piece, the 11 MB of a 2,000-node plan never exist at once: neither as one string nor as one buffer, each of which
 * the kernel hands out page by page (~9 us a page on the benchmark's VM) for a single use.
 */
export function* planJsonChunks(plan: ExecutionPlan, extras: { gates?: Record<string, unknown> } = {}): Generator<Buffer> {
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
  yield Buffer.from(`${JSON.stringify(doc, null, 2).replace(/\n}$/, '')},\n  "steps": [\n${plan.steps.length ? '    ' : ''}`, 'utf8')
  for (let i = 0; i < plan.steps.length; i += STEPS_PER_CHUNK) {
    const more = i + STEPS_PER_CHUNK < plan.steps.length
    yield stepLines(plan.steps.slice(i, i + STEPS_PER_CHUNK), more ? LINE_BREAK : '')
  }
  yield Buffer.from('\n  ]\n}\n', 'utf8')
}

/**
 * About 50 KB of JSON: under the 128 KB from which V8 (a large object) and malloc (an mmap) give a string or buffer
 * fresh pages of its own, so each piece reuses memory an earlier one left. Pieces of 512 steps (~200 KB) cost a
 * 2,000-node plan ~4,000 more page faults.
 */
const STEPS_PER_CHUNK = 128

const BOUNDARY = '},{"id":'
/** Between two steps' lines. */
const LINE_BREAK = ',\n    '

/**
 * The steps as UTF-8 `{step}` lines joined by `,\n    ` (the first line's indent is the caller's), then `after`, as one
 * JSON.stringify per step would make them. One JSON.stringify over the piece's steps is about twice as quick as one
 * per step (and leaves no string per step for the collector), and the steps are found in it by the boundary
 * between two of them, `},{"id":` — every step's text starts with `{"id":` (planner/build.ts `step` puts the id first,
 * and no step has a toJSON of its own; both checked below). The sequence cannot occur inside a string (a quote in one
 * is escaped), only inside some step's params: then there are more of them than steps less one, and each step is
 * stringified alone.
 */
function stepLines(steps: ExecutionPlan['steps'], after: string): Buffer {
  let idFirst = steps.length > 0
  for (const s of steps) {
    for (const key in s) {
      idFirst = key === 'id' && typeof s.id === 'string'
      break
    }
    if (typeof (s as { toJSON?: unknown }).toJSON === 'function') idFirst = false
    if (!idFirst) break
  }
  if (idFirst) {
    const all = JSON.stringify(steps)
    let boundaries = 0
    for (let i = all.indexOf(BOUNDARY, 1); i !== -1 && boundaries < steps.length; i = all.indexOf(BOUNDARY, i + BOUNDARY.length)) boundaries++
    // `[a},{"id":b]` → `a},\n    {"id":b`: the brackets dropped.
    if (boundaries === steps.length - 1) return Buffer.from(`${all.slice(1, -1).replaceAll(BOUNDARY, `}${LINE_BREAK}{"id":`)}${after}`, 'utf8')
  }
  return Buffer.from(`${steps.map((s) => JSON.stringify(s)).join(LINE_BREAK)}${after}`, 'utf8')
}
