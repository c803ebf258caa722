import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openSsh } from '../lab/helpers.js'
import { events, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * A k0s controller without a kubelet (k0s's default) has no Node to say which version it runs. Its binary replaced
 * but k0s not restarted — a run cut off between the two, or the installer run by hand — it still runs the old
 * version: `k0s version` says the new one, `k0s status` the old. plan --live took the binary on disk for what runs and
 * skipped the controller (and listed its apiserver at the new version), so apply left it running the old version for
 * good. It is planned now (with the warning that the hop was begun there), and apply finishes it.
 */
const NET = '127.0.169'
const CONTROLLER = `${NET}.11`

describe('apply: a k0s controller whose binary was replaced but not restarted', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology(NET, [{ name: 'kb', distribution: 'k0s', controlPlanes: 1, workers: 2 }]))
  }, 90_000)
  afterAll(async () => l?.stop())
  const { ok } = openSsh(() => l)

  it('is planned and upgraded, not skipped as if it ran the binary on disk', async () => {
    await ok(CONTROLLER, 'curl -sSLf https://get.k0s.sh | K0S_VERSION=v1.30.4+k0s.0 sh >/dev/null 2>&1')
    expect((await ok(CONTROLLER, 'k0s version')).trim()).toBe('v1.30.4+k0s.0')
    expect((await ok(CONTROLLER, 'k0s status')).split('\n')[0]).toBe('Version: v1.29.6+k0s.0')

    const live = await l.cli(['plan', l.plan, '--live', '--format', 'json'])
    expect(live.code, live.err).toBe(0)
    const plan = JSON.parse(live.out)
    expect(plan.steps.filter((s: any) => s.node === 'kb-cp-1' && s.action === 'start-service').map((s: any) => s.skip)).toEqual([undefined])
    expect(plan.warnings).toContainEqual(expect.stringMatching(/^cluster kb: kb-cp-1 already has k0s v1\.30\.4\+k0s\.0 installed while k0s runs v1\.29\.6\+k0s\.0: /))

    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)
    const started = events(r.out).filter((e) => e.type === 'step-done' && e.step.node === 'kb-cp-1' && e.step.action === 'start-service')
    expect(started.map((e) => e.changed)).toEqual([true])
    expect((await ok(CONTROLLER, 'k0s status')).split('\n')[0]).toBe('Version: v1.30.4+k0s.0')
  }, 240_000)
})
