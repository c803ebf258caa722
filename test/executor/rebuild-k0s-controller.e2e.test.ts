import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { downloadFailsMidRun, events, recoverOnFailure, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * onFailure: rebuild of a k0s controller of three (issue 11 item 3), on the lab that refuses what k0s refuses
 * (test/lab/k0s-controller-rejoin.test.ts): the second controller — a plain controller, no kubelet, no Node — fails to
 * download its new release; it is taken out of etcd through another controller (`k0s etcd leave --peer-address`, else
 * its rejoin is refused: "Peer URLs already exists"), reset, its kept unit put back, and it rejoins at the old version
 * with a controller token made on another controller: the member list names it again, k0s runs it at the old
 * version, its PKI is the cluster's; the token never shows; no Node is waited for (it has none); the other controllers
 * and the worker are untouched (maxFailedNodes: 1).
 */
describe('apply: onFailure rebuild of a k0s controller (three controllers, no kubelet)', () => {
  let l: ExecLab
  const root = (node: string) => join(l.dir, 'nodes', 'kc', node)
  const members = () => readdirSync(join(l.dir, 'etcd-sim', 'kc', 'k0s-members')).sort()
  beforeAll(async () => {
    l = await startExecLab(topology('127.0.153', [{ name: 'kc', distribution: 'k0s', controlPlanes: 3, workers: 2 }]))
    await l.editPlan(recoverOnFailure('rebuild', 1))
    await l.editPlan(downloadFailsMidRun)
  }, 60_000)
  afterAll(async () => l?.stop())

  it('plan shows the rebuild of every controller: etcd leave through another, reset, rejoin with a controller token', async () => {
    const r = await l.cli(['plan', l.plan])
    expect(r.code, r.err).toBe(0)
    expect(r.out).toMatch(/rebuild on failure \(hop 1\) of kc-cp-1, kc-cp-2, kc-cp-3: k0s etcd leave --peer-address <its member's address> on another controller, k0s stop && k0s reset/)
    expect(r.out).not.toContain('not automatic for a k0s controller')
  })

  it('the second controller, whose download failed, leaves etcd, is reset and rejoins at the old version', async () => {
    const fault = { fault: 'upgrade-command-fails' as const, cluster: 'kc', node: 'kc-cp-2' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    const failed = ev.find((e) => e.type === 'step-failed' && e.step.node === 'kc-cp-2')
    expect(failed.step.action).toBe('replace-binary')
    const started = ev.findIndex((e) => e.type === 'rebuild-started')
    expect(ev[started]).toMatchObject({ cluster: 'kc', node: 'kc-cp-2', hop: 1 })
    const done = ev.slice(started).filter((e) => e.type === 'step-done' && /\/rebuild\//.test(e.step.id))
    // No Node to wait for or uncordon: a controller without --enable-worker has none.
    expect(done.map((e) => e.step.action), JSON.stringify(ev.slice(started).filter((e) => /failed/.test(e.type)))).toEqual(['leave-etcd', 'reset-node', 'delete-node', 'restore-files', 'replace-binary', 'join-node'])
    const leave = done.find((e) => e.step.action === 'leave-etcd')
    expect(leave.evidence.join('\n')).toContain('k0s etcd member-list (on the peer control plane node)')
    expect(done.find((e) => e.step.action === 'join-node').evidence.join('\n')).toContain('ran: k0s token create --role=controller --expiry=1h (on the peer control plane node)')
    // The token never shows.
    expect(r.out + r.err).not.toMatch(/H4sI[A-Za-z0-9+/]{40,}/)
    const gates = ev.filter((e) => e.type === 'gate-result' && e.during === 'rollback')
    expect(gates.length).toBeGreaterThan(0)
    expect(gates.every((e) => e.status === 'pass' || e.status === 'warn'), JSON.stringify(gates.map((e) => [e.gate, e.status, e.summary]))).toBe(true)
    expect(ev.some((e) => e.type === 'rebuild-done')).toBe(true)
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })

    // On the machines: a member again, at the old version, with the cluster's PKI; the unit given a token file.
    expect(members()).toEqual(['kc-cp-1', 'kc-cp-2', 'kc-cp-3'])
    const st = l.lab.clusters.get('kc')!.nodes.get('kc-cp-2')!.getState()
    expect([st.installedVersion, st.runningVersion, st.serviceActive]).toEqual(['v1.29.6+k0s.0', 'v1.29.6+k0s.0', true])
    expect(readFileSync(join(root('kc-cp-2'), 'var/lib/k0s/pki/lab-cluster-id'), 'utf8')).toBe(readFileSync(join(root('kc-cp-1'), 'var/lib/k0s/pki/lab-cluster-id'), 'utf8'))
    expect(existsSync(join(root('kc-cp-2'), 'var/lib/k0s/pki/ca.crt'))).toBe(true)
    expect(readFileSync(join(root('kc-cp-2'), 'etc/systemd/system/k0scontroller.service'), 'utf8')).toMatch(/^ExecStart=.* --token-file=\/etc\/k0s\/k0stoken/m)
    const versions = Object.fromEntries(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version]))
    expect(versions).toEqual({ 'kc-cp-1': 'v1.30.4+k0s', 'kc-cp-2': 'v1.29.6+k0s', 'kc-cp-3': 'v1.29.6+k0s', 'kc-w-1': 'v1.29.6+k0s', 'kc-w-2': 'v1.29.6+k0s' })
  }, 300_000)
})

