import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { smallTopology, startLab, type TestLab } from './helpers.js'

/** Faults written in the topology: on from the start, or armed until their event. */
describe('faults from the topology', () => {
  let t: TestLab
  beforeAll(async () => {
    const topo = smallTopology('127.0.43')
    topo.spec.clusters[0]!.faults = [
      { fault: 'etcd-unhealthy' },
      { fault: 'disk-full', node: 'w-2', when: { after: 'node-cordoned', node: 'w-1' } },
    ]
    t = await startLab(topo)
  })
  afterAll(async () => t?.stop())

  it('a fault without `when` is on from the start', async () => {
    expect((await t.https('/readyz')).status).toBe(500)
    expect(t.lab.status().clusters[0]!.faults.map((f) => f.fault)).toEqual(['etcd-unhealthy'])
  })

  it('an armed fault waits for its event, then switches on', async () => {
    const pressure = async () => (JSON.parse((await t.https('/api/v1/nodes/w-2')).body).status.conditions as { type: string; status: string }[]).find((c) => c.type === 'DiskPressure')!.status
    expect(t.lab.status().clusters[0]!.armed).toEqual([{ spec: { fault: 'disk-full', cluster: 'lab', node: 'w-2' }, after: 'node-cordoned', node: 'w-1' }])
    expect(await pressure()).toBe('False')
    await t.kubectl(['cordon', 'w-1'])
    expect(await pressure()).toBe('True')
    expect(t.lab.status().clusters[0]!.armed).toEqual([])
  })
})
