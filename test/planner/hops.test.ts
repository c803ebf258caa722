import { describe, expect, it } from 'vitest'
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

  it('refuses a skipped minor without via, naming every missing minor', () => {
    const r = planHops('k3s', 'v1.28.9+k3s1', { kubernetes: 'v1.31.1' })
    expect(r).toMatchObject({ ok: false, field: 'via' })
    expect(r.ok ? '' : r.message).toContain('skips minors 1.29, 1.30')
    const partial = planHops('k3s', 'v1.28.9+k3s1', { kubernetes: 'v1.31.1', via: ['v1.30.2'] })
    expect(partial.ok ? '' : partial.message).toContain('skips minor 1.29:')
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
