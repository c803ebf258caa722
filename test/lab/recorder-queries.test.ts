import { describe, expect, it } from 'vitest'
import { disruptionWindows, maxConcurrentDisruptions, maxConcurrentlyCordoned, mutations, nodeUpgradeOrder } from '../../src/lab/recorder/queries.js'
import { Recorder } from '../../src/lab/recorder/recorder.js'
import type { NodeAction } from '../../src/lab/recorder/types.js'

/** The recorder's queries on hand-made recordings: each answer must change when the recorded order changes. */
const CLIENT = 'ssh:root SHA256:x'
/**
 * Steps: [node, action] for a node change, or ['cordon' | 'uncordon' | 'refused-cordon' | 'timed-out-cordon', node]
 * for a Node write (timed out: carried out, answered 504 — apiserver-slow's answer timeout).
 */
function recording(steps: [string, string][]) {
  const r = new Recorder()
  for (const s of steps) {
    if (s[0] === 'cordon' || s[0] === 'uncordon' || s[0] === 'refused-cordon' || s[0] === 'timed-out-cordon') {
      r.recordApi({ cluster: 'c', client: 'cert:CN=x', verb: 'patch', method: 'PATCH', path: `/api/v1/nodes/${s[1]}`, resource: 'nodes', name: s[1], code: s[0] === 'refused-cordon' ? 409 : s[0] === 'timed-out-cordon' ? 504 : 200, unschedulable: s[0] !== 'uncordon', nodeRole: s[1].startsWith('cp') ? 'control-plane' : 'worker' })
    } else {
      r.recordNode({ cluster: 'c', node: s[0], role: s[0].startsWith('cp') ? 'control-plane' : 'worker' }, { action: s[1] as NodeAction, client: CLIENT, atMs: Date.now() })
    }
  }
  return r
}

describe('recorder queries', () => {
  it('control-plane nodes one at a time is 1; an overlap is 2', () => {
    const serial = recording([['cp-1', 'service-stop'], ['cp-1', 'install'], ['cp-1', 'service-start'], ['cp-2', 'install'], ['cp-2', 'service-stop'], ['cp-2', 'service-start']])
    expect(serial.maxConcurrentDisruptions('c', 'control-plane')).toBe(1)
    expect(serial.nodeUpgradeOrder('c', 'control-plane')).toEqual(['cp-1', 'cp-2'])
    const overlap = recording([['cp-1', 'service-stop'], ['cp-2', 'service-stop'], ['cp-1', 'service-start'], ['cp-2', 'service-start']])
    expect(overlap.maxConcurrentDisruptions('c', 'control-plane')).toBe(2)
    expect(disruptionWindows(overlap.events(), 'c').map((w) => [w.node, w.toSeq !== undefined])).toEqual([['cp-1', true], ['cp-2', true]])
  })

  it('a node that never came back stays disrupted to the end of the recording', () => {
    const r = recording([['w-1', 'reboot'], ['w-2', 'service-stop'], ['w-2', 'service-start']])
    expect(r.maxConcurrentDisruptions('c', 'worker')).toBe(2)
    expect(r.disruptionWindows('c').find((w) => w.node === 'w-1')?.toSeq).toBeUndefined()
  })

  it('cordons are replayed per role; refused writes do not count', () => {
    const r = recording([['cordon', 'w-1'], ['refused-cordon', 'w-2'], ['uncordon', 'w-1'], ['cordon', 'w-2'], ['cordon', 'cp-1']])
    expect(maxConcurrentlyCordoned(r.events(), 'c', 'worker')).toBe(1)
    expect(maxConcurrentlyCordoned(r.events(), 'c')).toBe(2)
    expect(mutations(r.events()).map((e) => e.seq)).toEqual([1, 3, 4, 5])
  })

  it('a write answered 504 Timeout was carried out: it counts as a mutation and as a cordon', () => {
    const r = recording([['cordon', 'w-1'], ['timed-out-cordon', 'w-2'], ['refused-cordon', 'w-3']])
    expect(mutations(r.events()).map((e) => e.seq)).toEqual([1, 2])
    expect(maxConcurrentlyCordoned(r.events(), 'c', 'worker')).toBe(2)
  })

  it('mark() and afterSeq look only at what came later; other clusters are not mixed in', () => {
    const r = recording([['w-1', 'install']])
    const mark = r.mark()
    expect(r.mutations({ afterSeq: mark })).toEqual([])
    r.recordNode({ cluster: 'other', node: 'w-9', role: 'worker' }, { action: 'install', client: CLIENT, atMs: Date.now() })
    expect(r.mutations({ afterSeq: mark, cluster: 'c' })).toEqual([])
    expect(nodeUpgradeOrder(r.events(), 'other')).toEqual(['w-9'])
  })

  it('keeps at most its limit, oldest dropped first', () => {
    const r = new Recorder(3)
    for (let i = 0; i < 5; i++) r.recordNode({ cluster: 'c', node: `w-${i}`, role: 'worker' }, { action: 'install', client: CLIENT, atMs: Date.now() })
    expect(r.events().map((e) => e.seq)).toEqual([3, 4, 5])
    expect(r.dropped).toBe(2)
  })
})
