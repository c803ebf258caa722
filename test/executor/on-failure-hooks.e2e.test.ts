import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { events, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * `spec.hooks.onFailure`: accepted by validate and documented since the plan format landed, and never run — a
 * failure notifier configured there stayed silent on every failure. Found by hand on the demo fleet. The hooks run
 * once the run has stopped on a failure (or a gate blocked it), told how it ended and what failed first; not when it
 * waits for an approval.
 */
describe('onFailure hooks', () => {
  let l: ExecLab
  const told = () => join(l.dir, 'on-failure.jsonl')
  const heard = (): any[] => (existsSync(told()) ? readFileSync(told(), 'utf8').trim().split('\n').map((x) => JSON.parse(x)) : [])

  beforeAll(async () => {
    l = await startExecLab(topology('127.0.163', [{ name: 'fa', distribution: 'k3s', controlPlanes: 1, workers: 1 }]))
    const script = (name: string, body: string) => {
      writeFileSync(join(l.dir, name), `#!/bin/bash\n${body}\n`)
      chmodSync(join(l.dir, name), 0o755)
    }
    // Refuses the first node: the run fails before it changed anything.
    script('refuse.sh', 'echo "maintenance window closed" >&2; exit 3')
    // Records what it is told (stdin and the variables), one line per run.
    script('record.sh', `node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const c=JSON.parse(s);c.env=Object.fromEntries(Object.entries(process.env).filter(([k])=>k.startsWith("KUPGRADE_")));console.log(JSON.stringify(c))})' >> ${JSON.stringify(join(l.dir, 'on-failure.jsonl'))}`)
    script('broken.sh', 'echo "webhook down" >&2; exit 7')
    // A change-window check that waits longer than the plan allows a hook.
    // (Its child writes when it is done: a child the limit did not stop would have.)
    script('slow.sh', `echo "waiting for the change window"; (sleep 30; echo late > ${JSON.stringify(join(l.dir, 'slow-child.log'))})`)
    script('record-node.sh', `cat >> ${JSON.stringify(join(l.dir, 'node-hooks.jsonl'))}; echo >> ${JSON.stringify(join(l.dir, 'node-hooks.jsonl'))}; env | grep ^KUPGRADE_ | sort > ${JSON.stringify(join(l.dir, 'node-hooks.env'))}`)
  }, 120_000)
  afterAll(async () => l?.stop())
  beforeEach(() => rmSync(told(), { force: true }))

  it('plan shows them; a failed run runs each once, told where it failed; one that fails itself changes nothing about the outcome', async () => {
    await l.editPlan((d) => {
      d.spec.hooks = { beforeNode: ['record-node.sh', 'refuse.sh'], onFailure: ['record.sh', 'broken.sh'] }
    })
    const plan = await l.cli(['plan', l.plan])
    expect(plan.code, plan.err).toBe(0)
    expect(plan.out).toMatch(/if the run stops in stage fa on a failure:\n {4}- hook\/on-failure\/1 +hook onFailure: record\.sh\n {4}- hook\/on-failure\/2 +hook onFailure: broken\.sh\n/)
    const json = JSON.parse((await l.cli(['plan', l.plan, '--format', 'json'])).out)
    expect(json.stages[0].onFailureHooks.map((s: any) => [s.id, s.params])).toEqual([
      ['fa/hook/on-failure/1', { hook: 'record.sh', point: 'onFailure' }], ['fa/hook/on-failure/2', { hook: 'broken.sh', point: 'onFailure' }],
    ])
    expect(json.steps.some((s: any) => s.params?.point === 'onFailure')).toBe(false)

    const dry = await l.cli(['apply', l.plan, '--dry-run'])
    expect(dry.code, dry.err + dry.out).toBe(0)
    expect(heard()).toEqual([])

    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(1)
    const [c, ...more] = heard()
    expect(more).toEqual([])
    const ev = events(r.out)
    const end = ev.find((e) => e.type === 'run-finished')
    const failedStep = 'fa/fa/hop1/fa-cp-1/hook/before-node/2'
    expect(c).toMatchObject({
      point: 'onFailure', stage: 'fa', cluster: 'fa', node: 'fa-cp-1', step: 'fa/hook/on-failure/1', dryRun: false, runId: end.runId,
      failure: { outcome: 'failed', exitCode: 1, message: end.message, resume: end.resume, step: failedStep, error: 'hook refuse.sh exited with 3', cluster: 'fa', node: 'fa-cp-1' },
    })
    expect(c.env).toMatchObject({ KUPGRADE_POINT: 'onFailure', KUPGRADE_OUTCOME: 'failed', KUPGRADE_FAILED_STEP: failedStep, KUPGRADE_ERROR: 'hook refuse.sh exited with 3', KUPGRADE_NODE: 'fa-cp-1' })
    // Both ran, in order, after the run's end was journaled and before it was reported; the broken one is a failed
    // step of its own, and the run still ends as the failure it was.
    const hookEvents = ev.filter((e) => e.step?.id?.startsWith('fa/hook/on-failure/')).map((e) => `${e.type} ${e.step.id}`)
    expect(hookEvents).toEqual(['step-started fa/hook/on-failure/1', 'step-done fa/hook/on-failure/1', 'step-started fa/hook/on-failure/2', 'step-failed fa/hook/on-failure/2'])
    expect(ev.findIndex((e) => e.step?.id === 'fa/hook/on-failure/2' && e.type === 'step-failed')).toBeLessThan(ev.indexOf(end))
    expect(ev.find((e) => e.type === 'step-failed' && e.step.id === 'fa/hook/on-failure/2').evidence).toEqual(['webhook down'])
    expect(end).toMatchObject({ outcome: 'failed', exitCode: 1 })
    // The run's report says what each did.
    const report = readFileSync(join(dirname(end.journal), 'report.md'), 'utf8')
    expect(report).toContain('\n- after the failure: ✓ hook onFailure: record.sh\n- after the failure: ✗ hook onFailure: broken.sh: hook broken.sh exited with 7\n')
    expect(l.lab.status().clusters[0]!.nodes.map((n) => n.version)).toEqual(['v1.29.6+k3s1', 'v1.29.6+k3s1'])
    // A node point's hook is told which node it is about: its role, its address and the hop's versions.
    const node = JSON.parse(readFileSync(join(l.dir, 'node-hooks.jsonl'), 'utf8').trim().split('\n')[0]!)
    expect(node).toMatchObject({ point: 'beforeNode', cluster: 'fa', node: 'fa-cp-1', role: 'control-plane', host: '127.0.163.11', hop: { index: 1, from: 'v1.29.6+k3s1', to: 'v1.30.4+k3s1' } })
    expect(readFileSync(join(l.dir, 'node-hooks.env'), 'utf8')).toContain('KUPGRADE_FROM=v1.29.6+k3s1\nKUPGRADE_HOP=1\nKUPGRADE_HOST=127.0.163.11\n')
    expect(readFileSync(join(l.dir, 'node-hooks.env'), 'utf8')).toContain('KUPGRADE_ROLE=control-plane\n')
    expect(readFileSync(join(l.dir, 'node-hooks.env'), 'utf8')).toContain('KUPGRADE_TO=v1.30.4+k3s1\n')

    // Resumed and failing again: told again (a new failure of the same run).
    const again = await l.cli(['resume', '--output', 'json'])
    expect(again.code, again.err + again.out.slice(-3000)).toBe(1)
    expect(heard().map((h) => [h.runId, h.failure.outcome, h.failure.step])).toEqual([[end.runId, 'failed', failedStep], [end.runId, 'failed', failedStep]])
  }, 300_000)

  it('a run a pre-gate blocks is told so; a run that waits for an approval is not a failure', async () => {
    await l.editPlan((d) => {
      d.spec.hooks = { onFailure: ['record.sh'] }
    })
    l.lab.setFault({ fault: 'disk-full', cluster: 'fa', node: 'fa-w-1' }, true)
    try {
      const r = await l.cli(['apply', l.plan, '--output', 'json'])
      expect(r.code, r.err + r.out.slice(-3000)).toBe(3)
      const [c, ...more] = heard()
      expect(more).toEqual([])
      const end = events(r.out).find((e) => e.type === 'run-finished')
      expect(c.failure).toMatchObject({ outcome: 'blocked', exitCode: 3, message: end.message, cluster: 'fa' })
      // The pre-gates check at once: the failure is the one that blocked first, which the run's message names too.
      expect(c.failure.step).toMatch(/^fa\/fa\/pre\/gate\/[a-z-]+$/)
      expect(end.message).toContain(`step ${c.failure.step} failed: ${c.failure.error}`)
      expect(c.failure.error).toContain('fa-w-1')
    } finally {
      l.lab.clearFault({ fault: 'disk-full', cluster: 'fa', node: 'fa-w-1' })
    }

    rmSync(told(), { force: true })
    await l.editPlan((d) => {
      d.spec.stages[0].approval = 'required'
    })
    const waiting = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(waiting.code, waiting.err + waiting.out.slice(-3000)).toBe(4)
    expect(events(waiting.out).find((e) => e.type === 'run-finished').outcome).toBe('awaiting-approval')
    expect(heard()).toEqual([])
  }, 300_000)

  it('a hook that outlives spec.hooks.timeout is stopped and fails its point, saying so; plan shows the limit', async () => {
    await l.editPlan((d) => {
      d.spec.stages[0].approval = 'none'
      d.spec.hooks = { beforeCluster: ['slow.sh'], onFailure: ['record.sh'], timeout: '3s' }
    })
    const plan = await l.cli(['plan', l.plan, '--format', 'json'])
    expect(JSON.parse(plan.out).steps.find((s: any) => s.action === 'hook')).toMatchObject({ title: 'hook beforeCluster: slow.sh (timeout 3s)', params: { hook: 'slow.sh', point: 'beforeCluster', timeout: '3s' } })
    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    // A cluster's own step that fails pauses the run there (nothing on a node to roll back).
    expect(r.code, r.err + r.out.slice(-3000)).toBe(4)
    const failed = events(r.out).find((e) => e.type === 'step-failed')
    expect(failed).toMatchObject({ step: { id: 'fa/fa/hook/before-cluster/1' }, error: 'hook slow.sh did not finish within 3s and was stopped (spec.hooks.timeout sets how long a hook may run)', evidence: ['waiting for the change window'] })
    expect(heard()[0].failure).toMatchObject({ step: 'fa/fa/hook/before-cluster/1', error: failed.error })
    // Stopped with its children: before, the hook alone was killed, its child held the output open and the run waited
    // for it to finish.
    expect(existsSync(join(l.dir, 'slow-child.log'))).toBe(false)
    // Stopped before anything on the nodes.
    expect(l.lab.recorder.mutations({ afterSeq: mark }).filter((e) => e.source === 'node' || e.resource === 'nodes')).toEqual([])
  }, 120_000)
})
