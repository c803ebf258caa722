import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadPlan } from '../../src/plan/load.js'
import { buildExecutionPlan } from '../../src/planner/build.js'
import type { ExecutionPlan, Step } from '../../src/planner/types.js'
import { planJsonChunks, renderPlanJson } from '../../src/report/plan-json.js'

const root = join(import.meta.dirname, '..', '..')
const built = (): ExecutionPlan => buildExecutionPlan(loadPlan(join(root, 'examples', 'k3s-homelab.yaml')).plan)

/** The steps section as one JSON.stringify per step writes it: the format docs/execution-plan.md describes. */
const stepByStep = (plan: ExecutionPlan): string => plan.steps.map((s) => `    ${JSON.stringify(s)}`).join(',\n')
const stepsSection = (json: string): string => json.slice(json.indexOf('  "steps": [\n') + 13, json.lastIndexOf('\n  ]\n}\n'))

describe('renderPlanJson steps: one step per line, whichever way they are stringified', () => {
  it('a planned plan: one line per step, each its own JSON', () => {
    const plan = built()
    const json = renderPlanJson(plan)
    expect(stepsSection(json)).toBe(stepByStep(plan))
    expect(stepsSection(json).split('\n')).toHaveLength(plan.steps.length)
  })

  it('params holding the sequence between two steps, `},{"id":`, do not split a step', () => {
    const plan = built()
    const s = plan.steps[3]!
    plan.steps[3] = { ...s, params: { ...s.params, checks: [{ a: 1 }, { id: 'not a step', b: '},{"id":' }] } } as Step
    const json = renderPlanJson(plan)
    expect(stepsSection(json)).toBe(stepByStep(plan))
    expect(JSON.parse(json).steps).toEqual(JSON.parse(JSON.stringify(plan.steps)))
  })

  it('a step whose first key is not its id, or that has a toJSON, keeps its own line', () => {
    for (const odd of [(s: Step) => Object.assign({ title: s.title }, s), (s: Step) => ({ ...s, toJSON: () => ({ other: s.id }) })]) {
      const plan = built()
      plan.steps[5] = odd(plan.steps[5]!) as Step
      plan.steps[6] = { ...plan.steps[6]!, params: { list: [{ x: 1 }, { id: 'y' }] } } as unknown as Step
      const json = renderPlanJson(plan)
      expect(stepsSection(json)).toBe(stepByStep(plan))
    }
  })

  it('no steps: an empty list', () => {
    const plan = { ...built(), steps: [] }
    expect(JSON.parse(renderPlanJson(plan)).steps).toEqual([])
    expect(renderPlanJson(plan)).toMatch(/"steps": \[\n\n {2}\]\n\}\n$/)
  })

  it('written in pieces that end between two steps, which together are the whole document', () => {
    const one = built()
    // Over 300 steps: pieces of 128, one holding a step that must be stringified alone.
    const plan = { ...one, steps: [...one.steps, ...one.steps, ...one.steps].map((s, i) => ({ ...s, id: `${s.id}#${i}` })) }
    plan.steps[200] = { ...plan.steps[200]!, params: { list: [{ x: 1 }, { id: 'y' }] } } as unknown as Step
    const pieces = [...planJsonChunks(plan)]
    expect(pieces.length).toBe(2 + Math.ceil(plan.steps.length / 128))
    expect(Buffer.concat(pieces).toString('utf8')).toBe(renderPlanJson(plan))
    for (const p of pieces.slice(1, -2)) expect(p.toString('utf8')).toMatch(/^\{"id":.*\},\n {4}$/s)
    expect(stepsSection(renderPlanJson(plan))).toBe(stepByStep(plan))
  })

  it('the bytes `plan` writes, UTF-8 encoded piece by piece: with and without steps, beyond ASCII', () => {
    const plan = built()
    plan.warnings.push('a warning naming nœud-é and 🚀')
    plan.steps[2] = { ...plan.steps[2]!, title: 'títle ✓' }
    for (const p of [plan, { ...plan, steps: [] }, { ...plan, steps: plan.steps.slice(0, 1) }]) {
      const text = Buffer.concat([...planJsonChunks(p, { gates: { status: 'pass' } })]).toString('utf8')
      const doc = JSON.parse(text)
      expect(doc.steps).toEqual(JSON.parse(JSON.stringify(p.steps)))
      expect(doc.warnings).toEqual(p.warnings)
      expect(doc.gates).toEqual({ status: 'pass' })
      if (p.steps.length) expect(stepsSection(text)).toBe(stepByStep(p))
    }
  })
})
