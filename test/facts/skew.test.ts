import { describe, expect, it } from 'vitest'
import { toPlannerFacts } from '../../src/facts/live.js'
import { fromDisagreement, nodeSkew } from '../../src/facts/skew.js'
import { skewStateFromFacts } from '../../src/gates/skew/from-facts.js'
import { evaluateSkew } from '../../src/gates/skew/policy.js'
import type { ClusterFacts, NodeFacts } from '../../src/facts/types.js'

const cluster = (apiservers: string[], dist: ClusterFacts['distribution'] = 'kubeadm', from = 'v1.29.2'): ClusterFacts => ({
  name: 'c', distribution: dist, from, nodes: [], unlistedNodes: [],
  apiserverVersions: apiservers.map((v, i) => ({ version: v, source: i === 0 ? '/version' : 'kube-apiserver pod' })),
})
const node = (kubelet?: string, proxy?: string): NodeFacts => ({
  name: 'n', role: 'worker', host: 'h', inApi: true, roles: [], disk: [], services: {}, kubeProxySource: 'daemonset-pod',
  ...(kubelet ? { kubeletVersion: kubelet } : {}), ...(proxy ? { kubeProxyVersion: proxy } : {}),
})
const shorts = (c: ClusterFacts, n: NodeFacts) => nodeSkew(c, n).map((m) => `${m.severity}:${m.short}`)

describe('facts/skew (version-skew policy)', () => {
  it('accepts kubelet up to 2 behind, warns at 3, fails at 4', () => {
    const c = cluster(['v1.30.4'])
    expect(shorts(c, node('v1.28.1', 'v1.28.1'))).toEqual([])
    expect(shorts(c, node('v1.27.1'))).toEqual(['warning:kubelet -3'])
    expect(shorts(c, node('v1.26.1'))).toEqual(['error:kubelet -4'])
  })

  it('allows only 2 behind for components older than 1.25', () => {
    expect(shorts(cluster(['v1.26.0']), node('v1.24.3'))).toEqual(['warning:kubelet -2'])
    expect(shorts(cluster(['v1.27.0']), node('v1.24.3'))).toEqual(['error:kubelet -3'])
  })

  it('narrows the range with mixed HA apiservers: never newer than the oldest', () => {
    const c = cluster(['v1.31.0', 'v1.30.2'])
    expect(shorts(c, node('v1.31.0'))).toEqual(['error:kubelet>apiserver'])
    expect(shorts(c, node('v1.30.1'))).toEqual([])
  })

  it('compares k3s revisions numerically, so +k3s10 is not older than +k3s2', () => {
    expect(shorts(cluster(['v1.29.2+k3s10'], 'k3s'), node('v1.29.2+k3s2', 'v1.29.2+k3s2'))).toEqual([])
  })

  it('keeps kube-proxy within ±3 of kubelet; k0s requires the same minor', () => {
    expect(shorts(cluster(['v1.30.0']), node('v1.30.0', 'v1.27.0'))).toEqual(['warning:proxy -3'])
    expect(shorts(cluster(['v1.30.0'], 'k0s'), node('v1.30.0+k0s', 'v1.29.0'))).toEqual(['error:proxy≠kubelet'])
  })

  it('judges as the version-skew gate does: a kubeadm control-plane kubelet against its own apiserver mid-upgrade', () => {
    // kubeadm's own order: cp-1's apiserver and kubelet moved, cp-3's apiserver not yet. The table said
    // `kubelet>apiserver` on cp-1 while the gate passed the same facts.
    const c: ClusterFacts = {
      ...cluster(['v1.30.4']),
      apiserverVersions: [{ version: 'v1.30.4', source: '/version' }, { version: 'v1.30.4', source: 'kube-apiserver pod', node: 'cp-1' }, { version: 'v1.29.6', source: 'kube-apiserver pod', node: 'cp-3' }],
    }
    const cp1: NodeFacts = { ...node('v1.30.4', 'v1.29.6'), name: 'cp-1', role: 'control-plane' }
    const w1: NodeFacts = { ...node('v1.30.4', 'v1.29.6'), name: 'w-1' }
    c.nodes = [cp1, w1]
    expect(shorts(c, cp1)).toEqual([])
    // A worker's kubelet reaches any apiserver through the endpoint: newer than cp-3's is out of policy.
    expect(shorts(c, w1)).toEqual(['error:kubelet>apiserver'])
    expect(nodeSkew(c, w1)[0]!.message).toBe(evaluateSkew(skewStateFromFacts(c)).find((v) => v.node === 'w-1')!.message)
  })

  it('says when the plan’s from disagrees with the live apiserver: same, part-way to the target, or a mismatch', () => {
    const withTarget = (c: ClusterFacts, target: string): ClusterFacts => ({ ...c, target })
    expect(fromDisagreement(cluster(['v1.29.2'], 'kubeadm', 'v1.29.2'))?.kind).toBe('same')
    expect(fromDisagreement(cluster(['v1.29.2+k3s1'], 'k3s', 'v1.29.2'))?.kind).toBe('same')
    expect(fromDisagreement(cluster(['v1.29.2+k3s2'], 'k3s', 'v1.29.2+k3s1'))).toMatchObject({ kind: 'mismatch', message: expect.stringMatching(/from v1.29.2\+k3s1, but the API servers report v1.29.2\+k3s2/) })
    expect(fromDisagreement(withTarget(cluster(['v1.30.4', 'v1.29.2'], 'kubeadm', 'v1.29.2'), 'v1.30.4'))?.kind).toBe('partial')
    // Finished: no upgrade under way, nothing to warn of (the demo's staging after its run said "an upgrade already
    // under way"). Not while a node's kubelet still lags the apiservers.
    const done = withTarget(cluster(['v1.30.4+k3s1'], 'k3s', 'v1.29.2+k3s1'), 'v1.30.4')
    done.nodes = [{ ...node('v1.30.4+k3s1'), name: 'a' }]
    expect(fromDisagreement(done)).toEqual({ kind: 'at-target', message: 'cluster c already runs the target (v1.30.4+k3s1; the plan says from v1.29.2+k3s1)' })
    done.nodes.push({ ...node('v1.29.2+k3s1'), name: 'b' })
    expect(fromDisagreement(done)?.kind).toBe('partial')
    expect(fromDisagreement(withTarget(cluster(['v1.28.9'], 'kubeadm', 'v1.29.2'), 'v1.30.4'))).toMatchObject({ kind: 'mismatch', message: expect.stringMatching(/allowFromMismatch/) })
    expect(fromDisagreement(withTarget(cluster(['v1.31.0'], 'kubeadm', 'v1.29.2'), 'v1.30.4'))?.kind).toBe('mismatch')
  })
})

describe('facts/live → planner facts', () => {
  it('passes running kubelet and installed versions per cluster and node; unknown nodes stay undefined', () => {
    const c = cluster(['v1.30.4+k0s'], 'k0s')
    c.nodes = [
      { ...node('v1.30.4+k0s'), name: 'a', installedVersion: 'v1.30.4+k0s.1' },
      { ...node(), name: 'b' },
      { ...node(), name: 'd', packageManager: 'dnf' },
      { ...node(), name: 'e', packageManager: 'unknown' },
    ]
    expect(toPlannerFacts({ gatheredAt: '', durationMs: 0, clusters: [c] })).toEqual({
      clusters: { c: { nodes: { a: { kubeletVersion: 'v1.30.4+k0s', installedVersion: 'v1.30.4+k0s.1' }, b: undefined, d: { packageManager: 'dnf' }, e: undefined } } },
    })
  })
})
