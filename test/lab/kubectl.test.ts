import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execa } from 'execa'
import { eventually, smallTopology, startLab, type TestLab } from './helpers.js'

/** Real kubectl against the lab API server: what kupgrade's kubectl client and users will do with it. */
describe('lab API server with real kubectl', () => {
  let t: TestLab
  beforeAll(async () => {
    t = await startLab(smallTopology('127.0.30', { pdb: { minAvailable: 1 } }))
  })
  afterAll(async () => t?.stop())

  it('gets nodes as JSON with the distribution version and the Ready condition', async () => {
    const { stdout } = await t.kubectl(['get', 'nodes', '-o', 'json'])
    const list = JSON.parse(stdout) as { items: { metadata: { name: string }; status: { nodeInfo: { kubeletVersion: string }; conditions: { type: string; status: string; reason: string; message: string }[] } }[] }
    expect(list.items.map((n) => n.metadata.name)).toEqual(['cp-1', 'w-1', 'w-2'])
    expect(list.items[0]!.status.nodeInfo.kubeletVersion).toBe('v1.29.6')
    const ready = list.items[0]!.status.conditions.find((c) => c.type === 'Ready')
    expect(ready).toMatchObject({ status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' })
  })

  it('prints the default table for nodes and pods', async () => {
    const nodes = await t.kubectl(['get', 'nodes'])
    expect(nodes.stdout.split('\n')[0]).toMatch(/^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION$/)
    expect(nodes.stdout).toMatch(/cp-1\s+Ready\s+control-plane\s+\S+\s+v1\.29\.6/)
    const pods = await t.kubectl(['get', 'pods', '-A'])
    expect(pods.stdout.split('\n')[0]).toMatch(/^NAMESPACE\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/)
    expect(pods.stdout).toMatch(/default\s+web-\S+\s+1\/1\s+Running/)
    expect(pods.stdout).toMatch(/kube-system\s+kube-proxy-\S+\s+1\/1\s+Running/)
  })

  it('gets pods as JSON, with a field selector', async () => {
    const { stdout } = await t.kubectl(['get', 'pods', '-A', '-o', 'json', '--field-selector', 'spec.nodeName=w-1'])
    const pods = (JSON.parse(stdout) as { items: { spec: { nodeName: string } }[] }).items
    expect(pods.length).toBeGreaterThan(0)
    expect(pods.every((p) => p.spec.nodeName === 'w-1')).toBe(true)
  })

  it('cordons, drains and uncordons a node; evicted pods are rescheduled elsewhere', async () => {
    const cordon = await t.kubectl(['cordon', 'w-1'])
    expect(cordon.stdout).toContain('node/w-1 cordoned')
    expect((await t.kubectl(['get', 'node', 'w-1'])).stdout).toContain('Ready,SchedulingDisabled')
    const drain = await t.kubectl(['drain', 'w-1', '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=30s'])
    expect(drain.stdout).toContain('node/w-1 drained')
    expect(drain.stdout).toMatch(/pod\/web-\S+ evicted/)
    const onW1 = JSON.parse((await t.kubectl(['get', 'pods', '-n', 'default', '-o', 'json', '--field-selector', 'spec.nodeName=w-1'])).stdout) as { items: unknown[] }
    expect(onW1.items).toEqual([])
    const web = JSON.parse((await t.kubectl(['get', 'pods', '-n', 'default', '-o', 'json'])).stdout) as { items: { spec: { nodeName?: string }; status: { phase: string } }[] }
    expect(web.items.filter((p) => p.status.phase === 'Running').length).toBe(2)
    const uncordon = await t.kubectl(['uncordon', 'w-1'])
    expect(uncordon.stdout).toContain('node/w-1 uncordoned')
    expect((await t.kubectl(['get', 'node', 'w-1'])).stdout).not.toContain('SchedulingDisabled')
  })

  it('a PodDisruptionBudget that allows no disruption makes drain fail at its timeout', async () => {
    const model = [...t.lab.clusters.values()][0]!.model
    t.lab.setFault({ fault: 'pdb-blocks-drain', cluster: 'lab' }, true)
    try {
      const node = [...model.pods.values()].find((p) => p.app === 'web' && p.phase === 'Running')!.nodeName!
      const drain = await t.kubectl(['drain', node, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=3s'], { reject: false })
      expect(drain.exitCode).not.toBe(0)
      expect(drain.stderr).toContain('global timeout reached')
      expect(drain.stderr).toContain('disruption budget')
      await t.kubectl(['uncordon', node])
    } finally {
      t.lab.setFault({ fault: 'pdb-blocks-drain', cluster: 'lab' }, false)
    }
  })

  it('a wrong token gets 401 and kubectl says so', async () => {
    const r = await t.kubectl(['--token', 'not-the-token', 'get', 'nodes'], { reject: false })
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/Unauthorized|provide credentials/)
  })

  it('the kubeconfig authenticates with a client certificate; the token works too', async () => {
    const kubeconfig = await import('node:fs/promises').then((fs) => fs.readFile(join(t.dir, 'kubeconfig'), 'utf8'))
    expect(kubeconfig).toContain('client-certificate-data')
    const r = await t.kubectl(['--token', t.lab.token, 'get', 'nodes', '-o', 'name'])
    expect(r.stdout.split('\n')).toContain('node/cp-1')
  })

  it('creates, reads and conflicts on a Lease (the run lock)', async () => {
    const lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'kupgrade-lock', namespace: 'kube-system' }, spec: { holderIdentity: 'run-1', leaseDurationSeconds: 60 } }
    const file = join(t.dir, 'lease.json')
    await writeFile(file, JSON.stringify(lease))
    const created = await t.kubectl(['create', '-f', file])
    expect(created.stdout).toContain('lease.coordination.k8s.io/kupgrade-lock created')
    const again = await t.kubectl(['create', '-f', file], { reject: false })
    expect(again.exitCode).toBe(1)
    expect(again.stderr).toContain('AlreadyExists')
    const got = JSON.parse((await t.kubectl(['get', 'lease', '-n', 'kube-system', 'kupgrade-lock', '-o', 'json'])).stdout) as { spec: { holderIdentity: string }; metadata: { resourceVersion: string } }
    expect(got.spec.holderIdentity).toBe('run-1')
    const stale = { ...lease, metadata: { ...lease.metadata, resourceVersion: '1' }, spec: { holderIdentity: 'run-2' } }
    const conflict = await t.https('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kupgrade-lock', { method: 'PUT', body: stale })
    expect(conflict.status).toBe(409)
    const fresh = { ...lease, metadata: { ...lease.metadata, resourceVersion: got.metadata.resourceVersion }, spec: { holderIdentity: 'run-2' } }
    const updated = await t.https('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kupgrade-lock', { method: 'PUT', body: fresh })
    expect(updated.status).toBe(200)
    expect((await t.kubectl(['get', 'lease', '-n', 'kube-system', 'kupgrade-lock', '-o', 'jsonpath={.spec.holderIdentity}'])).stdout).toBe('run-2')
    await t.kubectl(['delete', 'lease', '-n', 'kube-system', 'kupgrade-lock'])
    expect((await t.kubectl(['get', 'lease', '-n', 'kube-system', 'kupgrade-lock'], { reject: false })).stderr).toContain('NotFound')
  })

  it('serves version, health with ?verbose, DaemonSets, Deployments, PDBs and events', async () => {
    const v = JSON.parse((await t.kubectl(['version', '-o', 'json'])).stdout) as { serverVersion: { gitVersion: string } }
    expect(v.serverVersion.gitVersion).toBe('v1.29.6')
    // /version is indented as the apiserver writes it (json.MarshalIndent), unlike objects.
    expect((await t.kubectl(['get', '--raw', '/version'])).stdout).toMatch(/^\{\n {2}"major": "1",\n {2}"minor": "29",\n {2}"gitVersion": "v1\.29\.6",\n/)
    const readyz = await t.kubectl(['get', '--raw', '/readyz?verbose'])
    expect(readyz.stdout).toContain('[+]etcd ok')
    expect(readyz.stdout.trim().split('\n').at(-1)).toBe('readyz check passed')
    expect((await t.kubectl(['get', 'ds', '-n', 'kube-system', 'kube-proxy', '-o', 'jsonpath={.spec.template.spec.containers[0].image}'])).stdout).toBe('registry.k8s.io/kube-proxy:v1.29.6')
    expect((await t.kubectl(['get', 'deploy', '-n', 'default'])).stdout).toMatch(/web\s+2\/2/)
    expect((await t.kubectl(['get', 'pdb', '-n', 'default', 'web', '-o', 'jsonpath={.status.disruptionsAllowed}'])).stdout).toBe('1')
    await eventually(async () => (await t.kubectl(['get', 'events', '-A'])).stdout.includes('Scheduled') || undefined, 10_000, 'Scheduled events')
  })

  it('serves pods with their tolerations as the apiserver does: the template\'s, and the 300 s not-ready/unreachable defaults', async () => {
    const tolerations = async (selector: string, ns = 'kube-system') =>
      JSON.parse((await t.kubectl(['get', 'pods', '-n', ns, '-l', selector, '-o', 'jsonpath={.items[0].spec.tolerations}'])).stdout)
    const defaults = ['not-ready', 'unreachable'].map((k) => ({ key: `node.kubernetes.io/${k}`, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }))
    // kubeadm's CoreDNS manifest: CriticalAddonsOnly and the control-plane taint (it may run on a control-plane node).
    expect(await tolerations('k8s-app=kube-dns')).toEqual([{ key: 'CriticalAddonsOnly', operator: 'Exists' }, { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }, ...defaults])
    expect((await t.kubectl(['get', 'deploy', '-n', 'kube-system', 'coredns', '-o', 'jsonpath={.spec.template.spec.tolerations[1].key}'])).stdout).toBe('node-role.kubernetes.io/control-plane')
    // A workload tolerates no taint of its own: only the defaults the admission plugin adds.
    expect(await tolerations('app=web', 'default')).toEqual(defaults)
    // A DaemonSet's pods tolerate everything (its template's Exists): no defaults added.
    expect(await tolerations('k8s-app=kube-proxy')).toEqual([{ operator: 'Exists' }])
  })

  // 1.27–1.29 use legacy discovery, 1.30+ aggregated discovery v2: both must work (lab findings).
  const sdk = '/usr/lib/google-cloud-sdk/bin'
  const versions = ['1.27', '1.28', '1.29', '1.30', '1.31', '1.33'].filter((v) => existsSync(`${sdk}/kubectl.${v}`))
  it.each(versions)('kubectl %s lists nodes (table) and drains through eviction', async (v) => {
    const run = (args: string[]) => execa(`${sdk}/kubectl.${v}`, ['--kubeconfig', `${t.dir}/kubeconfig`, '--cache-dir', `${t.dir}/cache-${v}`, ...args], { env: { HOME: t.dir }, timeout: 60_000 })
    expect((await run(['get', 'nodes'])).stdout).toMatch(/w-2\s+Ready\s+<none>/)
    const model = [...t.lab.clusters.values()][0]!.model
    const node = [...model.pods.values()].find((p) => p.app === 'web' && p.phase === 'Running' && !p.deletionTimestamp)!.nodeName!
    const drain = await run(['drain', node, '--ignore-daemonsets', '--timeout=30s'])
    expect(drain.stdout).toMatch(/pod\/web-\S+ evicted/) // without pods/eviction in /api/v1 kubectl would say "deleted"
    expect(drain.stdout).toContain(`node/${node} drained`)
    await run(['uncordon', node])
  })
})

describe('lab API server: a pod being deleted, read with real kubectl', () => {
  let t: TestLab
  beforeAll(async () => {
    t = await startLab(smallTopology('127.0.180'))
  })
  afterAll(async () => t?.stop())

  it('says when it is due to be gone: deletionTimestamp is the delete plus the grace period, as the apiserver sets it', async () => {
    const model = [...t.lab.clusters.values()][0]!.model
    // Its kubelet takes its time stopping it, so that kubectl reads it Terminating.
    ;(model.timing as { drainEvictionDelayMs: number }).drainEvictionDelayMs = 20_000
    const name = [...model.pods.values()].find((p) => p.app === 'web' && p.phase === 'Running')!.name
    const asked = Math.floor(Date.now() / 1000) * 1000
    await t.kubectl(['delete', 'pod', name, '--wait=false'])
    const pod = JSON.parse((await t.kubectl(['get', 'pod', name, '-o', 'json'])).stdout) as { metadata: { deletionTimestamp: string; deletionGracePeriodSeconds: number }; spec: { terminationGracePeriodSeconds: number } }
    expect([pod.metadata.deletionGracePeriodSeconds, pod.spec.terminationGracePeriodSeconds]).toEqual([30, 30])
    const due = Date.parse(pod.metadata.deletionTimestamp)
    expect(due).toBeGreaterThanOrEqual(asked + 30_000)
    expect(due).toBeLessThanOrEqual(Date.now() + 30_000)
    expect((await t.kubectl(['get', 'pod', name])).stdout).toMatch(new RegExp(`${name}\\s+0/1\\s+Terminating`))
  })

  it("kube-proxy's DaemonSet rolling to the upgraded control plane's version deletes its old pods gracefully, beside their replacements", async () => {
    const model = [...t.lab.clusters.values()][0]!.model
    ;(model.timing as { drainEvictionDelayMs: number }).drainEvictionDelayMs = 20_000
    type P = { metadata: { deletionTimestamp?: string }; spec: { nodeName: string; containers: { image: string }[] } }
    const proxies = async () => (JSON.parse((await t.kubectl(['get', 'pods', '-n', 'kube-system', '-l', 'k8s-app=kube-proxy', '-o', 'json'])).stdout) as { items: P[] }).items
    const before = await proxies()
    expect(before.map((p) => p.spec.containers[0]!.image)).toEqual(['cp-1', 'w-1', 'w-2'].map(() => 'registry.k8s.io/kube-proxy:v1.29.6'))
    model.controlPlaneUpgraded('cp-1', 'v1.30.4')
    const after = await proxies()
    const on = (node: string, deleting: boolean) => after.filter((p) => p.spec.nodeName === node && Boolean(p.metadata.deletionTimestamp) === deleting).map((p) => p.spec.containers[0]!.image)
    for (const node of ['cp-1', 'w-1', 'w-2']) {
      expect(on(node, true), node).toEqual(['registry.k8s.io/kube-proxy:v1.29.6'])
      expect(on(node, false), node).toEqual(['registry.k8s.io/kube-proxy:v1.30.4'])
    }
    expect((await t.kubectl(['get', 'pods', '-n', 'kube-system', '-l', 'k8s-app=kube-proxy'])).stdout).toMatch(/kube-proxy-\S+\s+0\/1\s+Terminating/)
  })
})
