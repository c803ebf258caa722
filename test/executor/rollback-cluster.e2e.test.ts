import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { events, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * `kupgrade rollback --cluster C` takes back only what the run changed in C. Found by hand on the demo fleet: after a
 * finished run of staging and production, `kupgrade rollback --cluster staging --yes` rolled back production's five
 * nodes too (its control plane from the etcd snapshot), since a resumed run kept its own selection and the flag was
 * dropped.
 */
describe('kupgrade rollback --cluster', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.162', [
      { name: 'ra', distribution: 'k3s', controlPlanes: 1, workers: 1 },
      { name: 'rb', distribution: 'k3s', controlPlanes: 1, workers: 1 },
    ]))
  }, 120_000)
  afterAll(async () => l?.stop())

  const versions = () => l.lab.status().clusters.flatMap((c) => c.nodes.map((n) => `${n.name} ${n.version}${n.cordoned ? ' cordoned' : ''}`))

  it('rolls back the cluster it names and touches no other; a cluster the plan lacks is refused before anything runs', async () => {
    const up = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(up.code, up.err + up.out.slice(-3000)).toBe(0)

    const refused = await l.cli(['rollback', '--cluster', 'rc', '--yes'])
    expect(refused.code).toBe(2)
    expect(refused.err).toContain('--cluster rc: the plan has no such cluster (clusters: ra, rb)')

    // rb's only server moved: its rollback restores k3s's datastore from the snapshot before the hop, and every API
    // object with it. On a terminal that is said with the question (real pseudo-terminal; answered no); in CI and with
    // --yes, in the run's first lines.
    const restored = /^cluster rb: its control plane is restored from the datastore snapshot taken before hop 1, at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \((\d+m)?\d+s ago\): every API object goes back to that moment, and what was created or changed in the cluster since is lost$/
    const mark = l.lab.recorder.mark()
    const cli = `stty cols 150 rows 50; ${process.execPath} ${join(process.cwd(), 'bin/kupgrade.js')} rollback --cluster rb`
    const child = execa('script', ['-qfec', cli, '/dev/null'], { cwd: l.dir, env: { ...l.env, CI: '', TERM: 'xterm-256color' }, stdin: 'pipe', reject: false })
    let seen = ''
    child.stdout!.on('data', (d: Buffer) => {
      seen += d.toString()
      if (/\[y\/N\]/.test(seen)) child.stdin!.end('n\n')
    })
    const declined = await child
    const screen = seen.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '').split('\n')
    const asked = screen.findIndex((x) => x.includes('Roll back the nodes run'))
    expect(declined.exitCode, seen).toBe(4)
    expect(screen.slice(0, asked + 1).filter((x) => x.startsWith('warning: ')).map((x) => x.slice('warning: '.length)), seen).toEqual([expect.stringMatching(restored)])
    expect(screen[asked]).toMatch(/^Roll back the nodes run \S+ changed in rb\? \[y\/N\] /)
    expect(seen).toContain('nothing was changed')
    expect(l.lab.recorder.mutations({ afterSeq: mark }).filter((e) => e.client !== 'lab')).toEqual([])

    const r = await l.cli(['rollback', '--cluster', 'rb', '--yes', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(0)
    const ev = events(r.out)
    // ra's server moved too, but this rollback leaves ra as it is: only rb's restore is said.
    expect(ev[0]).toMatchObject({ type: 'run-started', rollback: true, warnings: [expect.stringMatching(restored)] })
    expect(ev.filter((e) => e.type === 'rollback-done').map((e) => `${e.cluster}/${e.node}`)).toEqual(['rb/rb-w-1', 'rb/rb-cp-1'])
    expect(ev.some((e) => 'cluster' in e && e.cluster === 'ra')).toBe(false)
    expect(versions()).toEqual(['ra-cp-1 v1.30.4+k3s1', 'ra-w-1 v1.30.4+k3s1', 'rb-cp-1 v1.29.6+k3s1', 'rb-w-1 v1.29.6+k3s1'])
    // The lab saw kupgrade change nothing in cluster ra: no state-changing node command, no API write.
    expect(l.lab.recorder.mutations({ cluster: 'ra', afterSeq: mark }).filter((e) => e.client !== 'lab')).toEqual([])
    expect(l.lab.recorder.mutations({ cluster: 'rb', afterSeq: mark }).filter((e) => e.client !== 'lab').length).toBeGreaterThan(0)
  }, 300_000)

  it('a run that covered only one cluster: naming another is refused, and says which it covered', async () => {
    const up = await l.cli(['apply', l.plan, '--cluster', 'rb', '--output', 'json'])
    expect(up.code, up.err + up.out.slice(-3000)).toBe(0)
    const r = await l.cli(['rollback', '--cluster', 'ra', '--yes'])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/run \S+ did not cover cluster ra \(it ran only cluster rb\): it changed nothing there to roll back/)
    // The same for a run of one stage (each cluster here is a stage of its own).
    const staged = await l.cli(['apply', l.plan, '--stage', 'rb', '--output', 'json'])
    expect(staged.code, staged.err + staged.out.slice(-3000)).toBe(0)
    const r2 = await l.cli(['rollback', '--cluster', 'ra', '--yes'])
    expect(r2.code).toBe(2)
    expect(r2.err).toMatch(/run \S+ did not cover cluster ra \(it ran only stage rb\)/)
    expect(versions()).toEqual(['ra-cp-1 v1.30.4+k3s1', 'ra-w-1 v1.30.4+k3s1', 'rb-cp-1 v1.30.4+k3s1', 'rb-w-1 v1.30.4+k3s1'])
  }, 300_000)
})
