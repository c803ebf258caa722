import semver from 'semver'
import { describe, expect, it } from 'vitest'
import {
  compareKubeVersions, coreOf, DISTRIBUTIONS, minorDistance, minorOf, parseKubeVersion, parsePackageVersion,
  resolveDistributionVersion, type KubeVersion,
} from '../../src/plan/versions.js'

const v = (s: string): KubeVersion => {
  const parsed = parseKubeVersion(s)
  if (!parsed) throw new Error(`test setup: ${s} did not parse`)
  return parsed
}
const cmp = (a: string, b: string) => compareKubeVersions(v(a), v(b))

describe('parseKubeVersion', () => {
  it.each([
    ['v1.30.4', { major: 1, minor: 30, patch: 4, pre: '', dist: undefined, revision: undefined }],
    ['1.30.4', { major: 1, minor: 30, patch: 4, pre: '', dist: undefined, revision: undefined }],
    ['v1.30.4+k3s1', { major: 1, minor: 30, patch: 4, pre: '', dist: 'k3s', revision: 1 }],
    ['v1.30.4+k3s10', { major: 1, minor: 30, patch: 4, pre: '', dist: 'k3s', revision: 10 }],
    ['v1.30.4+k0s.0', { major: 1, minor: 30, patch: 4, pre: '', dist: 'k0s', revision: 0 }],
    ['v1.30.4+k0s', { major: 1, minor: 30, patch: 4, pre: '', dist: 'k0s', revision: undefined }],
    ['v1.31.0-rc.1', { major: 1, minor: 31, patch: 0, pre: 'rc.1', dist: undefined, revision: undefined }],
    ['v1.31.0-rc.1+k3s1', { major: 1, minor: 31, patch: 0, pre: 'rc.1', dist: 'k3s', revision: 1 }],
    ['  v1.30.4  ', { major: 1, minor: 30, patch: 4, pre: '', dist: undefined, revision: undefined }],
  ])('%s', (text, want) => {
    const got = v(text)
    expect({ major: got.major, minor: got.minor, patch: got.patch, pre: got.pre, dist: got.dist, revision: got.revision }).toEqual(want)
    expect(got.raw).toBe(text.trim())
  })

  it.each(['', 'v1.30', '1.30', 'v1.30.4.1', 'latest', 'v1.30.x', 'v1.30.4+k3s', 'v1.30.4+rke2r1', 'v1.30.4+k0s.x', 'vv1.30.4', 'v1.30.4 +k3s1', 'V1.30.4'])(
    'refuses %j',
    (text) => {
      expect(parseKubeVersion(text)).toBeUndefined()
    },
  )
})

describe('compareKubeVersions', () => {
  it('orders by core version', () => {
    expect(cmp('v1.29.9', 'v1.30.0')).toBeLessThan(0)
    expect(cmp('v1.30.10', 'v1.30.9')).toBeGreaterThan(0) // numeric, not string, patch order
    expect(cmp('v1.30.4', 'v1.30.4')).toBe(0)
  })

  it('orders k3s revisions numerically: +k3s10 > +k3s2 (semver would say the opposite)', () => {
    expect(cmp('v1.30.4+k3s10', 'v1.30.4+k3s2')).toBeGreaterThan(0)
    expect(cmp('v1.30.4+k3s2', 'v1.30.4+k3s10')).toBeLessThan(0)
    expect(cmp('v1.30.4+k3s2', 'v1.30.4+k3s2')).toBe(0)
  })

  it('orders k0s revisions numerically: +k0s.10 > +k0s.2', () => {
    expect(cmp('v1.30.4+k0s.10', 'v1.30.4+k0s.2')).toBeGreaterThan(0)
    expect(cmp('v1.30.4+k0s.0', 'v1.30.4+k0s.1')).toBeLessThan(0)
  })

  it('the core decides before any revision', () => {
    expect(cmp('v1.30.5+k3s1', 'v1.30.4+k3s9')).toBeGreaterThan(0)
    expect(cmp('v1.29.9+k0s.10', 'v1.30.0+k0s.0')).toBeLessThan(0)
  })

  it('treats a missing revision as equal (kubelet on k0s reports a bare +k0s)', () => {
    expect(cmp('v1.30.4+k0s', 'v1.30.4+k0s.3')).toBe(0)
    expect(cmp('v1.30.4', 'v1.30.4+k3s2')).toBe(0)
  })

  it('puts pre-releases before the release', () => {
    expect(cmp('v1.31.0-rc.1', 'v1.31.0')).toBeLessThan(0)
    expect(cmp('v1.31.0-alpha.2', 'v1.31.0-beta.0')).toBeLessThan(0)
    expect(cmp('v1.31.0-rc.1', 'v1.30.9')).toBeGreaterThan(0)
  })

  it('is a total order on a shuffled list', () => {
    const sorted = ['v1.29.0', 'v1.29.2+k3s1', 'v1.29.2+k3s2', 'v1.29.2+k3s10', 'v1.30.0-rc.0', 'v1.30.0', 'v1.30.4', 'v1.30.10']
    const shuffled = [sorted[5], sorted[2], sorted[7], sorted[0], sorted[3], sorted[6], sorted[1], sorted[4]] as string[]
    expect(shuffled.map(v).sort(compareKubeVersions).map((x) => x.raw)).toEqual(sorted)
  })

  it("orders every pair of cores as semver does (releases are compared number by number without it)", () => {
    // Numbers either side of 10 (numeric, not string, order), releases and pre-releases (semver's own rules).
    const cores: string[] = []
    for (const major of [0, 1, 2]) for (const minor of [0, 2, 10]) for (const patch of [0, 9, 10]) for (const pre of ['', '-rc.1', '-rc.10', '-alpha', '-0']) cores.push(`${major}.${minor}.${patch}${pre}`)
    const wrong: string[] = []
    for (const a of cores) {
      for (const b of cores) {
        const want = semver.compare(a, b)
        const got = compareKubeVersions(v(`v${a}`), v(`v${b}`))
        if (got !== want) wrong.push(`${a} vs ${b}: ${got}, semver ${want}`)
      }
    }
    expect(wrong).toEqual([])
  })
})

describe('helpers', () => {
  it('coreOf, minorOf, minorDistance', () => {
    expect(coreOf(v('v1.30.4+k3s2'))).toBe('1.30.4')
    expect(coreOf(v('v1.31.0-rc.1+k3s1'))).toBe('1.31.0-rc.1')
    expect(minorOf(v('v1.30.4'))).toBe('1.30')
    expect(minorDistance(v('v1.28.1'), v('v1.30.4'))).toBe(2)
    expect(minorDistance(v('v1.30.4'), v('v1.30.9'))).toBe(0)
    expect(minorDistance(v('v1.30.4'), v('v2.0.0'))).toBeNaN()
  })
})

describe('parsePackageVersion (pkgs.k8s.io)', () => {
  it.each([
    ['1.30.4-1.1', { core: '1.30.4', revision: '1.1' }],
    ['1.30.4-2', { core: '1.30.4', revision: '2' }],
    ['1.30.10-1.1.2', { core: '1.30.10', revision: '1.1.2' }],
  ])('%s', (text, want) => {
    expect(parsePackageVersion(text)).toEqual(want)
  })
  it.each(['v1.30.4-1.1', '1.30.4', '1.30-1.1', '1.30.4-', '1.30.4-1.a', '1.30.4-1.1; rm -rf /'])('refuses %j', (text) => {
    expect(parsePackageVersion(text)).toBeUndefined()
  })
})

describe('resolveDistributionVersion', () => {
  it('k3s: +k3s1 by default, keeps a given revision, an explicit release wins', () => {
    expect(resolveDistributionVersion('k3s', v('v1.30.4'))).toEqual({ kubernetes: 'v1.30.4', release: 'v1.30.4+k3s1', kubelet: 'v1.30.4+k3s1' })
    expect(resolveDistributionVersion('k3s', v('v1.30.4+k3s10'))).toEqual({ kubernetes: 'v1.30.4', release: 'v1.30.4+k3s10', kubelet: 'v1.30.4+k3s10' })
    expect(resolveDistributionVersion('k3s', v('v1.30.4'), 'v1.30.4+k3s2').release).toBe('v1.30.4+k3s2')
  })

  it('k0s: +k0s.0 by default; the kubelet reports a bare +k0s', () => {
    expect(resolveDistributionVersion('k0s', v('v1.30.4'))).toEqual({ kubernetes: 'v1.30.4', release: 'v1.30.4+k0s.0', kubelet: 'v1.30.4+k0s' })
    expect(resolveDistributionVersion('k0s', v('v1.30.4+k0s.10')).release).toBe('v1.30.4+k0s.10')
    expect(resolveDistributionVersion('k0s', v('v1.30.4+k0s')).release).toBe('v1.30.4+k0s.0')
    expect(resolveDistributionVersion('k0s', v('v1.30.4'), 'v1.30.4+k0s.1').release).toBe('v1.30.4+k0s.1')
  })

  it('kubeadm: the plain version, and the package 1.30.4-1.1 unless given', () => {
    expect(resolveDistributionVersion('kubeadm', v('v1.30.4'))).toEqual({ kubernetes: 'v1.30.4', release: 'v1.30.4', kubelet: 'v1.30.4', package: '1.30.4-1.1' })
    expect(resolveDistributionVersion('kubeadm', v('v1.30.4'), '1.30.4-2.1').package).toBe('1.30.4-2.1')
  })

  it('covers every distribution', () => {
    for (const d of DISTRIBUTIONS) expect(resolveDistributionVersion(d, v('v1.30.4')).kubernetes).toBe('v1.30.4')
  })
})
