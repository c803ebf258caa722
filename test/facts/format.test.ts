import { describe, expect, it } from 'vitest'
import { installed, status } from '../../src/facts/format.js'
import type { NodeFacts } from '../../src/facts/types.js'

const node = (o: Partial<NodeFacts>): NodeFacts => ({ name: 'n', role: 'control-plane', host: 'h', inApi: true, roles: [], disk: [], services: {}, kubeProxySource: 'none', ...o })

describe('inventory columns', () => {
  it('a machine without a kubelet has no Node by design: STATUS is its service, not NotInAPI', () => {
    expect(status(node({ kubernetesNode: false, inApi: false, services: { k0scontroller: 'active' } }))).toBe('Running (no Node)')
    expect(status(node({ kubernetesNode: false, inApi: false, services: { k0scontroller: 'inactive' } }))).toBe('Stopped (no Node)')
    expect(status(node({ inApi: false }))).toBe('NotInAPI')
    expect(status(node({ ready: true, cordoned: true }))).toBe('Ready,SchedulingDisabled')
  })

  it('INSTALLED says what runs where it differs from the binary on disk', () => {
    expect(installed(node({ installedVersion: 'v1.30.4+k0s.0', runningVersion: 'v1.29.6+k0s.0' }))).toBe('v1.30.4+k0s.0 (runs v1.29.6+k0s.0)')
    expect(installed(node({ installedVersion: 'v1.30.4+k0s.0', runningVersion: 'v1.30.4+k0s.0' }))).toBe('v1.30.4+k0s.0')
    expect(installed(node({ installedVersion: 'v1.30.4+k0s.0' }))).toBe('v1.30.4+k0s.0')
    expect(installed(node({}))).toBe('-')
  })
})
