import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bootstrapTokens } from '../../src/lab/fleet/bootstrap-tokens.js'
import { cliKillable, etcdSimMembers, events, nodeFile, startKubeadmRebuildLab, type ExecLab } from './helpers.js'

/**
 * The kubeadm control-plane rebuild (rebuild-kubeadm-control-plane.e2e.test.ts) killed at its most exposed moment
 * (issue 11: crash-safe resume): `kubeadm reset -f` has taken the second control-plane node out of the stacked etcd,
 * and it has not joined again, so the cluster runs on two members of two. `kupgrade resume` must finish that rebuild
 * without resetting the node a second time, make the certificate key and token itself (the join had not begun, and a
 * secret is never journaled), and leave the cluster exactly as the uninterrupted run does: three members, the node's static pods at
 * the cluster's version and its kubelet at the old one; key and token shown by neither process.
 * The CLI runs from dist (npm run build first): SIGKILL must hit a real process.
 */
const SECRETS = { 'a certificate key': /[0-9a-f]{64}/, 'a bootstrap token': /\b[a-z0-9]{6}\.[a-z0-9]{16}\b/ }

describe('resume after a kill during the rebuild of a kubeadm control-plane node (three, stacked etcd)', () => {
  let l: ExecLab
  const file = (node: string, rel: string) => nodeFile(l, 'kh', node, rel)
  const members = () => etcdSimMembers(l, 'kh')
  beforeAll(async () => {
    l = await startKubeadmRebuildLab('127.0.157')
  }, 60_000)
  afterAll(async () => l?.stop())

  it('killed after the reset (out of etcd, not joined), resume joins the node again and fails as the run would have', async () => {
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'kh', node: 'kh-cp-2' }
    const runs = join(l.dir, '.kupgrade', 'runs')
    const rebuildStep = (e: any, action: string) => e.step?.node === 'kh-cp-2' && /\/rebuild\//.test(e.step.id) && e.step.action === action
    l.lab.setFault(fault, true)
    // The cause is fixed before the resume, as an operator would: what is left to prove is the rebuild's, not the fault's.
    const first = await cliKillable(l, ['apply', l.plan, '--output', 'json'], (e) => (e.type === 'step-done' && rebuildStep(e, 'reset-node') ? 0 : undefined))
      .finally(() => l.lab.setFault(fault, false))
    expect(first.killed, `${first.err}\n${first.out.slice(-3000)}`).toBe(true)
    const ev1 = events(first.out)
    expect(ev1.find((e) => e.type === 'rebuild-started')).toMatchObject({ cluster: 'kh', node: 'kh-cp-2', hop: 1 })
    // Killed where intended: the reset finished (the node left etcd), nothing after it did.
    expect(ev1.filter((e) => e.type === 'step-done' && /\/rebuild\//.test(e.step.id)).map((e) => e.step.action)).toEqual(['reset-node'])
    expect(members()).toEqual(['kh-cp-1', 'kh-cp-3'])
    const [dir] = readdirSync(runs).filter((d) => existsSync(join(runs, d, 'journal.jsonl')))
    const tokens = () => bootstrapTokens(l.lab.clusters.get('kh')!.model).map((t) => `${t.id}.${t.secret}`)
    const tokensBefore = new Set(tokens())

    const resumed = await cliKillable(l, ['resume', join(runs, dir!), '--output', 'json'])
    expect(resumed.code, `${resumed.err}\n${resumed.out.slice(-4000)}`).toBe(1)
    const ev = events(resumed.out)
    expect(ev.find((e) => e.type === 'rebuild-started')).toMatchObject({ cluster: 'kh', node: 'kh-cp-2', hop: 1 })
    expect(ev.find((e) => e.type === 'node-failed' && e.node === 'kh-cp-2').error).toMatch(/\(the run stopped during its rebuild: finishing it\)$/)
    // The journal says the reset is done, so it is not run again; the delete (the kill cut it short or came before it)
    // runs from its start, and so does every step after it, in the rebuild's order.
    const started = ev.filter((e) => e.type === 'step-started' && /\/rebuild\//.test(e.step.id)).map((e) => e.step.action)
    expect(started).toEqual(['delete-node', 'unhold-packages', 'downgrade-packages', 'hold-packages', 'join-node', 'wait-ready', 'uncordon'])
    const done = ev.filter((e) => e.type === 'step-done' && /\/rebuild\//.test(e.step.id))
    expect(done.map((e) => e.step.action), JSON.stringify(ev.filter((e) => /failed/.test(e.type)))).toEqual(started)
    // Key and token come from a peer control-plane node at this process's join: nothing of the killed one is needed.
    expect(done.find((e) => e.step.action === 'join-node').evidence.join('\n')).toContain('(on the peer control plane node)')
    expect(ev.some((e) => e.type === 'rebuild-done')).toBe(true)
    // No other node is touched: the rebuild spends the run's one failed node (maxFailedNodes: 1), so the run ends there.
    expect(ev.filter((e) => e.type === 'step-started' && e.step.node !== undefined && e.step.node !== 'kh-cp-2').map((e) => e.step.id)).toEqual([])
    expect(ev.at(-1)).toMatchObject({ type: 'run-finished', outcome: 'failed', exitCode: 1 })

    // Neither process showed the certificate key or a bootstrap token, nor did the run's journal keep one (its header's
    // planSha256 is the one 64-hex string it may hold).
    const [header, ...entries] = readFileSync(join(runs, dir!, 'journal.jsonl'), 'utf8').trim().split('\n')
    expect(JSON.parse(header!).planSha256).toMatch(/^[0-9a-f]{64}$/)
    for (const [what, re] of Object.entries(SECRETS)) {
      expect(first.out + first.err, `${what} in the killed run's output`).not.toMatch(re)
      expect(resumed.out + resumed.err, `${what} in the resumed run's output`).not.toMatch(re)
      expect(entries.join('\n'), `${what} in the journal`).not.toMatch(re)
    }
    // The tokens this resume had made on the peer (upload-certs' own, and the join's): fresh ones, shown nowhere.
    const made = tokens().filter((t) => !tokensBefore.has(t))
    expect(made).toHaveLength(2)
    for (const t of made) expect([first.out, first.err, resumed.out, resumed.err, header, ...entries].some((x) => x!.includes(t))).toBe(false)
    const journal = entries.map((x) => JSON.parse(x))
    // The journal: one rebuild over two processes, its reset run once; the node's forward steps journaled undone only
    // at its end, so a later resume upgrades the rebuilt node again.
    const states = (id: string) => journal.filter((e) => e.step === id).map((e) => `${e.state}#${e.attempt}`)
    expect(states('kh/kh-cp-2/hop1/rebuild')).toEqual(['started#1', 'started#2', 'done#2'])
    expect(states('kh/kh/hop1/kh-cp-2/rebuild/1-reset-node')).toEqual(['started#1', 'done#1'])
    expect(states('kh/kh/hop1/kh-cp-2/upgrade-control-plane')).toEqual(['started#1', 'done#1', 'undone#1'])

    // The machines as after the uninterrupted run.
    expect(members()).toEqual(['kh-cp-1', 'kh-cp-2', 'kh-cp-3'])
    expect(file('kh-cp-2', 'etc/kubernetes/manifests/kube-apiserver.yaml')).toContain('image: registry.k8s.io/kube-apiserver:v1.30.4')
    expect(file('kh-cp-2', 'etc/kubernetes/manifests/etcd.yaml')).toContain('--initial-cluster-state=existing')
    expect(file('kh-cp-2', 'lab/state/apt-holds').trim().split('\n').sort()).toEqual(['kubeadm', 'kubectl', 'kubelet'])
    expect(file('kh-cp-2', 'etc/kubernetes/pki/ca.key')).toBe(file('kh-cp-1', 'etc/kubernetes/pki/ca.key'))
    const versions = Object.fromEntries(l.lab.status().clusters[0]!.nodes.map((n) => [n.name, n.version]))
    expect(versions).toEqual({ 'kh-cp-1': 'v1.30.4', 'kh-cp-2': 'v1.29.6', 'kh-cp-3': 'v1.29.6', 'kh-w-1': 'v1.29.6', 'kh-w-2': 'v1.29.6' })
    const node = l.lab.clusters.get('kh')!.model.nodes.get('kh-cp-2')!
    expect([node.isNode, node.unschedulable]).toEqual([true, false])
  }, 420_000)
})
