import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TopologyInput } from '../../src/lab/topology.js'
import { events, nodeFile, startExecLab, type ExecLab } from './helpers.js'

/**
 * A kubeadm upgrade someone began by hand and left (examples/lab/kubeadm-mid-upgrade.yaml): `kubeadm upgrade apply`
 * and the kubelet done on cp-1, the kubeadm package and `kubeadm upgrade node` on cp-2, nothing else. `apply` used to
 * drain cp-2 and fail its backup: the kept kubeadm had to be v1.29.6, and the node had v1.30.4 before the run began.
 * kupgrade finishes such an upgrade: the plan says which node's hop was begun outside it, its backup keeps what the
 * node has, and each step already done is found so on the node.
 */
describe('apply finishes a kubeadm upgrade begun by hand', () => {
  let l: ExecLab
  beforeAll(async () => {
    const t = parse(readFileSync('examples/lab/kubeadm-mid-upgrade.yaml', 'utf8')) as TopologyInput
    // This file's own addresses (the example's are for a lab of its own), fast delays.
    const c = (t as any).spec.clusters[0]
    c.apiAddress = '127.0.167.1'
    c.nodes.forEach((n: { address: string }, i: number) => (n.address = `127.0.167.${11 + i}`))
    ;(t as any).spec.timing = { serviceRestart: '100ms', readyDelay: '200ms', reboot: '300ms', drainEvictionDelay: '50ms' }
    l = await startExecLab(t)
  }, 120_000)
  afterAll(async () => l?.stop())

  it('the plan names the node begun outside the run; apply finishes every node, cp-2 without redoing what was done', async () => {
    const begun = 'cluster resume: cp-2 already has kubeadm v1.30.4 installed while its kubelet runs v1.29.6: the hop to v1.30.4 was begun on it outside this run. kupgrade finishes it, but its backup keeps the node as found (kubeadm v1.30.4), so a rollback cannot put the files of v1.29.6 back on it'
    const plan = await l.cli(['plan', l.plan, '--live'])
    expect(plan.code, plan.err + plan.out.slice(-2000)).toBe(0)
    expect(plan.out).toContain(`warning: ${begun}`)

    const r = await l.cli(['apply', l.plan, '--yes', '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-3000)).toBe(0)
    const ev = events(r.out)
    // apply says it too, before anything runs (and in its summary).
    expect(ev[0]).toMatchObject({ type: 'run-started', warnings: expect.arrayContaining([begun]) })
    const done = (node: string, step: string) => ev.find((e) => e.type === 'step-done' && e.step.id === `resume/resume/hop1/${node}/${step}`)
    // cp-1 was finished by hand: skipped. cp-2's kubeadm and its control plane were there already; its kubelet not.
    expect(ev.filter((e) => e.type === 'step-skipped' && e.step.node === 'cp-1' && e.step.action === 'upgrade-control-plane')).toHaveLength(1)
    expect(done('cp-2', 'backup-files')).toMatchObject({ changed: true })
    expect(done('cp-2', 'upgrade-package')).toMatchObject({ changed: false })
    expect(done('cp-2', 'upgrade-control-plane')).toMatchObject({ changed: false })
    expect(done('cp-2', 'upgrade-package-2')).toMatchObject({ changed: true })
    expect(done('cp-3', 'upgrade-control-plane')).toMatchObject({ changed: true })
    // What cp-2 kept is what it had: kubeadm v1.30.4, its kubelet v1.29.6 (the lab's stand-in binaries say their version).
    expect(nodeFile(l, 'resume', 'cp-2', '/var/lib/kupgrade/backup/v1.29.6/files/usr/bin/kubeadm')).toContain('v1.30.4')
    expect(nodeFile(l, 'resume', 'cp-2', '/var/lib/kupgrade/backup/v1.29.6/files/usr/bin/kubelet')).toContain('v1.29.6')
    const model = l.lab.clusters.get('resume')!.model
    expect([...model.nodes.values()].map((n) => [n.name, n.kubeletVersion, n.controlPlaneVersion])).toEqual([
      ['cp-1', 'v1.30.4', 'v1.30.4'], ['cp-2', 'v1.30.4', 'v1.30.4'], ['cp-3', 'v1.30.4', 'v1.30.4'], ['worker-1', 'v1.30.4', expect.anything()], ['worker-2', 'v1.30.4', expect.anything()],
    ])
  }, 300_000)
})
