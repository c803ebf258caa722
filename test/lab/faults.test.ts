import { connect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FaultName, FaultSpec } from '../../src/lab/faults.js'
import { eventually, labKubectl, smallTopology, startLab, type TestLab } from './helpers.js'

/** Every cluster-side fault is observable through its signal, and the signal is absent without the fault. */
type Obj = Record<string, any>

describe('cluster-side faults', () => {
  let t: TestLab
  const model = () => [...t.lab.clusters.values()][0]!.model
  const get = async (path: string): Promise<Obj> => {
    const r = await t.https(path)
    expect(r.status, `${path}: ${r.body}`).toBe(200)
    return JSON.parse(r.body) as Obj
  }
  const spec = (fault: FaultName, node?: string): FaultSpec => ({ fault, cluster: 'lab', ...(node ? { node } : {}) })
  /** Runs `observe` without the fault, then with it, then after clearing it. */
  async function compare<T>(fault: FaultSpec, observe: () => Promise<T>): Promise<{ before: T; during: T; after: T }> {
    const before = await observe()
    t.lab.setFault(fault, true)
    let during: T
    try {
      during = await observe()
    } finally {
      t.lab.setFault(fault, false)
    }
    return { before, during, after: await observe() }
  }

  beforeAll(async () => {
    t = await startLab(smallTopology('127.0.31', { replicas: 2 }))
  })
  afterAll(async () => t?.stop())

  it('kube-proxy-sync-failure: kube-proxy pod logs carry "Failed to execute iptables-restore" and "Sync failed"', async () => {
    const pods = (await get('/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-proxy')).items as Obj[]
    const onW1 = pods.find((p) => p.spec.nodeName === 'w-1')!.metadata.name as string
    const onW2 = pods.find((p) => p.spec.nodeName === 'w-2')!.metadata.name as string
    const logs = async () => Promise.all([onW1, onW2].map(async (n) => (await t.https(`/api/v1/namespaces/kube-system/pods/${n}/log`)).body))
    const r = await compare(spec('kube-proxy-sync-failure', 'w-1'), logs)
    expect(r.before[0]).not.toMatch(/Failed to execute iptables-restore|Sync failed/)
    expect(r.during[0]).toContain('"Failed to execute iptables-restore"')
    expect(r.during[0]).toContain('"Sync failed"')
    expect(r.during[1]).not.toContain('Sync failed') // only the faulty node's kube-proxy
    expect(r.after[0]).not.toContain('Sync failed')
  })

  it('kube-proxy-skew: the kube-proxy DaemonSet and its pods run one minor behind the kubelets', async () => {
    const image = async () => (await get('/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy')).spec.template.spec.containers[0].image as string
    const r = await compare(spec('kube-proxy-skew'), image)
    expect(r.before).toBe('registry.k8s.io/kube-proxy:v1.29.6')
    expect(r.during).toBe('registry.k8s.io/kube-proxy:v1.28.0')
    expect(r.after).toBe('registry.k8s.io/kube-proxy:v1.29.6')
  })

  // api-vip-unreachable "from pods" needs pods that run: test/lab/pods.test.ts (a lab with nodes, real kubectl).

  it('coredns-crashloop: CoreDNS pods are CrashLoopBackOff and not ready; their logs show the API timeout', async () => {
    const coredns = async () => {
      const p = ((await get('/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-dns')).items as Obj[])[0]!
      const log = (await t.https(`/api/v1/namespaces/kube-system/pods/${p.metadata.name}/log`)).body
      return { waiting: p.status.containerStatuses[0].state.waiting?.reason as string | undefined, ready: p.status.containerStatuses[0].ready as boolean, restarts: p.status.containerStatuses[0].restartCount as number, log }
    }
    const r = await compare(spec('coredns-crashloop'), coredns)
    expect(r.before).toMatchObject({ waiting: undefined, ready: true, restarts: 0 })
    expect(r.during).toMatchObject({ waiting: 'CrashLoopBackOff', ready: false })
    expect(r.during.restarts).toBeGreaterThan(0)
    expect(r.during.log).toContain('dial tcp 10.96.0.1:443: i/o timeout')
    expect(r.after).toMatchObject({ waiting: undefined, ready: true })
  })

  it('cert-expired and cert-expiring: the serving certificate changes on the running server', async () => {
    const cert = () => new Promise<{ validTo: Date; authorizationError?: string }>((resolve, reject) => {
      const s = connect({ host: '127.0.31.1', port: 6443, ca: t.lab.ca.certPem, servername: undefined, rejectUnauthorized: false }, () => {
        const c = s.getPeerCertificate()
        resolve({ validTo: new Date(c.valid_to), authorizationError: s.authorizationError ? String(s.authorizationError) : undefined })
        s.end()
      })
      s.on('error', reject)
    })
    const day = 86400_000
    const expired = await compare(spec('cert-expired'), cert)
    expect(expired.before.authorizationError).toBeUndefined()
    expect(expired.before.validTo.getTime()).toBeGreaterThan(Date.now() + 300 * day)
    expect(expired.during.authorizationError).toBe('CERT_HAS_EXPIRED')
    expect(expired.after.authorizationError).toBeUndefined()
    const expiring = await compare(spec('cert-expiring'), cert)
    expect(expiring.during.authorizationError).toBeUndefined()
    expect(expiring.during.validTo.getTime()).toBeLessThan(Date.now() + 30 * day)
    expect(expiring.during.validTo.getTime()).toBeGreaterThan(Date.now())
    // Real kubectl refuses the expired certificate as it would on a real cluster.
    t.lab.setFault(spec('cert-expired'), true)
    try {
      const r = await t.kubectl(['get', 'nodes'], { reject: false })
      expect(r.exitCode).toBe(1)
      expect(r.stderr).toContain('certificate has expired')
    } finally {
      t.lab.setFault(spec('cert-expired'), false)
    }
  })

  it('disk-full: the node reports DiskPressure and gets the disk-pressure taint', async () => {
    const node = async () => {
      const n = await get('/api/v1/nodes/w-2')
      return { pressure: (n.status.conditions as Obj[]).find((c) => c.type === 'DiskPressure')!.status as string, taints: ((n.spec.taints ?? []) as Obj[]).map((x) => x.key as string) }
    }
    const r = await compare(spec('disk-full', 'w-2'), node)
    expect(r.before.pressure).toBe('False')
    expect(r.during.pressure).toBe('True')
    expect(r.during.taints).toContain('node.kubernetes.io/disk-pressure')
    expect(r.after.pressure).toBe('False')
  })

  it('node-not-ready-after-upgrade: after a service start the node stays NotReady; without it it becomes Ready', async () => {
    const ready = async () => ((await get('/api/v1/nodes/w-1')).status.conditions as Obj[]).find((c) => c.type === 'Ready')!
    model().serviceStarted('w-1', 'v1.30.4')
    await eventually(async () => (await ready()).status === 'True' || undefined, 10_000, 'w-1 Ready after a normal restart')
    expect((await get('/api/v1/nodes/w-1')).status.nodeInfo.kubeletVersion).toBe('v1.30.4')
    t.lab.setFault(spec('node-not-ready-after-upgrade', 'w-1'), true)
    model().serviceStarted('w-1', 'v1.30.4')
    // A negative signal: it is still NotReady after four times the lab's Ready delay (200ms) has passed.
    await new Promise((r) => setTimeout(r, 800))
    expect(await ready()).toMatchObject({ status: 'False', reason: 'KubeletNotReady' })
    t.lab.setFault(spec('node-not-ready-after-upgrade', 'w-1'), false)
    await eventually(async () => (await ready()).status === 'True' || undefined, 10_000, 'w-1 Ready after the fault is cleared')
  })

  it('etcd-unhealthy: /readyz and /livez fail with [-]etcd failed', async () => {
    const r = await compare(spec('etcd-unhealthy'), async () => t.https('/readyz?verbose'))
    const live = await compare(spec('etcd-unhealthy'), async () => (await t.https('/livez')).status)
    expect(live).toEqual({ before: 200, during: 500, after: 200 })
    expect(r.before.status).toBe(200)
    expect(r.during.status).toBe(500)
    expect(r.during.body).toContain('[-]etcd failed: reason withheld')
    expect(r.during.body.trim().split('\n').at(-1)).toBe('readyz check failed')
    expect(r.after.status).toBe(200)
  })

  it('pdb-blocks-drain: the PDB allows no disruption and eviction answers 429', async () => {
    const observe = async () => {
      const pdbs = (await get('/apis/policy/v1/poddisruptionbudgets')).items as Obj[]
      const pod = [...model().pods.values()].find((p) => p.app === 'web' && p.phase === 'Running' && !p.deletionTimestamp)!
      const evict = await t.https(`/api/v1/namespaces/default/pods/${pod.name}/eviction`, { method: 'POST', body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod.name, namespace: 'default' } } })
      return { allowed: pdbs.map((b) => b.status.disruptionsAllowed as number), code: evict.status, body: evict.body }
    }
    t.lab.setFault(spec('pdb-blocks-drain'), true)
    try {
      const during = await observe()
      expect(during.allowed).toContain(0)
      expect(during.code).toBe(429)
      expect(during.body).toContain("Cannot evict pod as it would violate the pod's disruption budget.")
    } finally {
      t.lab.setFault(spec('pdb-blocks-drain'), false)
    }
    const after = await observe() // no PDB on this topology's web: eviction allowed
    expect(after.code).toBe(201)
  })

  it('insufficient-capacity: an evicted pod cannot be placed again and is Pending with FailedScheduling', async () => {
    // Ready, not only Running: a replacement from an earlier test counts for the PDB only after the pod start delay.
    await eventually(() => [...model().pods.values()].filter((p) => p.app === 'web' && model().podReady(p)).length === 2 || undefined, 10_000, 'two Ready web pods')
    const allocBefore = (await get('/api/v1/nodes/w-1')).status.allocatable.cpu as string
    let cordoned: string | undefined
    t.lab.setFault(spec('insufficient-capacity'), true)
    try {
      expect((await get('/api/v1/nodes/w-1')).status.allocatable.cpu).not.toBe(allocBefore)
      const victim = [...model().pods.values()].find((p) => p.app === 'web' && p.phase === 'Running' && !p.deletionTimestamp)!
      // As in a drain, its node is cordoned first: once the evicted pod is gone its own room frees up there.
      model().patchNode(victim.nodeName!, { unschedulable: true })
      cordoned = victim.nodeName
      expect((await t.https(`/api/v1/namespaces/default/pods/${victim.name}/eviction`, { method: 'POST', body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: victim.name } } })).status).toBe(201)
      const pending = await eventually(async () => {
        const items = (await get('/api/v1/namespaces/default/pods?fieldSelector=status.phase%3DPending')).items as Obj[]
        return items.length ? items : undefined
      }, 10_000, 'a Pending pod')
      expect(pending[0]!.status.conditions[0]).toMatchObject({ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' })
      // kube-scheduler's message, as real kubectl reads it: every node counted under its first failing filter.
      const kubectl = labKubectl(() => t, 'lab')
      const events = JSON.parse((await kubectl(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${pending[0]!.metadata.name},reason=FailedScheduling`, '-o', 'json'])).stdout).items as Obj[]
      expect(events.map((e) => e.message)).toEqual([
        '0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 1 node(s) were unschedulable. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.',
      ])
    } finally {
      t.lab.setFault(spec('insufficient-capacity'), false)
      if (cordoned) model().patchNode(cordoned, { unschedulable: null })
    }
    await eventually(async () => ((await get('/api/v1/namespaces/default/pods?fieldSelector=status.phase%3DPending')).items as Obj[]).length === 0 || undefined, 10_000, 'the Pending pod to be scheduled after the fault is cleared')
  })

  it('apiserver-unavailable: real kubectl gets 503 ServiceUnavailable for the writes it names, the next N only', async () => {
    const kubectl = labKubectl(() => t, 'lab')
    t.lab.setFault({ ...spec('apiserver-unavailable'), params: { method: 'PATCH', path: '/api/v1/nodes/w-1', requests: 1 } }, true)
    try {
      // Reads and other nodes pass; the first cordon of w-1 is refused at the door, the second goes through.
      expect((await kubectl(['get', 'node', 'w-1', '-o', 'name'])).stdout).toBe('node/w-1')
      // As real kubectl against a real cluster: cordon prints the error and exits 0 (kubernetes/kubernetes#89008).
      const refused = await kubectl(['cordon', 'w-1'])
      expect(refused.stderr).toBe('error: unable to cordon node "w-1": the server is currently unable to handle the request')
      const patched = await kubectl(['label', 'node', 'w-2', 'chaos=1'])
      expect(patched.exitCode, patched.stderr).toBe(0)
      const cordoned = async () => (await kubectl(['get', 'node', 'w-1', '-o', 'jsonpath={.spec.unschedulable}'])).stdout
      expect(await cordoned()).toBe('')
      const again = await kubectl(['cordon', 'w-1'])
      expect(again.exitCode, again.stderr).toBe(0)
      expect(await cordoned()).toBe('true')
    } finally {
      t.lab.setFault(spec('apiserver-unavailable'), false)
      await kubectl(['uncordon', 'w-1'])
      await kubectl(['label', 'node', 'w-2', 'chaos-'])
    }
    // Without method, path or requests: every request, while the fault is on.
    const r = await compare(spec('apiserver-unavailable'), async () => (await kubectl(['get', '--raw', '/version'])).exitCode)
    expect(r).toEqual({ before: 0, during: 1, after: 0 })
  })

  it('params.for: a fault goes off by itself after that long (an outage of a known length), read with real kubectl', async () => {
    const kubectl = labKubectl(() => t, 'lab')
    const version = async () => (await kubectl(['get', '--raw', '/version'])).exitCode
    expect(() => t.lab.setFault({ ...spec('apiserver-unavailable'), params: { for: 'soon' } }, true)).toThrow(/params\.for must be a duration such as 15s, not "soon"/)
    expect(t.lab.status().clusters.find((c) => c.name === 'lab')!.faults).toEqual([])
    t.lab.setFault({ ...spec('apiserver-unavailable'), params: { for: '1500ms' } }, true)
    try {
      expect(await version()).toBe(1)
      await eventually(async () => ((await version()) === 0 ? true : undefined), 10_000, 'the API to answer again once params.for has passed')
      expect(t.lab.status().clusters.find((c) => c.name === 'lab')!.faults).toEqual([])
    } finally {
      t.lab.setFault(spec('apiserver-unavailable'), false)
    }
  })

  it('apiserver-slow with answer timeout: real kubectl gets 504 Timeout for the write it names, which was made all the same', async () => {
    const kubectl = labKubectl(() => t, 'lab')
    t.lab.setFault({ ...spec('apiserver-slow'), params: { method: 'PATCH', path: '/api/v1/nodes/w-2', requests: 1, answer: 'timeout', delay: '100ms' } }, true)
    const label = async () => (await kubectl(['get', 'node', 'w-2', '-o', 'jsonpath={.metadata.labels.chaos}'])).stdout
    try {
      expect(await label()).toBe('')
      const timedOut = await kubectl(['label', 'node', 'w-2', 'chaos=1'])
      expect(timedOut.exitCode).toBe(1)
      expect(timedOut.stderr).toBe('Error from server (Timeout): Timeout: request did not complete within requested timeout - context deadline exceeded')
      expect(await label()).toBe('1')
      // The next one is answered as usual.
      const again = await kubectl(['label', 'node', 'w-2', 'chaos=2', '--overwrite'])
      expect(again.exitCode, again.stderr).toBe(0)
      expect(await label()).toBe('2')
    } finally {
      t.lab.setFault(spec('apiserver-slow'), false)
      await kubectl(['label', 'node', 'w-2', 'chaos-'])
    }
  })

  it('apiserver-slow: every request waits for the configured delay', async () => {
    const timed = async () => {
      const start = performance.now()
      await t.https('/version')
      return performance.now() - start
    }
    const r = await compare({ ...spec('apiserver-slow'), params: { delay: '400ms' } }, timed)
    // A lower bound only (the server sleeps at least this long), never an upper bound on machine speed.
    expect(r.during).toBeGreaterThanOrEqual(400)
    expect(r.before).toBeLessThan(r.during)
  })
})
