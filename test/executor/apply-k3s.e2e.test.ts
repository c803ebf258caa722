import { existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiEvent, NodeEvent } from '../../src/lab/recorder/types.js'
import { EXECUTION_PLAN_SCHEMA_VERSION } from '../../src/planner/types.js'
import { isProbeWrite } from '../helpers/probe-writes.js'
import { runCli } from '../helpers/run-cli.js'
import { events, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * A full k3s upgrade (1 server + 2 agents) through `kupgrade apply` on the lab, proven with the lab's recorder:
 * the dry-run changes nothing and records exactly the writes the real run then makes; control-plane first, at most
 * maxUnavailable workers cordoned; a second apply of the finished plan changes nothing and says so.
 */
describe('apply: k3s 1 server + 2 agents', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.85', [{ name: 'edge', distribution: 'k3s', controlPlanes: 1, workers: 2 }]))
  }, 60_000)
  afterAll(async () => l?.stop())

  let dryWrites: { channel: string; cluster?: string; node?: string; command: string }[] = []

  it('apply --dry-run runs the executor with recording channels: nothing changes, every write is recorded', async () => {
    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', l.plan, '--dry-run', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-2000)).toBe(0)
    // The pre-gates ran for real (a dry-run checks the state it starts from): their probe pods, created and deleted,
    // are the only writes.
    const writes = l.lab.recorder.mutations({ afterSeq: mark })
    expect(writes.filter((e) => !isProbeWrite(e))).toEqual([])
    expect(writes.filter((e) => e.source === 'api' && e.method === 'POST').length).toBe(writes.filter((e) => e.source === 'api' && e.method === 'DELETE').length)
    expect(writes.length).toBeGreaterThan(0)
    const ev = events(r.out)
    // The single server is said once, by the control-plane-ha pre-gate with its evidence and hint, and not again by
    // the plan's validation warning of the same thing in other words.
    expect(ev[0].warnings.filter((w: string) => /control-plane node/.test(w))).toEqual([])
    expect(ev.filter((e) => e.type === 'gate-result' && e.gate === 'control-plane-ha').map((e) => [e.status, e.summary])).toEqual([['warn', '1 control-plane node: a single point of failure']])
    dryWrites = ev.find((e) => e.type === 'dry-run-recorded').writes
    expect(dryWrites.some((w) => w.channel === 'ssh' && w.node === 'edge-w-2' && /get\.k3s\.io/.test(w.command))).toBe(true)
    expect(dryWrites.filter((w) => w.command.startsWith('kubectl cordon')).map((w) => w.command)).toEqual(['kubectl cordon edge-cp-1', 'kubectl cordon edge-w-1', 'kubectl cordon edge-w-2'])
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'done', exitCode: 0 })
    // A dry-run leaves no run behind.
    expect(existsSync(join(l.dir, '.kupgrade', 'runs')) && readFileSync(join(l.dir, '.kupgrade', 'runs', 'apply.lock'), 'utf8')).toBeFalsy()
  }, 300_000)

  it('apply upgrades every node, server first, one agent at a time, and journals each step', async () => {
    const mark = l.lab.recorder.mark()
    // The CLI runs in this process: a warning Node would print on the user's stderr mid-run is seen here.
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`)
    process.on('warning', onWarning)
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => process.off('warning', onWarning))
    expect(r.code, r.err + r.out.slice(-3000)).toBe(0)
    expect(warnings).toEqual([])
    const status = l.lab.status().clusters[0]!
    expect(status.nodes.map((n) => [n.name, n.version, n.cordoned])).toEqual([
      ['edge-cp-1', 'v1.30.4+k3s1', false], ['edge-w-1', 'v1.30.4+k3s1', false], ['edge-w-2', 'v1.30.4+k3s1', false],
    ])
    const rec = l.lab.recorder
    expect(rec.nodeUpgradeOrder('edge')).toEqual(['edge-cp-1', 'edge-w-1', 'edge-w-2'])
    expect(rec.maxConcurrentlyCordoned('edge', 'worker')).toBe(1)
    expect(rec.maxConcurrentDisruptions('edge')).toBe(1)

    // The dry-run's writes are, one for one, what the real run did: the same cordon/uncordon sequence, the lock,
    // and SSH changes on exactly the nodes the dry-run named.
    const api = rec.mutations({ afterSeq: mark, source: 'api' }) as ApiEvent[]
    const nodeWrites = api.filter((e) => e.resource === 'nodes' && e.unschedulable !== undefined).map((e) => `${e.unschedulable ? 'cordon' : 'uncordon'} ${e.name}`)
    const dryNodeWrites = dryWrites.filter((w) => /^kubectl (un)?cordon /.test(w.command)).map((w) => w.command.replace(/^kubectl /, ''))
    expect(nodeWrites, JSON.stringify(api.map((e) => [e.verb, e.resource, e.name, e.unschedulable, e.code]))).toEqual(dryNodeWrites)
    expect(api.filter((e) => e.resource === 'leases' && e.verb === 'create').length).toBe(dryWrites.filter((w) => w.command.startsWith('kubectl create -f -')).length)
    const changedNodes = new Set((rec.mutations({ afterSeq: mark, source: 'node' }) as NodeEvent[]).map((e) => e.node))
    expect(changedNodes).toEqual(new Set(dryWrites.filter((w) => w.channel === 'ssh').map((w) => w.node)))

    const ev = events(r.out)
    // kubectl's own answer (real kubectl against the lab) decides cordon and uncordon, with no get before or after.
    for (const action of ['cordon', 'uncordon']) {
      const done = ev.filter((e) => e.type === 'step-done' && e.step.action === action)
      expect(done.map((e) => [e.step.node, e.changed, e.evidence]), action).toEqual(['edge-cp-1', 'edge-w-1', 'edge-w-2'].map((n) => [n, true, [`ran: kubectl ${action} ${n}`, `it answered: node/${n} ${action}ed`]]))
    }
    const runId = ev[0].runId as string
    const journal = readFileSync(join(l.dir, '.kupgrade', 'runs', runId, 'journal.jsonl'), 'utf8').trim().split('\n').map((x) => JSON.parse(x))
    expect(journal[0]).toMatchObject({ kind: 'kupgrade-journal', runId, plan: l.plan, schemaVersion: EXECUTION_PLAN_SCHEMA_VERSION })
    expect(journal[0].planSha256).toMatch(/^[0-9a-f]{64}$/)
    const seqs = journal.slice(1).map((e) => e.seq)
    expect(seqs).toEqual(seqs.map((_, i) => i + 1))
    const replace = journal.find((e) => e.step === 'edge/edge/hop1/edge-w-1/replace-binary' && e.state === 'done')
    expect(replace.changed).toBe(true)
    expect(replace.undo.commands.join('\n')).toMatch(/k3s/)
    expect(journal.at(-1)).toMatchObject({ step: 'run', state: 'done' })
  }, 400_000)

  it('re-running the finished plan changes nothing and says so', async () => {
    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', l.plan])
    expect(r.code, r.err + r.out).toBe(0)
    expect(r.out).toMatch(/nothing to do/)
    expect(r.out).toMatch(/edge: skipped: every node is already at the target/)
    expect(l.lab.recorder.mutations({ afterSeq: mark })).toEqual([])
    const runs = await l.cli(['runs'])
    expect(runs.out.split('\n').filter((x) => /\bdone\b/.test(x)).length).toBe(2)
    // With every run finished, status shows the newest one (no unfinished run to prefer).
    const newest = runs.out.trim().split('\n').at(-1)!.split(/\s+/)[0]
    expect((await l.cli(['status'])).out).toMatch(new RegExp(`^run ${newest}: done`))
    // … and from anywhere, naming the plan.
    expect((await runCli(['status', l.plan], { env: l.env, cwd: tmpdir() })).out).toMatch(new RegExp(`^run ${newest}: done`))
    // From anywhere, naming the plan (or its folder) lists the runs beside it.
    for (const where of [l.plan, l.dir]) {
      const named = await runCli(['runs', where], { env: l.env, cwd: tmpdir() })
      expect(named.out, named.err).toBe(runs.out)
    }
    // A mistyped plan is not taken for the folder it would be in (the runs of the current one listed as its).
    const typo = await runCli(['runs', 'plan.yml'], { env: l.env, cwd: l.dir })
    expect([typo.code, typo.out, typo.err]).toEqual([2, '', 'error: plan.yml: no such plan file or folder\nhint: pass the plan the runs ran, or the folder holding it (kupgrade runs DIR)\n'])
  }, 300_000)
})
