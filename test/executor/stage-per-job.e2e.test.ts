import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { events, runDirs, runsDir, startStagedLab, type ExecLab } from './helpers.js'

/**
 * One stage per process, as examples/ci/github-actions-apply.yml runs it: a job per stage, `apply PLAN --stage
 * staging --yes`, then `apply PLAN --stage production --approve production --yes`. The staging job's soak is what the
 * production job's promotion rests on. It was skipped: a soak ran only when a later stage *selected in the same
 * process* had work, so `--stage staging` never soaked, and the example's "starts only when staging succeeded (and
 * soaked)" was not true.
 */
describe('apply --stage, one stage per CI job', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startStagedLab('127.0.165', { soak: '3s', productionWorkers: 1 })
  }, 120_000)
  afterAll(async () => l?.stop())

  it('a run that starts at production while staging still has nodes to upgrade is refused before anything runs (exit 3)', async () => {
    const mark = l.lab.recorder.mark()
    for (const args of [['--stage', 'production', '--approve', 'production'], ['--cluster', 'prd', '--approve', 'production'], ['--stage', 'production', '--dry-run']]) {
      const r = await l.cli(['apply', l.plan, ...args, '--yes'])
      expect(r.code, r.err + r.out.slice(-3000)).toBe(3)
      expect(r.err).toContain('error: stage production comes after stage staging, which is not done: cluster stg has 2 nodes not yet at the target (stg-cp-1, stg-w-1)')
      expect(r.err).toContain('hint: stages go in order: run kupgrade apply plan.yaml --stage staging first (or the whole plan), or pass --ignore-stage-order to upgrade production before it on purpose; nothing was changed')
      expect(r.out).toBe('')
    }
    expect(l.lab.recorder.mutations({ afterSeq: mark }).filter((e) => e.client !== 'lab')).toEqual([])
    // On purpose: the dry-run shows what production's run would change.
    const forced = await l.cli(['apply', l.plan, '--stage', 'production', '--ignore-stage-order', '--dry-run', '--output', 'json'])
    expect(forced.code, forced.err + forced.out.slice(-3000)).toBe(0)
    expect(events(forced.out).find((e) => e.type === 'dry-run-recorded').writes.filter((w: any) => w.cluster === 'prd').length).toBeGreaterThan(0)
  }, 120_000)

  it("the staging job soaks (the production job's promotion rests on it) and leaves production to the next job", async () => {
    // The commands as the example workflow has them.
    const workflow = readFileSync('examples/ci/github-actions-apply.yml', 'utf8')
    expect(workflow).toContain('kupgrade apply "${{ inputs.plan }}" --stage staging --yes')
    expect(workflow).toContain('kupgrade apply "${{ inputs.plan }}" --stage production --approve production --yes')

    const mark = l.lab.recorder.mark()
    const staging = await l.cli(['apply', l.plan, '--stage', 'staging', '--yes', '--output', 'json'])
    expect(staging.code, staging.err + staging.out.slice(-3000)).toBe(0)
    const ev = events(staging.out)
    // The plan warns of each cluster's single control-plane node: staging's is control-plane-ha's to say; production's
    // is no concern of the staging job (it said it, about a cluster it never touched).
    expect(ev[0]).toMatchObject({ type: 'run-started', warnings: [] })
    const soak = ev.find((e) => e.step?.id === 'staging/soak' && e.type !== 'step-started')
    expect(soak, JSON.stringify(ev.filter((e) => e.step?.id === 'staging/soak'))).toMatchObject({ type: 'step-done', evidence: [expect.stringMatching(/^soaked 3s: post-gates re-checked \d+ time\(s\), all passing$/)] })
    expect(ev.filter((e) => e.type === 'gate-result' && e.during === 'soak').length).toBeGreaterThan(0)
    // The soak came after staging's cluster was done, and production was not touched.
    expect(ev.findIndex((e) => e.type === 'cluster-done' && e.cluster === 'stg')).toBeLessThan(ev.indexOf(soak))
    expect(l.lab.recorder.mutations({ cluster: 'prd', afterSeq: mark }).filter((e) => e.client !== 'lab')).toEqual([])

    // The production job, as a dry-run here (its upgrade is any other apply's): what it would change is production's.
    const production = await l.cli(['apply', l.plan, '--stage', 'production', '--approve', 'production', '--yes', '--dry-run', '--output', 'json'])
    expect(production.code, production.err + production.out.slice(-3000)).toBe(0)
    const prd = events(production.out)
    expect(prd.find((e) => e.type === 'step-skipped' && e.step.id === 'production/approval')?.reason).toBe('dry-run: apply would wait here for approval of stage production')
    expect(prd.find((e) => e.type === 'dry-run-recorded').writes.filter((w: any) => w.cluster === 'prd').length).toBeGreaterThan(0)
  }, 300_000)

  it('the whole plan applied after the staging job: staging\'s soak stands (its post-gates re-checked once), production goes on', async () => {
    const soakedBy = runDirs(l).find((d) => readFileSync(join(runsDir(l), d, 'journal.jsonl'), 'utf8').includes('"step":"staging/soak","state":"done"'))
    expect(soakedBy, runDirs(l).join(', ')).toBeDefined()
    // The dry-run says so too (what a reviewer reads is what apply will do).
    const dry = await l.cli(['apply', l.plan, '--approve', 'production', '--dry-run', '--output', 'json'])
    expect(dry.code, dry.err + dry.out.slice(-3000)).toBe(0)
    expect(events(dry.out).find((e) => e.step?.id === 'staging/soak' && e.type === 'step-skipped')?.reason).toMatch(new RegExp(`^dry-run: apply would re-check the post-gates of stage staging once, not soak again: run ${soakedBy} of this plan soaked it \\(done \\d{4}-`))
    const r = await l.cli(['apply', l.plan, '--approve', 'production', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(0)
    const ev = events(r.out)
    const soak = ev.find((e) => e.step?.id === 'staging/soak' && e.type !== 'step-started')
    expect(soak).toMatchObject({ type: 'step-skipped', reason: expect.stringMatching(new RegExp(`^soaked by run ${soakedBy} of this plan \\(done \\d{4}-.*\\), and this run changed nothing in stage staging: its post-gates re-checked once now, all passing$`)) })
    const rechecks = ev.filter((e) => e.type === 'gate-result' && e.during === 'soak')
    expect(rechecks.length).toBeGreaterThan(0)
    expect(rechecks.every((e) => e.step.cluster === 'stg' && e.status === 'pass')).toBe(true)
    // Each post-gate once: one round, not a soak's worth.
    expect(new Set(rechecks.map((e) => e.step.id)).size).toBe(rechecks.length)
    expect(ev.filter((e) => e.type === 'cluster-done').map((e) => e.cluster)).toEqual(['prd'])
  }, 300_000)
})
