import { describe, expect, it } from 'vitest'
import { parsePlan } from '../../src/plan/load.js'
import { buildExecutionPlan } from '../../src/planner/build.js'
import { renderPlanText } from '../../src/report/plan-text.js'

/** onFailure: rebuild is planned up front, per node and hop, so `plan` shows what a rebuild would run (issue 11). */
function build(dist: 'k3s' | 'k0s' | 'kubeadm', from: string, onFailure: string, install?: Record<string, string>, controlPlanes = 1, rebuild?: Record<string, unknown>) {
  const cps = Array.from({ length: controlPlanes }, (_, i) => ({ name: i === 0 ? 'cp' : `cp${i + 1}`, host: `10.0.1.${i + 2}`, role: 'control-plane' }))
  const source = JSON.stringify({
    apiVersion: 'kupgrade.dev/v1alpha1', kind: 'UpgradePlan', metadata: { name: 'rebuild' },
    spec: {
      target: { kubernetes: 'v1.31.2' }, strategy: { onFailure, ...(rebuild ? { rebuild } : {}) }, stages: [{ name: 's', clusters: ['c'] }],
      clusters: [{ name: 'c', distribution: dist, from, apiEndpoint: 'https://10.0.0.1:6443', ...(install ? { install } : {}), nodes: [
        ...cps, { name: 'w1', host: '10.0.0.3', role: 'worker' }, { name: 'w2', host: '10.0.0.4', role: 'worker' },
      ] }],
    },
  })
  const r = parsePlan('rebuild.yaml', source)
  if (!r.plan) throw new Error(r.problems.map((p) => p.message).join('\n'))
  return buildExecutionPlan(r.plan, {})
}

describe('planning onFailure: rebuild', () => {
  it('other policies plan no rebuild', () => {
    for (const how of ['rollback', 'pause', 'abort']) expect(build('k3s', 'v1.29.6+k3s1', how).stages[0]!.clusters[0]!.rebuild).toBeUndefined()
  })

  it('k3s: every agent of every hop gets an automatic rebuild to the version it ran before that hop; a server does not', () => {
    const c = build('k3s', 'v1.29.6+k3s1', 'rebuild').stages[0]!.clusters[0]!
    expect(c.hops.map((h) => h.from)).toEqual(['v1.29.6+k3s1', 'v1.30.14+k3s2'])
    expect(c.rebuild!.map((r) => [r.node, r.hop, r.automatic])).toEqual([
      ['cp', 1, false], ['w1', 1, true], ['w2', 1, true], ['cp', 2, false], ['w1', 2, true], ['w2', 2, true],
    ])
    const w1hop2 = c.rebuild!.find((r) => r.node === 'w1' && r.hop === 2)!
    if (!w1hop2.automatic) throw new Error('w1 must be automatic')
    expect(w1hop2.steps.map((s) => [s.action, s.node, s.hop])).toEqual([
      ['reset-node', 'w1', 2], ['delete-node', 'w1', 2], ['restore-files', 'w1', 2], ['replace-binary', 'w1', 2], ['restart', 'w1', 2], ['wait-ready', 'w1', 2], ['uncordon', 'w1', 2],
    ])
    // Back to the version before hop 2, with the agent's own unit and token from that hop's backup.
    const params = Object.fromEntries(w1hop2.steps.map((s) => [s.action, s.params as Record<string, unknown>]))
    expect(params['replace-binary']).toMatchObject({ release: 'v1.30.14+k3s2', kept: '/var/lib/kupgrade/backup/v1.30.14+k3s2', service: 'k3s-agent' })
    expect(params['restore-files']).toEqual({ dir: '/var/lib/kupgrade/backup/v1.30.14+k3s2', paths: ['/etc/systemd/system/k3s-agent.service', '/etc/systemd/system/k3s-agent.service.env'] })
    expect(params['wait-ready']).toMatchObject({ kubelet: 'v1.30.14+k3s2' })
    // The reinstall is the one the forward step of that hop backed up for: same backup directory.
    const forward = c.steps.find((s) => s.action === 'backup-files' && s.node === 'w1' && s.hop === 2)!
    expect((forward.params as { dir: string }).dir).toBe(params['restore-files']!.dir)
    expect(w1hop2.steps.find((s) => s.action === 'reset-node')!.title).toMatch(/^\/usr\/local\/bin\/k3s-agent-uninstall\.sh /)
  })

  it('rebuild step ids are unique, never ids of the forward steps, and the forward steps are the same as without rebuild', () => {
    const rebuild = build('k3s', 'v1.29.6+k3s1', 'rebuild')
    const pause = build('k3s', 'v1.29.6+k3s1', 'pause')
    const c = rebuild.stages[0]!.clusters[0]!
    const ids = c.rebuild!.flatMap((r) => (r.automatic ? r.steps.map((s) => s.id) : []))
    expect(new Set(ids).size).toBe(ids.length)
    const forward = new Set(c.steps.map((s) => s.id))
    expect(ids.filter((id) => forward.has(id))).toEqual([])
    expect(c.steps.map((s) => s.id)).toEqual(pause.stages[0]!.clusters[0]!.steps.map((s) => s.id))
  })

  it('a mirror install rebuilds from the mirror at the old release', () => {
    const c = build('k3s', 'v1.29.6+k3s1', 'rebuild', { mirror: 'https://mirror.example/k3s' }).stages[0]!.clusters[0]!
    const w1 = c.rebuild!.find((r) => r.node === 'w1' && r.hop === 1)!
    if (!w1.automatic) throw new Error('w1 must be automatic')
    expect(w1.steps.find((s) => s.action === 'replace-binary')!.title).toMatch(/^install k3s v1\.29\.6\+k3s1 from https:\/\/mirror\.example\/k3s\/v1\.29\.6%2Bk3s1\/: the binary for the node's architecture /)
  })

  it('k0s and kubeadm workers: reset, Node deleted, the old version back, joined with a fresh token; control planes not automatic', () => {
    const k0s = build('k0s', 'v1.30.4+k0s.0', 'rebuild').stages[0]!.clusters[0]!
    const kubeadm = build('kubeadm', 'v1.30.4', 'rebuild').stages[0]!.clusters[0]!
    for (const c of [k0s, kubeadm]) {
      expect(c.rebuild!.filter((r) => r.node === 'cp').every((r) => !r.automatic && /not automatic/.test(r.detail))).toBe(true)
    }
    const k0w = k0s.rebuild!.find((r) => r.node === 'w1' && r.hop === 1)!
    const kaw = kubeadm.rebuild!.find((r) => r.node === 'w1' && r.hop === 1)!
    if (!k0w.automatic || !kaw.automatic) throw new Error('workers must be automatic')
    expect(k0w.steps.map((s) => s.action)).toEqual(['reset-node', 'delete-node', 'restore-files', 'replace-binary', 'join-node', 'wait-ready', 'uncordon'])
    expect(k0w.steps.map((s) => s.params)).toContainEqual({ dir: '/var/lib/kupgrade/backup/v1.30.4+k0s.0', paths: ['/etc/systemd/system/k0sworker.service'] })
    // k0s: at the hop's target, the controllers' version (their kube-proxy DaemonSet needs the worker at their minor).
    const target = k0s.hops[0]!.to
    expect(k0w.steps.find((s) => s.action === 'replace-binary')!.params).toMatchObject({ release: target.release })
    expect(k0w.steps.find((s) => s.action === 'join-node')!.params).toEqual({ kind: 'k0s', service: 'k0sworker', release: target.release })
    expect(k0w.steps.find((s) => s.action === 'wait-ready')!.params).toMatchObject({ kubelet: target.kubelet })
    // The forward backup keeps what the rebuild restores.
    expect(k0s.steps.find((s) => s.action === 'backup-files' && s.node === 'w1')!.params).toMatchObject({ paths: ['/usr/local/bin/k0s', '/etc/systemd/system/k0sworker.service'] })
    expect(kaw.steps.map((s) => s.action)).toEqual(['reset-node', 'delete-node', 'unhold-packages', 'downgrade-packages', 'hold-packages', 'join-node', 'wait-ready', 'uncordon'])
    expect(kaw.steps.find((s) => s.action === 'downgrade-packages')!.params).toEqual({ packages: ['kubeadm', 'kubelet', 'kubectl'], version: 'v1.30.4', minor: 'v1.30' })
    expect(kaw.steps.map((s) => s.title)).toEqual(expect.arrayContaining(['kubeadm reset -f', 'kubeadm token create --print-join-command --ttl 15m on the first control-plane node, then that kubeadm join on the node']))
  })

  it('kubeadm control plane: one or two nodes not automatic; of three, each reset, its old packages, a control-plane join made on another', () => {
    const one = build('kubeadm', 'v1.30.4', 'rebuild').stages[0]!.clusters[0]!
    expect(one.rebuild!.find((r) => r.node === 'cp')!.detail).toMatch(/^not automatic for the only kubeadm control-plane node: restore it/)
    const two = build('kubeadm', 'v1.30.4', 'rebuild', undefined, 2).stages[0]!.clusters[0]!
    expect(two.rebuild!.filter((r) => r.node.startsWith('cp')).every((r) => !r.automatic && /^not automatic for a kubeadm control plane of two/.test(r.detail))).toBe(true)
    const three = build('kubeadm', 'v1.30.4', 'rebuild', undefined, 3).stages[0]!.clusters[0]!
    for (const node of ['cp', 'cp2', 'cp3']) {
      const r = three.rebuild!.find((x) => x.node === node && x.hop === 1)!
      if (!r.automatic) throw new Error(`${node} must be automatic`)
      expect(r.steps.map((s) => s.action)).toEqual(['reset-node', 'delete-node', 'unhold-packages', 'downgrade-packages', 'hold-packages', 'join-node', 'wait-ready', 'uncordon'])
      expect(r.steps.find((s) => s.action === 'join-node')!.params).toEqual({ kind: 'kubeadm-control-plane' })
      expect(r.steps.find((s) => s.action === 'downgrade-packages')!.params).toEqual({ packages: ['kubeadm', 'kubelet', 'kubectl'], version: 'v1.30.4', minor: 'v1.30' })
      expect(r.steps.find((s) => s.action === 'wait-ready')!.params).toMatchObject({ kubelet: 'v1.30.4' })
      expect(r.steps.find((s) => s.action === 'join-node')!.title).toBe('kubeadm init phase upload-certs --upload-certs and kubeadm token create --print-join-command --ttl 15m --certificate-key <key> on another control-plane node, then that kubeadm join --control-plane on the node')
    }
  })

  it('strategy.rebuild.version: target reinstalls k3s and kubeadm workers at the hop\'s target; control planes and k0s workers as before', () => {
    const k3s = build('k3s', 'v1.29.6+k3s1', 'rebuild', undefined, 3, { version: 'target' }).stages[0]!.clusters[0]!
    for (const hop of [1, 2]) {
      const w = k3s.rebuild!.find((r) => r.node === 'w1' && r.hop === hop)!
      if (!w.automatic) throw new Error('w1 must be automatic')
      const to = k3s.hops[hop - 1]!.to
      expect(w.steps.find((x) => x.action === 'replace-binary')!.params).toMatchObject({ release: to.release, kept: `/var/lib/kupgrade/backup/${k3s.hops[hop - 1]!.from}` })
      expect(w.steps.find((x) => x.action === 'wait-ready')!.params).toMatchObject({ kubelet: to.kubelet })
      expect(w.detail).toContain(`k3s ${to.release} installed (the hop's target: strategy.rebuild.version)`)
    }
    // A server still rejoins at the version it ran before: a member joins at its peers' version.
    const server = k3s.rebuild!.find((r) => r.node === 'cp2' && r.hop === 1)!
    if (!server.automatic) throw new Error('cp2 must be automatic')
    expect(server.steps.find((x) => x.action === 'replace-binary')!.params).toMatchObject({ release: 'v1.29.6+k3s1' })

    const kubeadm = build('kubeadm', 'v1.30.4', 'rebuild', undefined, 3, { version: 'target' }).stages[0]!.clusters[0]!
    const w = kubeadm.rebuild!.find((r) => r.node === 'w1' && r.hop === 1)!
    if (!w.automatic) throw new Error('w1 must be automatic')
    expect(w.steps.map((x) => x.action)).toEqual(['reset-node', 'delete-node', 'switch-repo', 'unhold-packages', 'upgrade-package', 'hold-packages', 'join-node', 'wait-ready', 'uncordon'])
    expect(w.steps.find((x) => x.action === 'switch-repo')!.params).toEqual({ minor: 'v1.31', from: 'v1.30' })
    expect(w.steps.find((x) => x.action === 'upgrade-package')!.params).toEqual({ packages: ['kubeadm', 'kubelet', 'kubectl'], version: 'v1.31.2' })
    expect(w.steps.find((x) => x.action === 'wait-ready')!.params).toMatchObject({ kubelet: 'v1.31.2' })
    const cp = kubeadm.rebuild!.find((r) => r.node === 'cp' && r.hop === 1)!
    if (!cp.automatic) throw new Error('cp must be automatic')
    expect(cp.steps.find((x) => x.action === 'downgrade-packages')!.params).toMatchObject({ version: 'v1.30.4' })

    // k0s workers were at the target already; the default stays the version before the hop.
    const k0s = (v?: string) => build('k0s', 'v1.30.4+k0s.0', 'rebuild', undefined, 1, v ? { version: v } : undefined).stages[0]!.clusters[0]!.rebuild!.find((r) => r.node === 'w1')
    expect(k0s('target')).toEqual(k0s())
    const dflt = build('k3s', 'v1.29.6+k3s1', 'rebuild').stages[0]!.clusters[0]!.rebuild!.find((r) => r.node === 'w1' && r.hop === 1)!
    if (!dflt.automatic) throw new Error('w1 must be automatic')
    expect(dflt.steps.find((x) => x.action === 'replace-binary')!.params).toMatchObject({ release: 'v1.29.6+k3s1' })
  })

  it('strategy.rebuild.version: anything else is refused with its line', () => {
    const source = ['apiVersion: kupgrade.dev/v1alpha1', 'kind: UpgradePlan', 'metadata: { name: r }', 'spec:', '  target: { kubernetes: v1.31.2 }',
      '  strategy:', '    onFailure: rebuild', '    rebuild: { version: latest }', '  stages: [{ name: s, clusters: [c] }]',
      '  clusters:', '    - { name: c, distribution: k3s, from: v1.30.4+k3s1, nodes: [{ name: cp, host: 10.0.0.2, role: control-plane }] }', ''].join('\n')
    const r = parsePlan('rebuild.yaml', source)
    expect(r.plan).toBeUndefined()
    expect(r.problems.map((p) => `${p.line}: ${p.message}`)).toContain('8: spec.strategy.rebuild.version: expected previous or target, got "latest"')
  })

  it('plan text shows each group of nodes once, with the steps as on its first node', () => {
    const text = renderPlanText(build('k3s', 'v1.29.6+k3s1', 'rebuild'), { color: false })
    expect(text).toMatch(/rebuild on failure \(hop 1\) of w1, w2: k3s-agent-uninstall\.sh/)
    expect(text).toMatch(/ {6}2\. kubectl delete node w1 --ignore-not-found --wait=true/)
    expect(text).toMatch(/rebuild on failure \(hop 2\) of cp: not automatic for a k3s server/)
  })
})
