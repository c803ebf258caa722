import { describe, expect, it } from 'vitest'
import type { ClusterFacts } from '../../../src/facts/types.js'
import { upgradePathGate } from '../../../src/gates/checks/upgrade-path.js'
import type { GateContext } from '../../../src/gates/types.js'
import { SHIPPED_RELEASES } from '../../../src/plan/releases.js'
import type { KubectlClient } from '../../../src/transport/kubectl/client.js'
import type { Transport } from '../../../src/transport/types.js'
import { systemPod } from '../../facts/helpers/fake-fleet.js'

const noSsh = {} as Transport
const kubectl = (version: string, pods: ReturnType<typeof systemPod>[] = [], fail?: string) =>
  ({
    version: async () => {
      if (fail) throw new Error(fail)
      return { major: '1', minor: '30', gitVersion: version }
    },
    nodes: async () => ({ items: [] }),
    pods: async () => ({ items: pods }),
  }) as unknown as KubectlClient

function ctx(dist: GateContext['distribution'], k: KubectlClient, o: Partial<GateContext> = {}): GateContext {
  return { cluster: 'prod', distribution: dist, scope: 'cluster', nodes: [], ssh: noSsh, kubectl: k, now: () => new Date(0), ...o }
}
const facts = (dist: ClusterFacts['distribution'], from: string, target: string, versions: [string, string?][]): ClusterFacts => ({
  name: 'prod', distribution: dist, from, target, nodes: [], unlistedNodes: [],
  apiserverVersions: versions.map(([version, node]) => ({ version, source: node ? 'kube-apiserver pod' : '/version', ...(node ? { node } : {}) })),
})

describe('upgrade-path gate', () => {
  it('passes one minor up to a released version, showing the path', async () => {
    const r = await upgradePathGate.check(ctx('kubeadm', kubectl('v1.29.6'), { expectedVersion: 'v1.30.4' }), {})
    expect(r).toMatchObject({ status: 'pass', incident: 'kubelet-kube-proxy-skew' })
    expect(r.evidence).toContainEqual({ source: 'path', observed: 'v1.29.6 → v1.30.4' })
  })

  it('two minors up: the path goes through the latest patch of the skipped minor from the release list', async () => {
    const r = await upgradePathGate.check(ctx('k3s', kubectl('v1.28.9+k3s1'), { expectedVersion: 'v1.30.4' }), {})
    expect(r.status).toBe('pass')
    expect(r.evidence).toContainEqual({ source: 'path', observed: `v1.28.9+k3s1 → ${SHIPPED_RELEASES.latest.k3s['1.29']} → v1.30.4+k3s1` })
  })

  it('fails a downgrade, naming both versions', async () => {
    const r = await upgradePathGate.check(ctx('kubeadm', kubectl('v1.30.4'), { expectedVersion: 'v1.29.9' }), {})
    expect(r.status).toBe('fail')
    expect(r.summary).toBe('downgrade: kube-apiserver runs v1.30.4, newer than the target v1.29.9; downgrades are not supported')
  })

  it('fails when an apiserver is a minor older than the plan\'s from: the first hop would skip a minor', async () => {
    const f = facts('kubeadm', 'v1.29.6', 'v1.31.2', [['v1.29.6'], ['v1.29.6', 'cp-1'], ['v1.28.15', 'cp-2']])
    const r = await upgradePathGate.check(ctx('kubeadm', kubectl('unused', [], 'facts were given'), { facts: f }), {})
    expect(r.status).toBe('fail')
    expect(r.summary).toBe("kube-apiserver runs v1.28.15, a minor older than the plan's from v1.29.6: its first hop would skip 1.29")
  })

  it('fails a path through a minor no release list knows', async () => {
    const r = await upgradePathGate.check(ctx('k0s', kubectl('v1.36.3+k0s'), { expectedVersion: 'v1.38.1' }), {})
    expect(r.status).toBe('fail')
    expect(r.summary).toContain('skips minor 1.37, and the release list')
  })

  it('warns on a target its distribution never released, though upstream did (k0s skipped 1.33.5)', async () => {
    const r = await upgradePathGate.check(ctx('k0s', kubectl('v1.32.13+k0s'), { expectedVersion: 'v1.33.5' }), {})
    expect(r.status).toBe('warn')
    expect(r.summary).toBe('k0s v1.33.5+k0s.0 is not a known release: k0s never released 1.33.5 (the release list (refreshed 2026-12-01) knows k0s 1.33 up to v1.33.13+k0s.1)')
  })

  it('warns (never passes silently) on a target the release list does not know', async () => {
    const r = await upgradePathGate.check(ctx('kubeadm', kubectl('v1.34.1'), { expectedVersion: 'v1.34.99' }), {})
    expect(r.status).toBe('warn')
    expect(r.summary).toContain('kubeadm v1.34.99 is not a known release')
  })

  it('unknown when the API cannot be read; pass with nothing to do when there is no Kubernetes target', async () => {
    expect((await upgradePathGate.check(ctx('kubeadm', kubectl('', [], 'connection refused'), { expectedVersion: 'v1.30.4' }), {})).status).toBe('unknown')
    expect((await upgradePathGate.check(ctx('kubeadm', kubectl('garbage'), { expectedVersion: 'v1.30.4' }), {})).status).toBe('unknown')
    expect((await upgradePathGate.check(ctx('kubeadm', kubectl('v1.30.4')), {})).status).toBe('pass')
  })
})
