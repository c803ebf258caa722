import { describe, expect, it } from 'vitest'
import { SHIPPED_RELEASES, type ReleaseList } from '../../src/plan/releases.js'
import { planHops, type HopResult } from '../../src/planner/hops.js'

const ok = (r: HopResult) => {
  if (!r.ok) throw new Error(`expected hops, got: ${r.message}`)
  return r.hops
}
const releases = (r: HopResult) => ok(r).map((h) => h.to.release)

describe('planHops', () => {
  it('one minor: one hop, distribution release resolved', () => {
    expect(ok(planHops('k3s', 'v1.29.2+k3s1', { kubernetes: 'v1.30.4' }))).toEqual([
      { index: 1, from: 'v1.29.2+k3s1', to: { kubernetes: 'v1.30.4', release: 'v1.30.4+k3s1', kubelet: 'v1.30.4+k3s1' }, kind: 'minor' },
    ])
    expect(releases(planHops('k0s', 'v1.29.7+k0s.0', { kubernetes: 'v1.30.4' }))).toEqual(['v1.30.4+k0s.0'])
    expect(ok(planHops('kubeadm', 'v1.29.6', { kubernetes: 'v1.30.4' }))[0]!.to.package).toBe('1.30.4-1.1')
  })

  it('a patch upgrade is one hop of kind patch', () => {
    const hops = ok(planHops('kubeadm', 'v1.30.1', { kubernetes: 'v1.30.4' }))
    expect(hops.map((h) => [h.kind, h.to.release])).toEqual([['patch', 'v1.30.4']])
  })

  it('already at the target: no hops', () => {
    expect(ok(planHops('k3s', 'v1.30.4+k3s1', { kubernetes: 'v1.30.4' }))).toEqual([])
    expect(ok(planHops('kubeadm', 'v1.30.4', { kubernetes: 'v1.30.4' }))).toEqual([])
  })

  it('no Kubernetes target (OS only): no hops', () => {
    expect(ok(planHops('k3s', 'v1.30.4+k3s1', {}))).toEqual([])
  })

  it('two minors: a hop through the via version, chained from → to', () => {
    const hops = ok(planHops('k3s', 'v1.28.9+k3s1', { kubernetes: 'v1.30.4', via: ['v1.29.8'] }))
    expect(hops.map((h) => [h.index, h.from, h.to.release, h.kind])).toEqual([
      [1, 'v1.28.9+k3s1', 'v1.29.8+k3s1', 'minor'],
      [2, 'v1.29.8+k3s1', 'v1.30.4+k3s1', 'minor'],
    ])
  })

  it('three minors through two via versions; the latest via patch of a minor wins; unrelated via ignored', () => {
    const r = planHops('kubeadm', 'v1.28.15', { kubernetes: 'v1.31.2', via: ['v1.29.1', 'v1.30.6', 'v1.29.10', 'v1.27.1', 'v1.31.0'] })
    expect(releases(r)).toEqual(['v1.29.10', 'v1.30.6', 'v1.31.2'])
  })

  it('an explicit distribution version applies to the last hop only', () => {
    const r = planHops('k3s', 'v1.28.9+k3s1', { kubernetes: 'v1.30.4', via: ['v1.29.8'], k3s: 'v1.30.4+k3s2' })
    expect(releases(r)).toEqual(['v1.29.8+k3s1', 'v1.30.4+k3s2'])
    const k = planHops('kubeadm', 'v1.29.1', { kubernetes: 'v1.30.4', kubeadm: '1.30.4-2.1' })
    expect(ok(k)[0]!.to.package).toBe('1.30.4-2.1')
  })

  it('a revision-only upgrade (+k3s2 → +k3s10, +k0s.2 → +k0s.10) is a patch hop', () => {
    expect(ok(planHops('k3s', 'v1.30.4+k3s2', { kubernetes: 'v1.30.4', k3s: 'v1.30.4+k3s10' })).map((h) => [h.kind, h.to.release])).toEqual([['patch', 'v1.30.4+k3s10']])
    expect(ok(planHops('k0s', 'v1.30.4+k0s.2', { kubernetes: 'v1.30.4', k0s: 'v1.30.4+k0s.10' })).map((h) => [h.kind, h.to.release])).toEqual([['patch', 'v1.30.4+k0s.10']])
    expect(ok(planHops('k3s', 'v1.30.4+k3s2', { kubernetes: 'v1.30.4+k3s10' })).map((h) => h.to.release)).toEqual(['v1.30.4+k3s10'])
  })

  it('refuses a revision downgrade (+k3s10 → +k3s2)', () => {
    const r = planHops('k3s', 'v1.30.4+k3s10', { kubernetes: 'v1.30.4', k3s: 'v1.30.4+k3s2' })
    expect(r).toMatchObject({ ok: false, field: 'from' })
    expect(r.ok ? '' : r.message).toMatch(/^downgrade: from v1\.30\.4\+k3s10 is newer than the target v1\.30\.4\+k3s2/)
  })

  it('refuses a downgrade', () => {
    expect(planHops('kubeadm', 'v1.30.4', { kubernetes: 'v1.29.9' })).toMatchObject({ ok: false, field: 'from' })
  })

  // A list made for the test, so refreshing the shipped one never changes these expectations.
  const LIST: ReleaseList = {
    refreshed: '2000-01-01',
    latest: {
      kubeadm: { '1.29': 'v1.29.15', '1.30': 'v1.30.14' },
      k3s: { '1.29': 'v1.29.15+k3s1', '1.30': 'v1.30.14+k3s2' },
      k0s: { '1.29': 'v1.29.15+k0s.0' },
    },
  }

  it('a skipped minor without via goes through the latest patch of that minor the distribution released', () => {
    const hops = ok(planHops('k3s', 'v1.28.9+k3s1', { kubernetes: 'v1.31.1' }, LIST))
    expect(hops.map((h) => [h.from, h.to.release, h.kind])).toEqual([
      ['v1.28.9+k3s1', 'v1.29.15+k3s1', 'minor'],
      ['v1.29.15+k3s1', 'v1.30.14+k3s2', 'minor'],
      ['v1.30.14+k3s2', 'v1.31.1+k3s1', 'minor'],
    ])
    expect(ok(planHops('kubeadm', 'v1.28.9', { kubernetes: 'v1.30.2' }, LIST)).map((h) => [h.to.release, h.to.package])).toEqual([['v1.29.15', '1.29.15-1.1'], ['v1.30.2', '1.30.2-1.1']])
    expect(releases(planHops('k0s', 'v1.28.9+k0s.0', { kubernetes: 'v1.30.2' }, LIST))).toEqual(['v1.29.15+k0s.0', 'v1.30.2+k0s.0'])
  })

  it('the shipped list is the default', () => {
    const latest = SHIPPED_RELEASES.latest.k3s['1.29']!
    expect(releases(planHops('k3s', 'v1.28.9+k3s1', { kubernetes: 'v1.30.1' }))[0]).toBe(latest)
  })

  it('via overrides the release list for its minor only', () => {
    expect(releases(planHops('k3s', 'v1.28.9+k3s1', { kubernetes: 'v1.31.1', via: ['v1.30.2'] }, LIST))).toEqual(['v1.29.15+k3s1', 'v1.30.2+k3s1', 'v1.31.1+k3s1'])
  })

  it('refuses a skipped minor neither via nor the list knows, naming every missing minor, with a hint that validates', () => {
    const r = planHops('k0s', 'v1.28.9+k0s.0', { kubernetes: 'v1.32.1' }, LIST)
    expect(r).toMatchObject({ ok: false, field: 'via' })
    const message = r.ok ? '' : r.message
    expect(message).toContain('skips minors 1.30, 1.31, and the release list (refreshed 2000-01-01) has no k0s release of them')
    // The suggested via is made of real versions: fed back, the plan has its hops.
    const suggested = /via: \[([^\]]+)\]/.exec(message)![1]!.split(', ')
    expect(suggested).toEqual(['v1.30.0', 'v1.31.0'])
    expect(releases(planHops('k0s', 'v1.28.9+k0s.0', { kubernetes: 'v1.32.1', via: suggested }, LIST))).toEqual(['v1.29.15+k0s.0', 'v1.30.0+k0s.0', 'v1.31.0+k0s.0', 'v1.32.1+k0s.0'])
  })

  it("the plan's own releases extend the list: plain for every distribution, suffixed for their own", () => {
    expect(releases(planHops('k0s', 'v1.29.1+k0s.0', { kubernetes: 'v1.31.1', releases: ['v1.30.9'] }, LIST))).toEqual(['v1.30.9+k0s.0', 'v1.31.1+k0s.0'])
    expect(releases(planHops('k0s', 'v1.29.1+k0s.0', { kubernetes: 'v1.31.1', releases: ['v1.30.9+k0s.2'] }, LIST))).toEqual(['v1.30.9+k0s.2', 'v1.31.1+k0s.0'])
    expect(planHops('k0s', 'v1.29.1+k0s.0', { kubernetes: 'v1.31.1', releases: ['v1.30.9+k3s1'] }, LIST)).toMatchObject({ ok: false, field: 'via' })
    // An older patch than the list's newest does not replace it.
    expect(releases(planHops('k3s', 'v1.29.1+k3s1', { kubernetes: 'v1.31.1', releases: ['v1.30.2+k3s1'] }, LIST))[0]).toBe('v1.30.14+k3s2')
  })

  it('refuses a from version of another distribution, and a target release of another distribution', () => {
    expect(planHops('k3s', 'v1.29.2+k0s.0', { kubernetes: 'v1.30.4' })).toMatchObject({ ok: false, field: 'from' })
    expect(planHops('k0s', 'v1.29.2+k0s.0', { kubernetes: 'v1.30.4+k3s1' })).toMatchObject({ ok: false, field: 'distribution' })
    expect(planHops('kubeadm', 'v1.29.2+k3s1', { kubernetes: 'v1.30.4' })).toMatchObject({ ok: false, field: 'from' })
  })

  it('refuses unparseable versions and major jumps', () => {
    expect(planHops('k3s', 'v1.29', { kubernetes: 'v1.30.4' })).toMatchObject({ ok: false, field: 'from' })
    expect(planHops('k3s', 'v1.29.2', { kubernetes: 'latest' })).toMatchObject({ ok: false, field: 'kubernetes' })
    expect(planHops('k3s', 'v1.29.2', { kubernetes: 'v2.0.0' })).toMatchObject({ ok: false, field: 'kubernetes' })
  })

  it('is pure: the same input gives equal output and the input is not changed', () => {
    const target = Object.freeze({ kubernetes: 'v1.31.2', via: Object.freeze(['v1.30.6', 'v1.29.10']) as string[] })
    expect(planHops('kubeadm', 'v1.28.15', target)).toEqual(planHops('kubeadm', 'v1.28.15', target))
    expect(target.via).toEqual(['v1.30.6', 'v1.29.10'])
  })
})
