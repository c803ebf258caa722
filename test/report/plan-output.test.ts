import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { basename, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadPlan } from '../../src/plan/load.js'
import { buildExecutionPlan } from '../../src/planner/build.js'
import { renderPlanJson } from '../../src/report/plan-json.js'
import { renderPlanMarkdown } from '../../src/report/plan-markdown.js'
import { renderPlanText } from '../../src/report/plan-text.js'

/**
 * `kupgrade plan` output for every example in each format, as files under test/__snapshots__/plan-output/ that a
 * reviewer can read: a change to the planner or a renderer shows up as a readable diff of the steps. Update with
 * `npx vitest run test/report -u` and review the diff like code.
 */
const root = join(import.meta.dirname, '..', '..')
const examples = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.yaml')).sort()

/** The same path as `kupgrade plan FILE --format F` (offline), without the process. */
function render(file: string, format: 'text' | 'markdown' | 'json'): string {
  const loaded = loadPlan(file)
  const plan = buildExecutionPlan(loaded.plan, { warnings: loaded.warnings.map((w) => w.message) })
  return format === 'json' ? renderPlanJson(plan) : format === 'markdown' ? renderPlanMarkdown(plan) : renderPlanText(plan, { color: false })
}

const EXT = { text: 'txt', markdown: 'md', json: 'json' } as const

describe.each(examples)('plan output of examples/%s', (example) => {
  const file = join(root, 'examples', example)
  const name = basename(example, '.yaml')

  it.each(['text', 'markdown', 'json'] as const)('%s matches its snapshot and is byte-identical across runs', async (format) => {
    const first = render(file, format)
    const second = render(file, format)
    expect(second).toBe(first)
    await expect(first).toMatchFileSnapshot(join(root, 'test', '__snapshots__', 'plan-output', `${name}.${EXT[format]}`))
  })

  it('json is valid JSON whose steps are the execution order, with unique ids', () => {
    const doc = JSON.parse(render(file, 'json')) as { steps: { id: string }[]; stages: { stepCount: number }[] }
    const ids = doc.steps.map((s) => s.id)
    expect(new Set(ids).size).toBe(ids.length)
    expect(doc.stages.reduce((n, s) => n + s.stepCount, 0)).toBe(ids.length)
    const plan = buildExecutionPlan(loadPlan(file).plan)
    expect(ids).toEqual(plan.steps.map((s) => s.id))
  })

  it('text has no ANSI escapes without colour, and colour only adds escapes', () => {
    const loaded = loadPlan(file)
    const plan = buildExecutionPlan(loaded.plan, { warnings: loaded.warnings.map((w) => w.message) })
    const plain = renderPlanText(plan, { color: false })
    expect(plain).not.toMatch(/\u001b\[/)
    const coloured = renderPlanText(plan, { color: true })
    expect(coloured).toMatch(/\u001b\[1m/)
    expect(coloured.replace(/\u001b\[\d+m/g, '')).toBe(plain)
  })
})

// The valid fixtures' edge cases (OS only, already at target, revision-only hops, three hops…) as text, the format
// that shows the most per line.
const validPlans = readdirSync(join(root, 'test', 'fixtures', 'plans', 'valid')).filter((f) => f.endsWith('.yaml')).sort()
describe.each(validPlans)('plan text of test/fixtures/plans/valid/%s', (f) => {
  it('matches its snapshot', async () => {
    const text = render(join(root, 'test', 'fixtures', 'plans', 'valid', f), 'text')
    await expect(text).toMatchFileSnapshot(join(root, 'test', '__snapshots__', 'plan-output', 'valid', `${basename(f, '.yaml')}.txt`))
  })
})

describe('the CLI prints what the renderers produce', () => {
  it.each(['text', 'markdown', 'json'] as const)('kupgrade plan examples/kubeadm-ha.yaml --format %s', (format) => {
    const r = spawnSync(process.execPath, [join(root, 'bin', 'kupgrade.js'), 'plan', 'examples/kubeadm-ha.yaml', '--format', format], {
      cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' },
    })
    expect(r.status).toBe(0)
    expect(r.stdout).toBe(render(join(root, 'examples', 'kubeadm-ha.yaml'), format))
  })
})
