import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TopologyInput } from '../../src/lab/topology.js'
import { eventually, KUBECTL, startLab, type TestLab } from './helpers.js'

/**
 * The lab apiserver as an honest oracle (issue 7 items 1, 3, 5, 11), with real kubectl as the client: watches that a
 * quiet resource does not hang, the registry's optimistic concurrency and validation, the objects real clients read,
 * and drains that meet real PDB arithmetic because replacement pods take time to become Ready.
 */
const NET = '127.0.55'

function topology(): TopologyInput {
  return {
    apiVersion: 'kupgrade.dev/v1alpha1', kind: 'LabTopology', metadata: { name: 'oracle' },
    spec: {
      mirror: ['v1.29.6', 'v1.30.4', 'v1.32.4'],
      timing: { serviceRestart: '100ms', readyDelay: '200ms', reboot: '300ms', drainEvictionDelay: '100ms', podStartDelay: '2s' },
      clusters: [
        {
          name: 'lab', distribution: 'kubeadm', version: 'v1.29.6', apiAddress: `${NET}.1`,
          nodes: [
            { name: 'cp-1', role: 'control-plane', address: `${NET}.101` },
            ...[1, 2, 3].map((i) => ({ name: `w-${i}`, role: 'worker' as const, address: `${NET}.${110 + i}` })),
          ],
          workloads: { deployments: [{ name: 'web', replicas: 3, requests: { cpu: '500m', memory: '256Mi' }, pdb: { minAvailable: 2 } }], coredns: { replicas: 1 } },
        },
        {
          name: 'new', distribution: 'k3s', version: 'v1.32.4', apiAddress: `${NET}.2`,
          nodes: [{ name: 'server-1', role: 'control-plane', address: `${NET}.121` }],
        },
      ],
    },
  }
}

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
const lines = (s: string): Obj[] => s.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Obj)

describe('lab apiserver as an oracle, with real kubectl', () => {
  let t: TestLab
  beforeAll(async () => {
    t = await startLab(topology())
  })
  afterAll(async () => t?.stop())

  describe('watches', () => {
    it('kubectl wait on a node that is already Ready returns "condition met" at once', async () => {
      const r = await t.kubectl(['wait', '--for=condition=Ready', 'node/cp-1', '--timeout=10s'], { reject: false })
      expect(r.stderr).toBe('')
      expect(r.stdout).toBe('node/cp-1 condition met')
      expect(r.exitCode).toBe(0)
    })

    it('kubectl rollout status follows a Deployment to "successfully rolled out"', async () => {
      const r = await t.kubectl(['rollout', 'status', 'deployment/web', '--timeout=20s'], { reject: false })
      expect(r.stdout).toContain('deployment "web" successfully rolled out')
      expect(r.exitCode).toBe(0)
    })

    it('kubectl get -w prints the list, then the change a cordon makes', async () => {
      const watch = execa(KUBECTL, ['--kubeconfig', join(t.dir, 'kubeconfig'), '--context', 'lab', '--cache-dir', join(t.dir, 'kube-cache'), 'get', 'nodes', '-w'], { reject: false, env: { HOME: t.dir } })
      let out = ''
      watch.stdout!.on('data', (d: Buffer) => (out += d.toString()))
      try {
        await eventually(() => /w-3\s+Ready\s/.test(out) || undefined, 15_000, 'the initial list')
        await t.kubectl(['cordon', 'w-3'])
        await eventually(() => /w-3\s+Ready,SchedulingDisabled/.test(out) || undefined, 15_000, 'the cordon in the watch')
      } finally {
        watch.kill()
        await watch
        await t.kubectl(['uncordon', 'w-3'])
      }
    })

    it('honours timeoutSeconds and allowWatchBookmarks: the stream ends on time with a BOOKMARK before it', async () => {
      const r = await t.kubectl(['get', '--raw', '/api/v1/namespaces/default/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=3'])
      const events = lines(r.stdout)
      expect(events.filter((e) => e.type === 'ADDED').map((e) => e.object.metadata.name)).toHaveLength(3)
      expect(events.at(-1)).toMatchObject({ type: 'BOOKMARK', object: { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: expect.stringMatching(/^\d+$/) } } })
      const plain = await t.kubectl(['get', '--raw', '/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=3'])
      expect(lines(plain.stdout).some((e) => e.type === 'BOOKMARK')).toBe(false)
    })

    it('sendInitialEvents: refused by a 1.29 apiserver (WatchList off), served by 1.32 with the initial-events-end bookmark', async () => {
      const q = 'watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=2'
      const old = await t.https(`/api/v1/nodes?${q}`)
      expect(old.status).toBe(422)
      expect(JSON.parse(old.body).message).toBe('ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled')
      const noMatch = await t.https('/api/v1/nodes?watch=1&sendInitialEvents=true&timeoutSeconds=1')
      expect(JSON.parse(noMatch.body).message).toContain('resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan')
      const r = await t.kubectl(['--context', 'new', 'get', '--raw', `/api/v1/nodes?${q}`])
      const events = lines(r.stdout)
      expect(events.map((e) => e.type)).toEqual(['ADDED', 'BOOKMARK'])
      expect(events[1]!.object.metadata.annotations).toEqual({ 'k8s.io/initial-events-end': 'true' })
    })

    it('serves watches on every resource it lists', async () => {
      const paths = [
        '/api/v1/namespaces', '/api/v1/events', '/api/v1/services', '/api/v1/configmaps', '/api/v1/secrets', '/api/v1/endpoints',
        '/apis/apps/v1/deployments', '/apis/apps/v1/daemonsets', '/apis/apps/v1/replicasets', '/apis/policy/v1/poddisruptionbudgets',
        '/apis/discovery.k8s.io/v1/endpointslices', '/apis/coordination.k8s.io/v1/leases',
      ]
      const results = await Promise.all(paths.map((p) => t.https(`${p}?watch=1&timeoutSeconds=1`)))
      results.forEach((r, i) => {
        expect(r.status, paths[i]).toBe(200)
        expect(lines(r.body).length, paths[i]).toBeGreaterThan(0)
        expect(lines(r.body).every((e) => e.type === 'ADDED'), paths[i]).toBe(true)
      })
    })
  })

  describe('optimistic concurrency and validation', () => {
    const lease = (name: string, holder: string, extra: Obj = {}) => JSON.stringify({
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: 'kube-system', ...(extra.metadata ?? {}) },
      spec: { holderIdentity: holder, leaseDurationSeconds: 15, ...(extra.spec ?? {}) },
    })
    const file = async (name: string, body: string) => {
      const f = join(t.dir, `${name}.json`)
      await writeFile(f, body)
      return f
    }
    const holder = async (name: string) => JSON.parse((await t.kubectl(['get', 'lease', name, '-n', 'kube-system', '-o', 'json'])).stdout).spec.holderIdentity as string
    const rv = async (name: string) => JSON.parse((await t.kubectl(['get', 'lease', name, '-n', 'kube-system', '-o', 'json'])).stdout).metadata.resourceVersion as string

    it('a Lease update needs a resourceVersion (422), a stale one is a 409, a current one applies', async () => {
      await t.kubectl(['create', '-f', await file('lock', lease('lock', 'a'))])
      // kubectl replace fills in the server's resourceVersion itself; a client's Update without one is refused.
      const bare = await t.https('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/lock', { method: 'PUT', body: JSON.parse(lease('lock', 'b')) })
      expect(bare.status).toBe(422)
      expect(JSON.parse(bare.body).message).toBe('leases.coordination.k8s.io "lock" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update')
      expect(await holder('lock')).toBe('a')
      const first = await rv('lock')
      await t.kubectl(['replace', '-f', await file('lock-b', lease('lock', 'b', { metadata: { resourceVersion: first } }))])
      expect(await holder('lock')).toBe('b')
      const stale = await t.kubectl(['replace', '-f', await file('lock-c', lease('lock', 'c', { metadata: { resourceVersion: first } }))], { reject: false })
      expect(stale.stderr).toContain('Operation cannot be fulfilled on leases.coordination.k8s.io "lock": the object has been modified; please apply your changes to the latest version and try again')
      expect(await holder('lock')).toBe('b')
    })

    it('a PUT of a missing Lease creates it (201)', async () => {
      const put = await t.https('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/ghost', { method: 'PUT', body: JSON.parse(lease('ghost', 'x')) })
      expect(put.status).toBe(201)
      expect(await holder('ghost')).toBe('x')
    })

    it('a merge patch with a stale resourceVersion is a 409; a JSON patch whose test fails is a 422 and changes nothing', async () => {
      const stale = await t.kubectl(['patch', 'lease', 'lock', '-n', 'kube-system', '--type=merge', '-p', '{"metadata":{"resourceVersion":"1"},"spec":{"holderIdentity":"thief"}}'], { reject: false })
      expect(stale.stderr).toContain('Error from server (Conflict): Operation cannot be fulfilled on leases.coordination.k8s.io "lock": the object has been modified')
      const test = await t.kubectl(['patch', 'lease', 'lock', '-n', 'kube-system', '--type=json', '-p', '[{"op":"test","path":"/spec/holderIdentity","value":"nobody"},{"op":"replace","path":"/spec/holderIdentity","value":"thief"}]'], { reject: false })
      expect(test.exitCode).toBe(1)
      expect(test.stderr).toContain('the server rejected our request due to an error in our request')
      expect(await holder('lock')).toBe('b')
      await t.kubectl(['patch', 'lease', 'lock', '-n', 'kube-system', '--type=json', '-p', '[{"op":"test","path":"/spec/holderIdentity","value":"b"},{"op":"replace","path":"/spec/holderIdentity","value":"c"}]'])
      expect(await holder('lock')).toBe('c')
    })

    it('a DELETE with a stale precondition is a 409 and the Lease stays', async () => {
      const current = await rv('lock')
      const del = await t.https('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/lock', { method: 'DELETE', body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { resourceVersion: '1' } } })
      expect(del.status).toBe(409)
      expect(JSON.parse(del.body).message).toBe(`Operation cannot be fulfilled on leases.coordination.k8s.io "lock": Precondition failed: ResourceVersion in precondition: 1, ResourceVersion in object meta: ${current}`)
      expect(await holder('lock')).toBe('c')
      const ok = await t.https('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/lock', { method: 'DELETE', body: { preconditions: { resourceVersion: current } } })
      expect(ok.status).toBe(200)
    })

    it('refuses leaseDurationSeconds < 1 (422)', async () => {
      const r = await t.kubectl(['create', '-f', await file('bad', lease('bad', 'a', { spec: { leaseDurationSeconds: 0 } }))], { reject: false })
      expect(r.stderr).toContain('The Lease "bad" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0')
      expect((await t.https('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/bad')).status).toBe(404)
    })

    it('a stale resourceVersion is a 409 on Nodes and Pods too', async () => {
      const node = await t.kubectl(['patch', 'node', 'w-1', '--type=merge', '-p', '{"metadata":{"resourceVersion":"1","labels":{"x":"y"}}}'], { reject: false })
      expect(node.stderr).toContain('Operation cannot be fulfilled on nodes "w-1": the object has been modified')
      expect(JSON.parse((await t.kubectl(['get', 'node', 'w-1', '-o', 'json'])).stdout).metadata.labels.x).toBeUndefined()
      const pod = JSON.parse((await t.kubectl(['get', 'pods', '-n', 'default', '-o', 'json'])).stdout).items[0].metadata
      const del = await t.https(`/api/v1/namespaces/default/pods/${pod.name}`, { method: 'DELETE', body: { preconditions: { resourceVersion: '1' } } })
      expect(del.status).toBe(409)
      expect(JSON.parse(del.body).message).toContain(`Operation cannot be fulfilled on pods "${pod.name}": Precondition failed: ResourceVersion in precondition: 1`)
    })
  })

  describe('objects real clients read', () => {
    it('kubeadm-config carries the cluster version; kube-proxy its mode', async () => {
      const cc = await t.kubectl(['get', 'configmap', 'kubeadm-config', '-n', 'kube-system', '-o', 'jsonpath={.data.ClusterConfiguration}'])
      expect(cc.stdout).toMatch(/^kind: ClusterConfiguration$/m)
      expect(cc.stdout).toMatch(/^kubernetesVersion: v1\.29\.6$/m)
      const kp = await t.kubectl(['get', 'configmap', 'kube-proxy', '-n', 'kube-system', '-o', 'jsonpath={.data.config\\.conf}'])
      expect(kp.stdout).toMatch(/^mode: ""$/m)
      const k3s = await t.kubectl(['--context', 'new', 'get', 'configmap', 'kube-proxy', '-n', 'kube-system'], { reject: false })
      expect(k3s.stderr).toContain('configmaps "kube-proxy" not found')
    })

    it('lists Secrets', async () => {
      expect((await t.kubectl(['get', 'secrets', '-A'])).stdout).toMatch(/kube-system\s+bootstrap-token-\w{6}\s+bootstrap\.kubernetes\.io\/token\s+5\s/)
      expect((await t.kubectl(['--context', 'new', 'get', 'secrets', '-n', 'kube-system'])).stdout).toMatch(/server-1\.node-password\.k3s\s+Opaque/)
    })

    it('the kubernetes Endpoints and EndpointSlice name the serving apiserver', async () => {
      const ep = JSON.parse((await t.kubectl(['get', 'endpoints', 'kubernetes', '-o', 'json'])).stdout)
      expect(ep.subsets).toEqual([{ addresses: [{ ip: `${NET}.101` }], ports: [{ name: 'https', port: 6443, protocol: 'TCP' }] }])
      const slices = JSON.parse((await t.kubectl(['get', 'endpointslices', '-n', 'default', '-l', 'kubernetes.io/service-name=kubernetes', '-o', 'json'])).stdout)
      expect(slices.items.map((s: Obj) => s.endpoints.map((e: Obj) => e.addresses[0]))).toEqual([[`${NET}.101`]])
    })

    it('ReplicaSets own the Deployment pods', async () => {
      const rs = JSON.parse((await t.kubectl(['get', 'rs', '-n', 'default', '-o', 'json'])).stdout).items as Obj[]
      expect(rs.map((r) => r.metadata.name)).toEqual([expect.stringMatching(/^web-\w+$/)])
      expect(rs[0]!.metadata.ownerReferences[0]).toMatchObject({ kind: 'Deployment', name: 'web' })
      const pods = JSON.parse((await t.kubectl(['get', 'pods', '-n', 'default', '-l', 'app=web', '-o', 'json'])).stdout).items as Obj[]
      expect(pods.every((p) => p.metadata.ownerReferences[0].uid === rs[0]!.metadata.uid)).toBe(true)
      expect(rs[0]!.metadata.uid).not.toBe(rs[0]!.metadata.ownerReferences[0].uid)
    })
  })

  describe('drains against minAvailable', () => {
    it('a second drain gets 429s until the first drain\'s replacement pod is Ready, then completes', async () => {
      // web: 3 replicas spread over w-1..w-3, minAvailable 2. Draining w-1 evicts one; its replacement runs at once
      // but is Ready only after the pod start delay (2s), so w-2's pod may not go yet.
      const first = await t.kubectl(['drain', 'w-1', '--ignore-daemonsets', '--timeout=30s'])
      expect(first.stdout).toContain('node/w-1 drained')
      const second = await t.kubectl(['drain', 'w-2', '--ignore-daemonsets', '--timeout=30s'], { reject: false })
      expect(second.stderr).toMatch(/error when evicting pods\/"web-\S+" -n "default" \(will retry after 5s\): Cannot evict pod as it would violate the pod's disruption budget\./)
      expect(second.stdout).toContain('node/w-2 drained')
      expect(second.exitCode).toBe(0)
    })
  })
})
