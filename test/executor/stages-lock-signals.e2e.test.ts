import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { execa } from 'execa'
import { parse, stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiEvent } from '../../src/lab/recorder/types.js'
import { runCli } from '../helpers/run-cli.js'
import { KUBECTL } from '../lab/helpers.js'
import { events, runDirs, runsDir, startStagedLab, type ExecLab } from './helpers.js'

/**
 * Staged promotion, the cluster lock and interruption on one lab with two k3s clusters (staging → production with
 * approval required): approval stops with exit 4 and the exact resume command; a second apply is refused naming the
 * holder; SIGINT stops safely (exit 130) and resume completes.
 */
describe('apply: stages, approval, lock, SIGINT → resume', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startStagedLab('127.0.86', { soak: '1s', productionWorkers: 2 })
    await l.editPlan((d) => {
      d.spec.strategy.onFailure = 'pause'
    })
  }, 60_000)
  afterAll(async () => l?.stop())

  it('on a terminal: the listr2 tree, a stage that needs approval asked and declined (exit 4), the command printed', async () => {
    // A real pseudo-terminal (util-linux script): the tree is drawn there, and the approval question is answered "n"
    // once it is on the screen: the tree once held it back until the run ended, and the terminal showed a spinner that
    // waited for an answer nobody had been asked for. (Staging done and no question after 30 s: answered all the same.)
    // CI is emptied: apply never prompts under CI (the suite itself runs under CI=1), and this is the terminal case.
    const cli = `stty cols 150 rows 50; ${process.execPath} ${join(process.cwd(), 'bin/kupgrade.js')} apply ${l.plan} --yes`
    const child = execa('script', ['-qfec', cli, '/dev/null'], { cwd: l.dir, env: { ...l.env, CI: '', TERM: 'xterm-256color', COLUMNS: '160', LINES: '60' }, stdin: 'pipe', reject: false })
    const question = /Stage production requires approval\. Start it now\? \[y\/N\]/
    let seen = ''
    const screen = () => seen.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '')
    let askedFirst: boolean | undefined
    let staged: NodeJS.Timeout | undefined
    const answer = (asked: boolean) => {
      if (askedFirst !== undefined) return
      askedFirst = asked
      child.stdin!.end('n\n')
    }
    child.stdout!.on('data', (d: Buffer) => {
      seen += d.toString()
      if (question.test(screen())) answer(true)
      else if (!staged && /✔ stage staging/.test(screen())) staged = setTimeout(() => answer(false), 30_000)
    })
    const pty = await child
    clearTimeout(staged)
    const r = { code: pty.exitCode, out: screen(), err: String(pty.stderr) }
    expect(askedFirst, r.out).toBe(true)
    expect(r.code, r.out + r.err).toBe(4)
    // The tree: stage › cluster › node with durations, and the gate result lines.
    expect(r.out).toMatch(/✔ stage staging/)
    expect(r.out).toMatch(/✔ stg ✓ \d+\.\ds/)
    expect(r.out).toMatch(/stg-cp-1 ✓ \d+\.\ds/)
    expect(r.out).toMatch(/stg-w-1 ✓ \d+\.\ds/)
    expect(r.out).toMatch(/gate nodes-ready: pass/)
    expect(r.out).not.toMatch(/progress display failed/)
    expect(r.out).toMatch(/Summary of run \S+: awaiting-approval \(exit 4\)/)
    // The declined stage is one line in the tree, saying what it waits for; not drawn done.
    expect(r.out).toMatch(/↓ stage production: waits for approval \(kupgrade resume \S+ --approve production\)/)
    expect(r.out).not.toMatch(/✔ stage production/)
    const cmd = /to continue: kupgrade resume (\S+) --approve production/.exec(r.out)
    expect(cmd, r.out).not.toBeNull()
    const prd = l.lab.status().clusters.find((c) => c.name === 'prd')!
    expect(prd.nodes.every((n) => n.version === 'v1.29.6+k3s1')).toBe(true)
    expect(l.lab.recorder.mutations({ cluster: 'prd' })).toEqual([])
    expect(l.lab.status().clusters.find((c) => c.name === 'stg')!.nodes.every((n) => n.version === 'v1.30.4+k3s1')).toBe(true)

    const st = await l.cli(['status'])
    expect(st.out).toMatch(/awaiting-approval/)
    expect(st.out).toContain(`kupgrade resume`)

    // Without the approval, resume stops at the same place again.
    expect((await l.cli(['resume', cmd![1]!])).code).toBe(4)
    expect(l.lab.recorder.mutations({ cluster: 'prd' })).toEqual([])
    // The plan must not change under a run.
    const original = await readFile(l.plan, 'utf8')
    await l.editPlan((d) => { d.metadata.description = 'edited' })
    const changed = await l.cli(['resume', cmd![1]!, '--approve', 'production'])
    expect(changed.code).toBe(2)
    expect(changed.err).toMatch(/changed since run .* started/)
    await writeFile(l.plan, original)
  }, 400_000)

  it('a second apply on a locked cluster is refused, naming the holder; SIGINT stops safely and resume completes', async () => {
    // The approved resume runs as its own process, so it can get a real SIGINT.
    const runDir = /kupgrade resume (\S+)/.exec((await l.cli(['status'])).out)![1]!
    const child = execa(process.execPath, [join(process.cwd(), 'bin/kupgrade.js'), 'resume', runDir, '--approve', 'production', '--output', 'json'], { cwd: l.dir, env: l.env, reject: false })
    let out = ''
    const seen = (re: RegExp) => new Promise<void>((resolve) => {
      const check = () => (re.test(out) ? resolve() : undefined)
      child.stdout!.on('data', (d) => { out += String(d); check() })
      check()
    })
    // A child that exits early (a refused resume) must fail the test, not hang it.
    void child.then((r) => { if (r.exitCode !== 130) out += `\nCHILD EXITED ${r.exitCode}: ${r.stderr}` })
    await Promise.race([seen(/"type":"lock-acquired","time":"[^"]+","cluster":"prd"/), child.then(() => { throw new Error(`resume exited early: ${out}`) })])

    // Another copy of the plan in another directory (so the local lock file does not stop it first) hits the Lease.
    const other = join(l.dir, 'other')
    await mkdir(other)
    const doc = parse(await readFile(l.plan, 'utf8'))
    for (const c of doc.spec.clusters) {
      c.kubeconfig = '../kubeconfig'
      c.ssh.identityFile = '../id_ed25519'
      c.ssh.knownHosts = '../known_hosts'
    }
    doc.spec.stages[1].approval = 'none'
    await writeFile(join(other, 'plan.yaml'), stringify(doc))
    const second = await runCli(['apply', join(other, 'plan.yaml'), '--stage', 'production'], { env: l.env, cwd: other })
    expect(second.code, second.out + second.err).toBe(4)
    const runId = runDir.split('/').pop()!
    expect(second.out + second.err).toMatch(new RegExp(`another kupgrade run holds the lock Lease kube-system/kupgrade-lock: "${runId} \\S+@\\S+" since \\d{4}-`))
    // The same directory: the local lock file refuses before any API call.
    const local = await l.cli(['apply', l.plan, '--stage', 'production', '--approve', 'production'])
    expect(local.code).toBe(4)
    expect(local.err).toMatch(new RegExp(`another kupgrade run \\(${runId}, pid \\d+\\) holds`))

    await seen(/"type":"step-done"[^\n]*"id":"production\/prd\/hop1\/prd-w-1\/cordon"/)
    child.kill('SIGINT')
    const r = await child
    expect(r.exitCode, out.slice(-3000) + r.stderr).toBe(130)
    const finished = events(out).at(-1)
    expect(finished).toMatchObject({ type: 'run-finished', outcome: 'interrupted', exitCode: 130 })
    expect(finished.resume).toBe(`kupgrade resume ${runDir}`)
    // Stopped safely: the lock was released on the way out and the journal says where it stopped.
    const leaseWrites = (l.lab.recorder.mutations({ cluster: 'prd', source: 'api' }) as ApiEvent[]).filter((e) => e.resource === 'leases')
    expect(leaseWrites.length).toBeGreaterThanOrEqual(2)

    const resumed = await l.cli(['resume', runDir])
    expect(resumed.code, resumed.out + resumed.err).toBe(0)
    const prd = l.lab.status().clusters.find((c) => c.name === 'prd')!
    expect(prd.nodes.map((n) => [n.version, n.cordoned])).toEqual([['v1.30.4+k3s1', false], ['v1.30.4+k3s1', false], ['v1.30.4+k3s1', false]])
    expect(l.lab.recorder.maxConcurrentlyCordoned('prd', 'worker')).toBe(1)
    expect(l.lab.recorder.nodeUpgradeOrder('prd')).toEqual(['prd-cp-1', 'prd-w-1', 'prd-w-2'])
    expect((await l.cli(['status', runDir])).out).toMatch(/: done/)
  }, 240_000)

  it('a run stopped after its last step but before the unlock: resume releases the Lease it still holds, and leaves one another run took alone', async () => {
    // What a kill right before the unlock leaves: the journal without the unlock and what came after it, and the
    // Lease still held by the run (as the killed process last renewed it).
    const ids = runDirs(l)
    expect(ids, 'this file makes one run').toHaveLength(1)
    const runId = ids[0]!
    const journalFile = join(runsDir(l), runId, 'journal.jsonl')
    const entries = (await readFile(journalFile, 'utf8')).split('\n').filter(Boolean).map((x) => JSON.parse(x))
    const cut = entries.findIndex((e) => e.step === 'production/prd/unlock')
    expect(cut, 'the finished run unlocked prd').toBeGreaterThan(0)
    await writeFile(journalFile, entries.slice(0, cut).map((e) => `${JSON.stringify(e)}\n`).join(''))
    const holder = /held by "([^"]+)"/.exec(entries.filter((e) => e.step === 'production/prd/lock' && e.state === 'done').at(-1).evidence[0])![1]!
    const kubectl = async (args: string[], input?: string) => (await execa(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'prd', ...args], input === undefined ? {} : { input })).stdout
    const lease = JSON.parse(await kubectl(['get', 'lease', 'kupgrade-lock', '-n', 'kube-system', '-o', 'json']))
    expect(lease.spec.holderIdentity ?? '').toBe('')
    const holdBy = async (who: string) => {
      const at = new Date().toISOString().replace('Z', '000Z')
      const now = JSON.parse(await kubectl(['get', 'lease', 'kupgrade-lock', '-n', 'kube-system', '-o', 'json']))
      now.spec = { ...now.spec, holderIdentity: who, leaseDurationSeconds: 300, acquireTime: at, renewTime: at }
      await kubectl(['replace', '-f', '-'], JSON.stringify(now))
    }

    // Another run took the Lease since: it is that run's, and the resume leaves it alone.
    await holdBy('20990101T000000Z-0000 ops@elsewhere')
    const other = await l.cli(['resume', runId])
    expect(other.code, other.out + other.err).toBe(0)
    expect(JSON.parse(await kubectl(['get', 'lease', 'kupgrade-lock', '-n', 'kube-system', '-o', 'json'])).spec.holderIdentity).toBe('20990101T000000Z-0000 ops@elsewhere')
    const untouched = (await readFile(journalFile, 'utf8')).split('\n').filter(Boolean).map((x) => JSON.parse(x))
    expect(untouched.filter((e) => e.step === 'production/prd/unlock')).toEqual([])

    await writeFile(journalFile, entries.slice(0, cut).map((e) => `${JSON.stringify(e)}\n`).join(''))
    await holdBy(holder)
    const resumed = await l.cli(['resume', runId])
    expect(resumed.code, resumed.out + resumed.err).toBe(0)
    expect(JSON.parse(await kubectl(['get', 'lease', 'kupgrade-lock', '-n', 'kube-system', '-o', 'json'])).spec.holderIdentity ?? '').toBe('')
    const after = (await readFile(journalFile, 'utf8')).split('\n').filter(Boolean).map((x) => JSON.parse(x))
    expect(after.filter((e) => e.step === 'production/prd/unlock').map((e) => e.state)).toEqual(['started', 'done'])
    // Nothing else ran again: no node step after the cut.
    expect(after.slice(cut).filter((e) => /\/hop\d+\//.test(e.step))).toEqual([])
  }, 120_000)

  it('the finished plan applied again: no approval asked for a stage with nothing to do, no soak that nothing waits for', async () => {
    // Without --approve and without a terminal: asking would stop the run with exit 4 for a stage that changes nothing,
    // and a soak (30m in a real plan) would hold back stages that have nothing to do.
    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(r.code, r.out.slice(-3000) + r.err).toBe(0)
    const evs = events(r.out)
    expect(evs.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'nothing-to-do', exitCode: 0 })
    expect(evs.find((e) => e.type === 'approval-needed')).toBeUndefined()
    const skipped = (id: string) => evs.find((e) => e.type === 'step-skipped' && e.step.id === id)?.reason
    expect(skipped('production/approval')).toBe('nothing to approve: no node of stage production is left to upgrade')
    expect(skipped('staging/soak')).toBe('no later stage has a node left to upgrade: nothing waits for this soak')
    expect(evs.filter((e) => e.type === 'gate-result' && e.during === 'soak')).toEqual([])
    expect(l.lab.recorder.mutations({ afterSeq: mark })).toEqual([])
  }, 120_000)

  it('a cluster at the target whose lock another run still holds is not done: the run stops there (exit 4) and writes nothing', async () => {
    // Found by hand on the demo fleet: a second apply, started as the first finished staging's last node, found every
    // staging node at the target, skipped the cluster without looking at its lock, soaked on its own, and upgraded
    // production while the first run was still at staging's post-gates (it would have rolled staging back had they
    // failed, with production already on its way).
    const kubectl = async (args: string[], input?: string) => (await execa(KUBECTL, ['--kubeconfig', join(l.dir, 'kubeconfig'), '--context', 'stg', ...args], input === undefined ? {} : { input })).stdout
    const holdBy = async (who: string, renewedSecondsAgo: number) => {
      const at = new Date(Date.now() - renewedSecondsAgo * 1000).toISOString().replace('Z', '000Z')
      const lease = JSON.parse(await kubectl(['get', 'lease', 'kupgrade-lock', '-n', 'kube-system', '-o', 'json']))
      lease.spec = { ...lease.spec, holderIdentity: who, leaseDurationSeconds: 30, acquireTime: at, renewTime: at }
      await kubectl(['replace', '-f', '-'], JSON.stringify(lease))
    }
    const other = '20990101T000000Z-0000 ops@elsewhere'
    await holdBy(other, 0)
    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', l.plan, '--approve', 'production', '--output', 'json'])
    expect(r.code, r.out.slice(-3000) + r.err).toBe(4)
    const evs = events(r.out)
    expect(evs.find((e) => e.type === 'lock-refused')).toMatchObject({ cluster: 'stg', holder: other, expired: false })
    expect(evs.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'paused', exitCode: 4 })
    expect(evs.at(-1).message).toContain(`cluster stg: another kupgrade run holds the lock Lease kube-system/kupgrade-lock: "${other}" since `)
    expect(evs.at(-1).message).toContain('(every node is already at the target, but that run has not finished with it: this run does not count it as done)')
    // Neither the next stage nor the soak before it began.
    expect(evs.filter((e) => e.type === 'stage-started').map((e) => e.stage)).toEqual(['staging'])
    expect(evs.some((e) => e.step?.id === 'staging/soak')).toBe(false)
    expect(l.lab.recorder.mutations({ afterSeq: mark })).toEqual([])
    // Read only, before any apply: inventory (kubectl against the lab's API) says who holds stg's lock; prd's is free.
    const inv = await l.cli(['inventory', l.plan, '--format', 'json'])
    expect(inv.code, inv.err).toBe(0)
    const lockOf = (name: string) => JSON.parse(inv.out).clusters.find((c: any) => c.name === name).runLock
    expect(lockOf('stg')).toEqual({ holder: other, since: expect.stringMatching(/^\d{4}-/), expired: false })
    expect(lockOf('prd')).toBeUndefined()
    // check's gates all pass there, and it says where apply would stop; apply itself said so as it started.
    const check = await l.cli(['check', l.plan, '--cluster', 'stg', '--gate', 'nodes-ready'])
    expect(check.code, check.err + check.out).toBe(0)
    expect(check.err).toContain(`warning: cluster stg: run lock (Lease kube-system/kupgrade-lock) held by "${other}" since `)
    expect(evs[0].warnings).toContainEqual(expect.stringContaining(`cluster stg: run lock (Lease kube-system/kupgrade-lock) held by "${other}" since `))

    // That run died long ago (its Lease expired): taken as done only with --force-unlock, still without a write.
    await holdBy(other, 600)
    const afterHold = l.lab.recorder.mark()
    const expired = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(expired.code, expired.out.slice(-3000) + expired.err).toBe(4)
    expect(events(expired.out).find((e) => e.type === 'lock-refused')).toMatchObject({ cluster: 'stg', expired: true })
    const forced = await l.cli(['apply', l.plan, '--force-unlock', '--output', 'json'])
    expect(forced.code, forced.out.slice(-3000) + forced.err).toBe(0)
    expect(events(forced.out).at(-1)).toMatchObject({ outcome: 'nothing-to-do' })
    expect(l.lab.recorder.mutations({ afterSeq: afterHold })).toEqual([])
  }, 120_000)
})
