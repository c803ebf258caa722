import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parsePlan } from '../../src/plan/load.js'
import { defaultReleases, releaseStatus, SHIPPED_RELEASES, withReleases, type ReleaseList } from '../../src/plan/releases.js'
import { parseKubeVersion, type KubeVersion } from '../../src/plan/versions.js'

const v = (text: string): KubeVersion => parseKubeVersion(text)!
const LIST: ReleaseList = { refreshed: '2000-01-01', latest: { kubeadm: { '1.30': 'v1.30.14' }, k3s: { '1.30': 'v1.30.14+k3s2' }, k0s: {} } }
const dir = mkdtempSync(join(tmpdir(), 'kupgrade-releases-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('release list', () => {
  it('every shipped entry is a release of its own minor, in its distribution\'s spelling', () => {
    for (const [dist, minors] of Object.entries(SHIPPED_RELEASES.latest)) {
      for (const [minor, text] of Object.entries(minors)) {
        const parsed = v(text)
        expect(`${parsed.major}.${parsed.minor}`, text).toBe(minor)
        expect(parsed.pre, text).toBe('')
        expect(parsed.dist, text).toBe(dist === 'kubeadm' ? undefined : dist)
        if (dist !== 'kubeadm') expect(parsed.revision, text).toBeTypeOf('number')
      }
    }
  })

  it('a version is released when its minor is listed and it is not past the newest patch (and revision)', () => {
    expect(releaseStatus(LIST, 'kubeadm', v('v1.30.2'))).toEqual({ released: true })
    expect(releaseStatus(LIST, 'kubeadm', v('v1.30.14'))).toEqual({ released: true })
    expect(releaseStatus(LIST, 'kubeadm', v('v1.30.15'))).toEqual({ released: false, reason: 'the release list (refreshed 2000-01-01) knows kubeadm 1.30 up to v1.30.14' })
    expect(releaseStatus(LIST, 'kubeadm', v('v1.31.0'))).toMatchObject({ released: false, reason: 'the release list (refreshed 2000-01-01) has no kubeadm release of 1.31' })
    expect(releaseStatus(LIST, 'k3s', v('v1.30.14+k3s2'))).toEqual({ released: true })
    expect(releaseStatus(LIST, 'k3s', v('v1.30.14+k3s3'))).toMatchObject({ released: false })
    expect(releaseStatus(LIST, 'k3s', v('v1.30.4+k3s9'))).toEqual({ released: true })
    expect(releaseStatus(LIST, 'kubeadm', v('v1.30.2-rc.1'))).toMatchObject({ released: false, reason: 'v1.30.2-rc.1 is a pre-release' })
  })

  it('the shipped list holds checked facts (2026-12-01): final patches of ended minors, and releases a distribution skipped', () => {
    // Upstream 1.29 got 1.29.15 after its EOL; 1.31 ended at 1.31.14.
    expect(SHIPPED_RELEASES.latest.kubeadm['1.29']).toBe('v1.29.15')
    expect(SHIPPED_RELEASES.latest.kubeadm['1.31']).toBe('v1.31.14')
    expect(SHIPPED_RELEASES.latest.k3s['1.30']).toBe('v1.30.14+k3s2')
    // k0s never shipped 1.32.9 or 1.33.5 although upstream did; k3s skipped the upstream regressions 1.24.5 and 1.25.1.
    expect(releaseStatus(SHIPPED_RELEASES, 'k0s', v('v1.32.9+k0s.0'))).toEqual({ released: false, reason: 'k0s never released 1.32.9 (the release list (refreshed 2026-12-01) knows k0s 1.32 up to v1.32.13+k0s.0)' })
    expect(releaseStatus(SHIPPED_RELEASES, 'kubeadm', v('v1.32.9'))).toEqual({ released: true })
    expect(releaseStatus(SHIPPED_RELEASES, 'k0s', v('v1.32.10+k0s.0'))).toEqual({ released: true })
    expect(releaseStatus(SHIPPED_RELEASES, 'k3s', v('v1.25.1+k3s1'))).toMatchObject({ released: false })
    expect(releaseStatus(SHIPPED_RELEASES, 'k3s', v('v1.25.2+k3s1'))).toEqual({ released: true })
    // Every skipped patch is below the newest of its minor (else it would say nothing), and no newest one is skipped.
    for (const [dist, minors] of Object.entries(SHIPPED_RELEASES.skipped ?? {})) {
      for (const [minor, patches] of Object.entries(minors!)) {
        const newest = v(SHIPPED_RELEASES.latest[dist as 'k3s' | 'k0s'][minor]!)
        for (const p of patches) expect(p, `${dist} ${minor}.${p}`).toBeLessThan(newest.patch)
      }
    }
    // A version the user lists (a mirror) counts as released even when the shipped list says it was skipped.
    expect(releaseStatus(withReleases(SHIPPED_RELEASES, 'k0s', ['v1.32.9+k0s.0']), 'k0s', v('v1.32.9+k0s.0'))).toEqual({ released: true })
  })

  it('withReleases adds newer versions and keeps newer known ones', () => {
    const more = withReleases(LIST, 'k3s', ['v1.30.2+k3s1', 'v1.31.1+k3s1', 'junk'])
    expect(more.latest.k3s).toEqual({ '1.30': 'v1.30.14+k3s2', '1.31': 'v1.31.1+k3s1' })
    expect(LIST.latest.k3s).toEqual({ '1.30': 'v1.30.14+k3s2' })
  })

  it('KUPGRADE_RELEASES extends the shipped list; a broken file is an error naming it', () => {
    const good = join(dir, 'good.json')
    writeFileSync(good, JSON.stringify({ k0s: { '1.40': 'v1.40.2+k0s.1' } }))
    expect(defaultReleases({ KUPGRADE_RELEASES: good }).latest.k0s['1.40']).toBe('v1.40.2+k0s.1')
    expect(defaultReleases({}).latest.k0s['1.40']).toBeUndefined()
    const bad = join(dir, 'bad.json')
    writeFileSync(bad, JSON.stringify({ k3s: { '1.40': 'soon' } }))
    expect(() => defaultReleases({ KUPGRADE_RELEASES: bad })).toThrow(`KUPGRADE_RELEASES=${bad}: "k3s" must map minors to versions`)
    expect(() => defaultReleases({ KUPGRADE_RELEASES: join(dir, 'missing.json') })).toThrow('cannot read a release list')
  })

  it('validation warns about a target the list does not know, at the target, once per distribution; spec.target.releases silences it', () => {
    const plan = (extra: string) => `apiVersion: kupgrade.dev/v1alpha1
kind: UpgradePlan
metadata: { name: p }
spec:
  target: { kubernetes: v1.30.99${extra} }
  stages: [{ name: s, clusters: [a, b] }]
  clusters:
    - { name: a, distribution: kubeadm, from: v1.30.1, apiEndpoint: "https://10.0.0.1:6443", nodes: [{ name: n1, host: 10.0.0.2, role: control-plane }] }
    - { name: b, distribution: kubeadm, from: v1.30.1, apiEndpoint: "https://10.0.1.1:6443", nodes: [{ name: n1, host: 10.0.1.2, role: control-plane }] }
`
    const warned = parsePlan('p.yaml', plan('')).problems.filter((p) => p.message.includes('not a known release'))
    expect(warned.map((p) => [p.line, p.severity])).toEqual([[5, 'warning']])
    expect(warned[0]!.message).toContain('spec.target.kubernetes: kubeadm v1.30.99 is not a known release')
    expect(parsePlan('p.yaml', plan(', releases: [v1.30.99]')).problems.filter((p) => p.message.includes('not a known release'))).toEqual([])
    expect(parsePlan('p.yaml', plan(', releases: [soon]')).problems.map((p) => p.message)).toContain('spec.target.releases[0]: "soon" is not a Kubernetes version (expected e.g. v1.35.1 or v1.35.1+k3s1)')
  })
})
