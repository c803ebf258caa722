import { describe, expect, it } from 'vitest'
import { checkApiserverUpgrade, evaluateSkew, isError, supportedMinors } from '../../../src/gates/skew/policy.js'
import type { ComponentInstance, SkewState, SkewViolation } from '../../../src/gates/skew/types.js'

/**
 * The policy document's own examples (kubernetes/website content/en/releases/version-skew-policy.md, rendered with
 * currentVersion 1.32; and the pre-1.28 edition, rendered with latestVersion 1.27), then edge cases. Each example is
 * one case: the versions the doc lists as supported are exactly what supportedMinors returns, so a version the doc
 * leaves out is refused as well.
 */
const api = (version: string, node = 'cp-1'): ComponentInstance => ({ component: 'kube-apiserver', version, node })
const on = (component: ComponentInstance['component'], version: string, node: string, talksTo?: 'any' | 'local'): ComponentInstance => ({ component, version, node, ...(talksTo ? { talksTo } : {}) })
const errors = (state: SkewState): SkewViolation[] => evaluateSkew(state).filter(isError)
const rules = (vs: SkewViolation[]): string[] => vs.map((v) => `${v.rule}${v.node ? `@${v.node}` : ''}`)

describe('the policy document (1.28 and later), with currentVersion 1.32', () => {
  it('kube-apiserver: newest at 1.32, others supported at 1.32 and 1.31', () => {
    expect(supportedMinors('kube-apiserver', ['v1.32.0'])).toEqual(['1.31', '1.32'])
    expect(rules(errors({ components: [api('v1.32.1', 'cp-1'), api('v1.30.5', 'cp-2')] }))).toEqual(['apiserver-ha-skew@cp-2'])
  })

  it('kubelet: apiserver at 1.32, kubelet supported at 1.32, 1.31, 1.30 and 1.29', () => {
    expect(supportedMinors('kubelet', ['v1.32.3'])).toEqual(['1.29', '1.30', '1.31', '1.32'])
  })

  it('kubelet: apiservers at 1.32 and 1.31 narrow it to 1.31, 1.30 and 1.29 (1.32 would be newer than the 1.31 one)', () => {
    expect(supportedMinors('kubelet', ['v1.32.0', 'v1.31.4'])).toEqual(['1.29', '1.30', '1.31'])
    const e = errors({ components: [api('v1.32.0', 'cp-1'), api('v1.31.4', 'cp-2'), on('kubelet', 'v1.32.0', 'w-1')] })
    expect(rules(e)).toEqual(['kubelet-newer-than-apiserver@w-1'])
    expect(e[0]!.message).toContain('the oldest of kube-apiservers v1.31 on cp-2, v1.32 on cp-1')
  })

  it('kube-proxy: apiserver at 1.32, supported at 1.32, 1.31, 1.30 and 1.29; with 1.32 and 1.31 apiservers at 1.31, 1.30, 1.29', () => {
    expect(supportedMinors('kube-proxy', ['v1.32.0'])).toEqual(['1.29', '1.30', '1.31', '1.32'])
    expect(supportedMinors('kube-proxy', ['v1.32.0', 'v1.31.0'])).toEqual(['1.29', '1.30', '1.31'])
  })

  it('kube-proxy may be up to three minors older or newer than the kubelet it runs alongside', () => {
    const at = (proxy: string, kubelet: string) => rules(errors({ components: [api('v1.32.0'), on('kubelet', kubelet, 'w-1'), on('kube-proxy', proxy, 'w-1')] }))
    expect(at('v1.29.0', 'v1.32.0')).toEqual([])
    expect(at('v1.32.0', 'v1.29.0')).toEqual([])
    // Four apart cannot happen within the apiserver rules at 1.32 (both would need 1.28 and 1.32); at 1.31 + a 1.27
    // kubelet (itself too old) the kube-proxy rule is reported on its own line.
    expect(rules(errors({ components: [api('v1.31.0'), on('kubelet', 'v1.27.0', 'w-1'), on('kube-proxy', 'v1.31.0', 'w-1')] }))).toEqual(['kubelet-too-old@w-1', 'kube-proxy-vs-kubelet@w-1'])
  })

  it('controller-manager, scheduler, cloud-controller-manager: apiserver at 1.32, supported at 1.32 and 1.31', () => {
    for (const c of ['kube-controller-manager', 'kube-scheduler', 'cloud-controller-manager'] as const) {
      expect(supportedMinors(c, ['v1.32.0'])).toEqual(['1.31', '1.32'])
    }
  })

  it('controller-manager et al. behind a load balancer to apiservers at 1.32 and 1.31: supported at 1.31 only', () => {
    for (const c of ['kube-controller-manager', 'kube-scheduler', 'cloud-controller-manager'] as const) {
      expect(supportedMinors(c, ['v1.32.0', 'v1.31.0'])).toEqual(['1.31'])
    }
  })

  it('controller-manager talking to its local apiserver only is judged against that one', () => {
    const state = { components: [api('v1.32.0', 'cp-1'), api('v1.31.0', 'cp-2'), on('kube-controller-manager', 'v1.32.0', 'cp-1', 'local'), on('kube-controller-manager', 'v1.31.0', 'cp-2', 'local')] }
    expect(errors(state)).toEqual([])
    state.components[2] = on('kube-controller-manager', 'v1.32.0', 'cp-1', 'any')
    expect(rules(errors(state))).toEqual(['control-plane-component-newer-than-apiserver@cp-1'])
  })

  it('kubectl: apiserver at 1.32, supported at 1.33, 1.32 and 1.31; with 1.32 and 1.31 apiservers at 1.32 and 1.31', () => {
    expect(supportedMinors('kubectl', ['v1.32.0'])).toEqual(['1.31', '1.32', '1.33'])
    expect(supportedMinors('kubectl', ['v1.32.0', 'v1.31.0'])).toEqual(['1.31', '1.32'])
  })

  it('kubelet < 1.25 may only be two minors older', () => {
    // Only reachable with apiservers before 1.28, where the older edition applies anyway; the two agree.
    expect(supportedMinors('kubelet', ['v1.26.0'])).toEqual(['1.24', '1.25', '1.26'])
    expect(supportedMinors('kubelet', ['v1.27.0'])).toEqual(['1.25', '1.26', '1.27'])
    expect(supportedMinors('kubelet', ['v1.28.0'])).toEqual(['1.25', '1.26', '1.27', '1.28'])
  })

  it('"persistently three minors behind" is legal but a warning: it must be upgraded before the control plane moves', () => {
    const vs = evaluateSkew({ components: [api('v1.32.0'), on('kubelet', 'v1.29.9', 'w-1'), on('kube-proxy', 'v1.29.9', 'w-1')] })
    expect(vs.map((v) => [v.rule, v.severity])).toEqual([
      ['kubelet-blocks-control-plane-upgrade', 'warning'],
      ['kube-proxy-blocks-control-plane-upgrade', 'warning'],
    ])
  })
})

describe('the pre-1.28 edition, with latestVersion 1.27', () => {
  it('kubelet: apiserver at 1.27, supported at 1.27, 1.26 and 1.25; with 1.27 and 1.26 apiservers at 1.26 and 1.25', () => {
    expect(supportedMinors('kubelet', ['v1.27.4'])).toEqual(['1.25', '1.26', '1.27'])
    expect(supportedMinors('kubelet', ['v1.27.4', 'v1.26.9'])).toEqual(['1.25', '1.26'])
  })

  it('kube-proxy at 1.25: the kubelet must be at 1.25, the apiserver between 1.25 and 1.27 inclusive', () => {
    const at = (apiserver: string, kubelet: string) => rules(errors({ components: [api(apiserver), on('kubelet', kubelet, 'n'), on('kube-proxy', 'v1.25.3', 'n')] }))
    expect(at('v1.25.0', 'v1.25.0')).toEqual([])
    expect(at('v1.27.0', 'v1.25.9')).toEqual([])
    expect(at('v1.27.0', 'v1.26.0')).toEqual(['kube-proxy-vs-kubelet@n'])
    expect(at('v1.24.0', 'v1.24.0')).toEqual(['kube-proxy-newer-than-apiserver@n', 'kube-proxy-vs-kubelet@n'])
    expect(rules(errors({ components: [api('v1.28.0'), on('kube-proxy', 'v1.25.3', 'n')] }))).toEqual([])
    expect(rules(errors({ components: [api('v1.27.0'), on('kube-proxy', 'v1.24.3', 'n')] }))).toEqual(['kube-proxy-too-old@n'])
  })

  it('the edition follows the newest apiserver: kube-proxy one minor off its kubelet is fine at 1.28, not at 1.27', () => {
    const state = (a: string, proxy: string, kubelet: string) => errors({ components: [api(a), on('kubelet', kubelet, 'n'), on('kube-proxy', proxy, 'n')] })
    expect(state('v1.28.0', 'v1.28.0', 'v1.27.0')).toEqual([])
    expect(rules(state('v1.27.0', 'v1.27.0', 'v1.26.0'))).toEqual(['kube-proxy-vs-kubelet@n'])
  })
})

describe('upgrade order: moving kube-apiserver from 1.31 to 1.32', () => {
  const cluster = (kubelet: string, extra: ComponentInstance[] = []): SkewState => ({
    components: [api('v1.31.5', 'cp-1'), api('v1.31.5', 'cp-2'), on('kube-controller-manager', 'v1.31.5', 'cp-1'), on('kubelet', kubelet, 'w-1'), ...extra],
  })

  it('kubelets at 1.31 or 1.30 pass; 1.29 passes only the permissive policy; 1.28 neither', () => {
    const check = (kubelet: string, policy: 'conservative' | 'permissive') => rules(checkApiserverUpgrade(cluster(kubelet), { node: 'cp-1', to: 'v1.32.2', policy }))
    expect(check('v1.31.5', 'conservative')).toEqual([])
    expect(check('v1.30.0', 'conservative')).toEqual([])
    expect(check('v1.29.0', 'conservative')).toEqual(['kubelet-too-old-for-apiserver-upgrade@w-1'])
    expect(check('v1.29.0', 'permissive')).toEqual([])
    expect(check('v1.28.0', 'permissive')).toEqual(['kubelet-too-old-for-apiserver-upgrade@w-1'])
  })

  it('permissive is the steady-state limit of the new version: 2 for a target before 1.28', () => {
    const s: SkewState = { components: [api('v1.26.5'), on('kubelet', 'v1.24.0', 'w-1')] }
    expect(rules(checkApiserverUpgrade(s, { to: 'v1.27.0', policy: 'permissive' }))).toEqual(['kubelet-too-old-for-apiserver-upgrade@w-1'])
  })

  it('in a single-instance cluster the existing apiserver is at 1.31: skipping a minor or going down is refused', () => {
    const single: SkewState = { components: [api('v1.30.9')] }
    expect(rules(checkApiserverUpgrade(single, { to: 'v1.32.0', policy: 'permissive' }))).toEqual(['apiserver-skipped-minor@cp-1'])
    expect(rules(checkApiserverUpgrade({ components: [api('v1.32.1')] }, { to: 'v1.32.0', policy: 'permissive' }))).toEqual(['apiserver-downgrade@cp-1'])
    expect(checkApiserverUpgrade({ components: [api('v1.31.9')] }, { to: 'v1.32.0', policy: 'permissive' })).toEqual([])
  })

  it('in an HA cluster every apiserver is at 1.31 or 1.32 first', () => {
    const ha: SkewState = { components: [api('v1.31.0', 'cp-1'), api('v1.32.0', 'cp-2'), api('v1.30.0', 'cp-3')] }
    expect(rules(checkApiserverUpgrade(ha, { node: 'cp-1', to: 'v1.32.0', policy: 'permissive' }))).toEqual(['apiserver-ha-skew@cp-3'])
  })

  it('controller-manager, scheduler and cloud-controller-manager talking to it are at 1.31 first', () => {
    const s = cluster('v1.31.0', [on('kube-scheduler', 'v1.30.0', 'cp-1')])
    expect(rules(checkApiserverUpgrade(s, { node: 'cp-1', to: 'v1.32.0', policy: 'permissive' }))).toEqual(['control-plane-component-too-old@cp-1'])
  })

  it('kubeadm upgrade apply also refuses kubelets more than one minor older than the target (MaximumAllowedMinorVersionKubeletSkew = 1)', () => {
    const vs = checkApiserverUpgrade(cluster('v1.30.4'), { node: 'cp-1', to: 'v1.32.0', policy: 'conservative', kubeadmApply: true })
    expect(rules(vs)).toEqual(['kubeadm-kubelet-too-old@w-1'])
    expect(vs[0]!.message).toContain('There are kubelets in this cluster that are too old that have these versions [v1.30.4]')
    expect(checkApiserverUpgrade(cluster('v1.31.0'), { node: 'cp-1', to: 'v1.32.0', policy: 'conservative', kubeadmApply: true })).toEqual([])
  })
})

describe('k0s', () => {
  it('kube-proxy matches the kubelet minor', () => {
    const s = (proxy: string): SkewState => ({ distribution: 'k0s', components: [api('v1.30.4+k0s'), on('kubelet', 'v1.30.4+k0s', 'w-1'), on('kube-proxy', proxy, 'w-1')] })
    expect(errors(s('v1.30.1'))).toEqual([])
    expect(rules(errors(s('v1.29.8')))).toEqual(['k0s-kube-proxy-matches-kubelet@w-1'])
  })

  it('workers at most one minor older than the controllers', () => {
    const s = (kubelet: string): SkewState => ({ distribution: 'k0s', components: [api('v1.31.1+k0s'), on('kubelet', kubelet, 'w-1')] })
    expect(errors(s('v1.30.4+k0s'))).toEqual([])
    expect(rules(errors(s('v1.29.4+k0s')))).toEqual(['k0s-worker-skew@w-1'])
  })
})

describe('edge cases', () => {
  it('patches never count: a kubelet a patch ahead of the apiserver is the same minor', () => {
    expect(errors({ components: [api('v1.30.1'), on('kubelet', 'v1.30.9', 'w-1')] })).toEqual([])
  })

  it('distribution suffixes are read (k3s, k0s kubelet without a revision)', () => {
    expect(errors({ components: [api('v1.30.4+k3s1'), on('kubelet', 'v1.31.0+k3s1', 'w-1')] }).map((v) => v.rule)).toEqual(['kubelet-newer-than-apiserver'])
    expect(errors({ components: [api('v1.30.4+k0s.1'), on('kubelet', 'v1.30.4+k0s', 'w-1')] })).toEqual([])
  })

  it('an unreadable version is unknown, never a pass; no apiserver means nothing to compare against', () => {
    const vs = evaluateSkew({ components: [api('v1.30.4'), on('kubelet', 'banana', 'w-1')] })
    expect(vs.map((v) => [v.rule, v.severity])).toEqual([['unreadable-version', 'unknown']])
    expect(evaluateSkew({ components: [on('kubelet', 'v1.30.0', 'w-1')] })).toEqual([])
  })

  it('a kubelet talking to its local apiserver only is not narrowed by the others (k3s servers, kubeadm local mode)', () => {
    const s: SkewState = { components: [api('v1.31.0', 'cp-1'), api('v1.30.0', 'cp-2'), on('kubelet', 'v1.31.0', 'cp-1', 'local')] }
    expect(errors(s)).toEqual([])
    s.components[2] = on('kubelet', 'v1.31.0', 'cp-1')
    expect(rules(errors(s))).toEqual(['kubelet-newer-than-apiserver@cp-1'])
  })

  it('four minors behind 1.32 is refused; exactly at the limit is a warning, not an error', () => {
    expect(rules(errors({ components: [api('v1.32.0'), on('kubelet', 'v1.28.0', 'w-1')] }))).toEqual(['kubelet-too-old@w-1'])
  })
})
