import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { DEFAULT_GATES } from '../../src/gates/catalog.js'
import { events, recoverOnFailure, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * A node that fails before the run changed it (its beforeNode hook says no, before the cordon) is as it was: with
 * onFailure rollback there is nothing to roll back, and with rebuild nothing to rebuild (a rebuild would wipe a
 * healthy node). The run says so instead of claiming a rollback, and `resume` goes on once the hook agrees.
 */
describe('a node that failed before any change', () => {
  let l: ExecLab
  let allow: string
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.160', [{ name: 'nc', distribution: 'k3s', controlPlanes: 1, workers: 1 }]))
    allow = join(l.dir, 'window-open')
    const hook = join(l.dir, 'maintenance-window.sh')
    writeFileSync(hook, `#!/bin/sh\n[ "$KUPGRADE_NODE" != nc-w-1 ] || [ -e ${allow} ] || { echo "maintenance window closed for $KUPGRADE_NODE" >&2; exit 3; }\n`)
    chmodSync(hook, 0o755)
    await l.editPlan((d) => {
      recoverOnFailure('rebuild', 1)(d)
      d.spec.hooks = { beforeNode: [hook] }
    })
  }, 60_000)
  afterAll(async () => l?.stop())

  it('pre-gates: every gate answers, those queued behind the first that blocked too (exit 3, nothing changed)', async () => {
    // Five gates of your own, four at a time: the first fails at once (and is confirmed twice, a second apart), the
    // next three take 8 s (room for a loaded machine's confirmation), so the fifth starts only after the point was
    // decided, and its own confirmation is cut short. Before anything changed, it still
    // answers: the report names every reason to mend at once, whichever happened to fail first.
    const doc = parse(readFileSync(l.plan, 'utf8'))
    doc.spec.gates = {
      wait: { interval: '1s' },
      skip: DEFAULT_GATES.pre.map((gate) => ({ gate, reason: 'only the commands of this test' })),
      pre: [
        { command: { run: 'echo no room; exit 1', name: 'fails at once' } },
        ...[1, 2, 3].map((i) => ({ command: { run: 'sleep 8', name: `slow ${i}` } })),
        { command: { run: 'echo queued; exit 1', name: 'queued behind' } },
      ],
    }
    const plan = join(l.dir, 'gates-plan.yaml')
    writeFileSync(plan, stringify(doc))
    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', plan, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(3)
    const results = events(r.out).filter((e) => e.type === 'gate-result').map((e) => [e.status, e.summary])
    expect(results.sort()).toEqual([
      ['fail', 'runner: `fails at once` exited 1 (still after 3 checks)'],
      ['fail', 'runner: `queued behind` exited 1 (not re-checked: gate command blocked this point first)'],
      ['pass', '`slow 1` exited 0 on the runner'],
      ['pass', '`slow 2` exited 0 on the runner'],
      ['pass', '`slow 3` exited 0 on the runner'],
    ])
    expect(l.lab.recorder.mutations({ afterSeq: mark }).filter((e) => e.source === 'node' || e.resource === 'nodes')).toEqual([])
    // The journal keeps it as apply said it: blocked, not failed (exit 3, nothing changed).
    const status = await l.cli(['status', plan])
    expect(status.out).toMatch(/^run \S+: blocked — step \S+\/pre\/gate\/command failed: .*; nothing was changed\n/)
    expect((await l.cli(['runs', plan])).out).toMatch(/\n\S+ +blocked +\S+ +4 done, 0 skipped, 2 failed +\S+gates-plan\.yaml\n$/)
  }, 120_000)

  it('is neither rolled back nor rebuilt; once the hook agrees, resume upgrades it', async () => {
    const first = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(first.code, first.err + first.out.slice(-3000)).toBe(1)
    const ev = events(first.out)
    expect(ev.filter((e) => /^(rollback|rebuild)-/.test(e.type))).toEqual([])
    expect(ev.find((e) => e.type === 'node-failed')).toMatchObject({ node: 'nc-w-1', cordoned: false, error: expect.stringContaining('hook') })
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'failed' })
    expect(ev.at(-1).message).toMatch(/hook \S+maintenance-window\.sh exited with 3; nothing to rebuild: this run had not changed nc-w-1/)
    // The end of the run says how to go on, as `status` does.
    expect(ev.at(-1).resume).toMatch(/^kupgrade resume \S+$/)
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.cordoned])).toEqual([
      ['nc-cp-1', 'v1.30.4+k3s1', false], ['nc-w-1', 'v1.29.6+k3s1', false],
    ])

    writeFileSync(allow, '')
    const status = await l.cli(['status'])
    const resume = /to continue: kupgrade resume (\S+)/.exec(status.out)
    expect(resume, status.out).not.toBeNull()
    const r = await l.cli(['resume', resume![1]!, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(0)
    // Its beforeNode gate is checked again, not taken as passed by the failed attempt.
    expect(events(r.out).some((e) => e.type === 'gate-result' && /\/nc-w-1\/before\/gate\//.test(e.step.id))).toBe(true)
    expect(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version, n.cordoned])).toEqual([
      ['nc-cp-1', 'v1.30.4+k3s1', false], ['nc-w-1', 'v1.30.4+k3s1', false],
    ])
  }, 300_000)
})
