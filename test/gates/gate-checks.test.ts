import { getEventListeners } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { execa } from 'execa'
import type { Pod } from 'kubernetes-types/core/v1.js'
import { describe, expect, it } from 'vitest'
import { RemoteCommandError } from '../../src/errors.js'
import { capacityGate } from '../../src/gates/checks/capacity.js'
import { toleratesNode } from '../../src/gates/read/workloads.js'
import { commandGate } from '../../src/gates/checks/command.js'
import { controlPlaneHaGate } from '../../src/gates/checks/control-plane-ha.js'
import { diskSpaceGate } from '../../src/gates/checks/disk-space.js'
import { eventStormGate } from '../../src/gates/checks/event-storm.js'
import { judgeIptablesNode } from '../../src/gates/checks/iptables-backend.js'
import { pendingPodsGate } from '../../src/gates/checks/pending-pods.js'
import { judgePod, systemPodsGate } from '../../src/gates/checks/system-pods.js'
import { prometheusGate } from '../../src/gates/checks/prometheus.js'
import { upgradePathGate } from '../../src/gates/checks/upgrade-path.js'
import { objectsOnRemovedApis, requestedRemovedApis, type ObjectMeta } from '../../src/gates/checks/removed-apis.js'
import { parsePrometheus } from '../../src/gates/read/prom.js'
import { REMOVED_APIS } from '../../src/gates/removed-apis-table.js'
import { checkOnce } from '../../src/gates/run.js'
import type { GateContext } from '../../src/gates/types.js'
import type { KubectlClient } from '../../src/transport/kubectl/client.js'
import type { Transport } from '../../src/transport/types.js'

/**
 * The gates lab-check-more.e2e.test.ts drives end to end, judged here on the tools' own output formats: iptables(8)
 * and iptables-save, core/v1 Events as the apiserver serves events.k8s.io/v1 ones (eventTime + series) and old ones
 * (count + lastTimestamp), Pods the scheduler could not place, the apiserver's /metrics text, last-applied
 * annotations as kubectl writes them, and the Prometheus HTTP API's JSON.
 */
const fixture = (f: string) => readFileSync(join(import.meta.dirname, 'fixtures', f), 'utf8')
const kubectlJson = (docs: Record<string, unknown>) => ({ json: async (args: string[]) => docs[args[1]!] ?? { items: [] } }) as unknown as KubectlClient
const ctx = (kubectl: KubectlClient, now = '2024-12-04T10:10:00Z', o: Partial<GateContext> = {}): GateContext =>
  ({ cluster: 'prod', distribution: 'kubeadm', scope: 'cluster', nodes: [], ssh: {} as Transport, kubectl, now: () => new Date(now), ...o })

describe('iptables-backend on one node', () => {
  /** The gate's own count: its script greps the save tool's `mangle` table for the kubelet's two chains. */
  const hintCount = async (save: string) => (await execa('grep', ['-cE', '^:(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY) '], { input: save, reject: false })).stdout.trim()
  const script = (version: string, legacy: string, nft: string, mode = 'iptables') => `@@version\n${version}\n@@legacy\n${legacy}\n@@nft\n${nft}\n@@mode\n${mode}\n`

  it('chains where the host’s iptables looks pass; chains in the other backend fail, naming both', async () => {
    const legacy = await hintCount(fixture('iptables-1.8.7-legacy-save-mangle.txt'))
    expect(legacy).toBe('2')
    const none = await hintCount('') // iptables-nft-save with no tables prints nothing
    expect(none).toBe('0')
    expect(judgeIptablesNode('w-1', script('iptables v1.8.7 (legacy)', legacy, none))).toMatchObject({ host: 'legacy', finding: { status: 'pass' } })
    // Ubuntu 22.04 after `update-alternatives --set iptables /usr/sbin/iptables-nft`, kube-proxy still on legacy.
    const j = judgeIptablesNode('w-1', script('iptables v1.8.7 (nf_tables)', legacy, none))
    expect(j).toMatchObject({ host: 'nf_tables', finding: { status: 'fail', problem: 'w-1: the kubelet / kube-proxy (mode iptables) use legacy, host iptables is nf_tables' } })
    expect(j.finding.observed).toBe('iptables -V: iptables v1.8.7 (nf_tables); hint chains legacy=2 nf_tables=0; kube-proxy mode iptables')
  })

  it('both backends holding the chains fail; ipvs mode is judged like iptables mode; nftables mode does not use iptables', () => {
    expect(judgeIptablesNode('w-2', script('iptables v1.8.9 (nf_tables)', '2', '2')).finding).toMatchObject({ status: 'fail', problem: 'w-2: Kubernetes chains in both legacy and nf_tables' })
    expect(judgeIptablesNode('w-2', script('iptables v1.8.9 (nf_tables)', '2', '0', 'ipvs')).finding.status).toBe('fail')
    expect(judgeIptablesNode('w-2', script('iptables v1.8.9 (nf_tables)', '2', '0', 'nftables')).finding.status).toBe('pass')
    // iptables 1.6 (no backend in -V) is legacy; no iptables at all is unknown, never a pass.
    expect(judgeIptablesNode('w-3', script('iptables v1.6.1', '2', '')).host).toBe('legacy')
    expect(judgeIptablesNode('w-3', script('bash: iptables: command not found', '', '')).finding).toMatchObject({ status: 'unknown', problem: 'w-3: iptables backend unreadable' })
  })
})

describe('event-storm on the apiserver’s events', () => {
  const events = JSON.parse(fixture('events-1.31-failedscheduling.json')) as { items: unknown[] }

  it('counts events.k8s.io/v1 series (eventTime, series.count) and old aggregated events (count, lastTimestamp) inside the window', async () => {
    const r = await eventStormGate.check(ctx(kubectlJson({ events })), { window: '10m', maxFailedScheduling: 10, maxWarnings: 500 })
    // 14 (series) + 1 (first occurrence: no series, no count); the 07:00 event is outside the 10m window.
    expect(r.status).toBe('fail')
    expect(r.summary).toBe('15 FailedScheduling events in 10m (max 10)')
    expect(r.evidence[0]!.observed).toBe('15 FailedScheduling: FailedScheduling Pod/shop/web-7d4b9c8f6d-x2x9k ×14; FailedScheduling Pod/shop/web-7d4b9c8f6d-q7m2p ×1')
    expect(r.evidence[1]!.observed).toBe('24 Warning events (max 500)') // + the kubelet's BackOff ×9
  })

  it('under the maximum it passes; once the storm is older than the window it passes too', async () => {
    expect((await eventStormGate.check(ctx(kubectlJson({ events })), { window: '10m', maxFailedScheduling: 20, maxWarnings: 500 })).status).toBe('pass')
    const later = await eventStormGate.check(ctx(kubectlJson({ events }), '2024-12-04T11:00:00Z'), { window: '10m', maxFailedScheduling: 0, maxWarnings: 0 })
    expect(later).toMatchObject({ status: 'pass', summary: '0 FailedScheduling, 0 warnings in 10m' })
  })
})

describe('pending-pods on the scheduler’s verdict', () => {
  const pending = (name: string, scheduled?: { reason: string; message: string }, labels: Record<string, string> = {}): Pod => ({
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'shop', labels },
    spec: { containers: [{ name: 'app', image: 'nginx:1.27' }] },
    status: { phase: 'Pending', qosClass: 'Burstable', ...(scheduled ? { conditions: [{ type: 'PodScheduled', status: 'False', lastProbeTime: null as unknown as string, lastTransitionTime: '2024-12-04T09:58:12Z', ...scheduled }] } : {}) },
  })

  it('names unschedulable pods with the scheduler’s message; a probe pod of kupgrade’s own is not counted', async () => {
    const items = [
      pending('web-7d4b9c8f6d-x2x9k', { reason: 'Unschedulable', message: '0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.' }),
      pending('kupgrade-probe-dns-0a1b2c', undefined, { 'app.kubernetes.io/managed-by': 'kupgrade' }),
    ]
    const r = await pendingPodsGate.check(ctx(kubectlJson({ pods: { items } })), { max: 0 })
    expect(r).toMatchObject({ status: 'fail', summary: '1 pods Pending (max 0)' })
    expect(r.evidence[0]!.observed).toBe('1 Pending: shop/web-7d4b9c8f6d-x2x9k Unschedulable: 0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.')
    expect((await pendingPodsGate.check(ctx(kubectlJson({ pods: { items } })), { max: 1 })).status).toBe('pass')
  })
})

describe('capacity: the sets of nodes the plan drains together', () => {
  // kubeadm: the control-plane node is tainted (the pods do not tolerate it); two workers with one web pod each.
  const node = (name: string, cp = false) => ({
    metadata: { name }, spec: cp ? { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] } : {},
    status: { allocatable: { cpu: '2', memory: '4Gi' }, conditions: [{ type: 'Ready', status: 'True' }] },
  })
  const pod = (name: string, nodeName: string): Pod => ({
    metadata: { name, namespace: 'shop', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-5d8f', uid: 'rs-1', controller: true }] },
    spec: { nodeName, containers: [{ name: 'web', image: 'nginx:1.27', resources: { requests: { cpu: '500m', memory: '256Mi' } } }], tolerations: DEFAULT_TOLERATIONS },
    status: { phase: 'Running' },
  })
  // What the apiserver's DefaultTolerationSeconds adds to every pod: they tolerate no NoSchedule taint.
  const DEFAULT_TOLERATIONS = ['not-ready', 'unreachable'].map((k) => ({ key: `node.kubernetes.io/${k}`, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }))
  // CoreDNS as kubeadm deploys it: it tolerates the control-plane taint.
  const coredns: Pod = {
    metadata: { name: 'coredns-76f75df574-q2x7k', namespace: 'kube-system', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'coredns-76f75df574', uid: 'rs-2', controller: true }] },
    spec: { nodeName: 'w-1', containers: [{ name: 'coredns', image: 'registry.k8s.io/coredns/coredns:v1.11.1', resources: { requests: { cpu: '100m', memory: '70Mi' } } }], tolerations: [{ key: 'CriticalAddonsOnly', operator: 'Exists' }, { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' , operator: 'Exists' }, ...DEFAULT_TOLERATIONS] },
    status: { phase: 'Running' },
  }
  const kubectl = {
    nodes: async () => ({ items: [node('cp-1', true), node('w-1'), node('w-2')] }),
    json: async (args: string[]) => (args[1] === 'pods' ? { items: [pod('web-5d8f-a', 'w-1'), pod('web-5d8f-b', 'w-2'), coredns] } : { items: [] }),
  } as unknown as KubectlClient
  const nodes = ['cp-1', 'w-1', 'w-2'].map((name) => ({ name, role: name === 'cp-1' ? 'control-plane' as const : 'worker' as const, target: {} as never }))
  const at = (o: Partial<GateContext>) => ctx(kubectl, undefined, { nodes, ...o })

  it('a batch of both workers leaves the workloads nowhere (the control plane is tainted): it fails, naming the batch and them', async () => {
    const r = await capacityGate.check(at({ drainGroups: () => [['cp-1'], ['w-1', 'w-2']] }), {})
    expect(r.status).toBe('fail')
    // CoreDNS tolerates the control plane's taint and has room there; the web pods do not.
    expect(r.summary).toBe('draining w-1 + w-2: what 2 of its 3 pods request does not fit elsewhere')
    expect(r.evidence.find((e) => e.status === 'fail')!.observed).toBe('3 pods requesting 1100m CPU / 582.0 MiB; free on 1 other schedulable node(s) they tolerate: 2000m CPU / 4.0 GiB; no node with room for 2 of them: shop/web-5d8f-a (500m / 256.0 MiB), shop/web-5d8f-b (500m / 256.0 MiB)')
  })

  it('taints are matched as the scheduler matches tolerations: key, Exists or an equal value, the effect or none', () => {
    const n = (taints: { key: string; value?: string; effect: string }[]) => ({ metadata: { name: 'n' }, spec: { taints } })
    const p = (tolerations: NonNullable<Pod['spec']>['tolerations']): Pod => ({ spec: { containers: [], tolerations } })
    const dedicated = n([{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }])
    expect(toleratesNode(p([]), n([]))).toBe(true)
    expect(toleratesNode(p([]), dedicated)).toBe(false)
    expect(toleratesNode(p([{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' }]), dedicated)).toBe(true)
    expect(toleratesNode(p([{ key: 'dedicated', value: 'web' }]), dedicated)).toBe(false)
    expect(toleratesNode(p([{ key: 'dedicated', operator: 'Exists' }]), dedicated)).toBe(true)
    expect(toleratesNode(p([{ key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }]), dedicated)).toBe(false)
    expect(toleratesNode(p([{ operator: 'Exists' }]), dedicated)).toBe(true)
    // PreferNoSchedule does not keep a pod off: nothing to tolerate.
    expect(toleratesNode(p([]), n([{ key: 'spot', effect: 'PreferNoSchedule' }]))).toBe(true)
  })

  it('one worker at a time fits on the other: it passes, each set told', async () => {
    const r = await capacityGate.check(at({ drainGroups: () => [['cp-1'], ['w-1'], ['w-2']] }), {})
    expect(r.status).toBe('pass')
    expect(r.summary).toBe('every drain the plan makes (3 sets of nodes, up to 1 at once) fits on the other nodes')
    expect(r.evidence.map((e) => e.source.replace(/^.*draining /, ''))).toEqual(['cp-1', 'w-1', 'w-2'])
  })

  it('nodesAtOnce, when given, pairs each node with the heaviest others instead', async () => {
    const r = await capacityGate.check(at({ drainGroups: () => [['cp-1'], ['w-1'], ['w-2']] }), { nodesAtOnce: 2 })
    expect(r.status).toBe('fail')
    expect(r.evidence.filter((e) => e.status === 'fail').map((e) => e.source.replace(/^.*draining /, ''))).toEqual(['w-1 + w-2', 'w-2 + w-1'])
  })
})

describe('system-pods on kube-system Pods as the apiserver serves them', () => {
  const pod = (name: string, app: string, ready: boolean, o: { waiting?: string; startTime?: string } = {}): Pod => ({
    metadata: { name, namespace: 'kube-system', labels: { 'k8s-app': app } },
    spec: { nodeName: 'w-1', containers: [{ name: app }] },
    status: {
      phase: 'Running', startTime: o.startTime ?? '2024-12-04T09:00:00Z',
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
      containerStatuses: [{ name: app, ready, restartCount: o.waiting ? 7 : 0, image: app, imageID: '', state: o.waiting ? { waiting: { reason: o.waiting } } : { running: {} } }],
    },
  })

  /** `kubectl get pods -n kube-system -o json`, the client's pods() */
  const podsIn = (items: Pod[]) => ({ pods: async (ns: string) => ({ items: ns === 'kube-system' ? items : [] }) }) as unknown as KubectlClient

  it('counts the pods it judged (the CoreDNS check is not a pod); a crash-looping CoreDNS pod fails both ways', async () => {
    const healthy = [pod('coredns-76f75df574-8xk2p', 'kube-dns', true), pod('coredns-76f75df574-q9wzl', 'kube-dns', true), pod('kube-proxy-7vjmt', 'kube-proxy', true)]
    const ok = await systemPodsGate.check(ctx(podsIn(healthy)), { namespaces: ['kube-system'] })
    expect(ok).toMatchObject({ status: 'pass', summary: '3 system pods Running and Ready' })
    expect(ok.evidence.map((e) => e.observed)).toContain('2/2 CoreDNS pods Ready')
    const crashing = [healthy[0]!, pod('coredns-76f75df574-q9wzl', 'kube-dns', false, { waiting: 'CrashLoopBackOff' }), healthy[2]!]
    const bad = await systemPodsGate.check(ctx(podsIn(crashing)), { namespaces: ['kube-system'] })
    expect(bad.status).toBe('fail')
    expect(bad.summary).toMatch(/kube-system\/coredns-76f75df574-q9wzl CrashLoopBackOff/)
    expect(bad.summary).toMatch(/CoreDNS 1\/2 Ready/)
    // Each observation says how it was judged, what failed first: a report folds those that held into a count.
    expect(bad.evidence.map((e) => [e.status, e.source])).toEqual([
      ['fail', 'kubectl get pod kube-system/coredns-76f75df574-q9wzl (node w-1)'],
      ['fail', 'kubectl get pods -n kube-system -l k8s-app=kube-dns'],
      ['pass', 'kubectl get pod kube-system/coredns-76f75df574-8xk2p (node w-1)'],
      ['pass', 'kubectl get pod kube-system/kube-proxy-7vjmt (node w-1)'],
    ])
  })
})

describe('system-pods: CoreDNS with a replica starting', () => {
  const dns = (name: string, ready: boolean, startTime: string): Pod => ({
    metadata: { name, namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } },
    spec: { nodeName: 'cp-1', containers: [{ name: 'coredns' }] },
    status: { phase: 'Running', startTime, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }], containerStatuses: [{ name: 'coredns', ready, restartCount: 0, image: 'coredns', imageID: '', state: { running: {} } }] },
  })
  const check = (items: Pod[]) => systemPodsGate.check(ctx({ pods: async (ns: string) => ({ items: ns === 'kube-system' ? items : [] }) } as unknown as KubectlClient), { namespaces: ['kube-system'] })
  // ctx's clock: 10:10:00. One replica serving since 09:00, the other started 20 s ago (a rollout, or evicted by a drain).
  const serving = dns('coredns-7c65d6cfc9-4mh2x', true, '2024-12-04T09:00:00Z')

  it('a new replica not Ready yet while another serves is a warn, not a failure', async () => {
    const r = await check([serving, dns('coredns-7c65d6cfc9-9zq8w', false, '2024-12-04T10:09:40Z')])
    expect(r.status).toBe('warn')
    expect(r.evidence.find((e) => e.source === 'kubectl get pods -n kube-system -l k8s-app=kube-dns')).toMatchObject({ status: 'warn', observed: '1/2 CoreDNS pods Ready, 1 starting' })
  })

  it('a replica not Ready for more than a minute, or none Ready at all, fails', async () => {
    expect((await check([serving, dns('coredns-7c65d6cfc9-9zq8w', false, '2024-12-04T10:05:00Z')])).summary).toMatch(/CoreDNS 1\/2 Ready/)
    const none = await check([dns('coredns-7c65d6cfc9-4mh2x', false, '2024-12-04T10:09:40Z'), dns('coredns-7c65d6cfc9-9zq8w', false, '2024-12-04T10:09:45Z')])
    expect(none.status).toBe('fail')
    expect(none.summary).toMatch(/CoreDNS 0\/2 Ready/)
  })
})

describe('system-pods at a node of a batch', () => {
  it('leaves out the pods on the other nodes of the batch still under way, and says so', async () => {
    const pod = (name: string, node: string, ready: boolean): Pod => ({
      metadata: { name, namespace: 'kube-system', labels: { 'k8s-app': name.startsWith('coredns') ? 'kube-dns' : 'kube-proxy' } },
      spec: { nodeName: node, containers: [{ name: 'c' }] },
      status: { phase: 'Running', startTime: '2024-12-04T09:00:00Z', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }], containerStatuses: [{ name: 'c', ready, restartCount: 0, image: 'c', imageID: '', state: { running: {} } }] },
    })
    // w-2 reboots beside w-1: its kube-proxy pod is not Ready while its kubelet is down. w-4, also under way, runs none.
    const items = [pod('coredns-x7k2p', 'w-1', true), pod('kube-proxy-a1', 'w-1', true), pod('kube-proxy-b2', 'w-2', false), pod('kube-proxy-c3', 'w-3', true)]
    const kubectl = { pods: async (ns: string) => ({ items: ns === 'kube-system' ? items : [] }) } as unknown as KubectlClient
    const alone = await systemPodsGate.check(ctx(kubectl, undefined, { scope: 'node', node: 'w-1' }), { namespaces: ['kube-system'] })
    expect(alone).toMatchObject({ status: 'fail', summary: expect.stringMatching(/kube-system\/kube-proxy-b2 Running but not Ready/) })
    const inBatch = await systemPodsGate.check(ctx(kubectl, undefined, { scope: 'node', node: 'w-1', inFlight: ['w-2', 'w-4'] }), { namespaces: ['kube-system'] })
    expect(inBatch).toMatchObject({ status: 'pass', summary: '3 system pods Running and Ready' })
    expect(inBatch.evidence.at(-1)).toEqual({ status: 'pass', source: 'kubectl get pods (nodes w-2)', observed: '1 pod on w-2 not judged here: under way in the same batch, their own after-node gates judge them' })
  })
})

describe('system-pods: a pod on its way out', () => {
  /** Running, not Ready, started long ago: as kube-proxy's old pod of a DaemonSet rollout, its container stopped. */
  const terminating = (deletionTimestamp: string): Pod => ({
    metadata: { name: 'kube-proxy-7vjmt', namespace: 'kube-system', labels: { 'k8s-app': 'kube-proxy' }, deletionTimestamp, deletionGracePeriodSeconds: 30 },
    spec: { nodeName: 'w-2', containers: [{ name: 'kube-proxy' }] },
    status: { phase: 'Running', startTime: '2024-12-04T09:00:00Z', conditions: [{ type: 'Ready', status: 'False' }], containerStatuses: [{ name: 'kube-proxy', ready: false, restartCount: 0, image: 'kube-proxy', imageID: '', state: { terminated: { exitCode: 0, reason: 'Completed' } } }] },
  })
  const at = new Date('2024-12-04T10:10:00Z')

  it('being deleted (due to be gone in 25 s, or 40 s ago) is not a failure: its replacement is what counts', () => {
    expect(judgePod(terminating('2024-12-04T10:10:25Z'), at)).toMatchObject({ status: 'warn', problem: 'kube-system/kube-proxy-7vjmt Terminating' })
    expect(judgePod(terminating('2024-12-04T10:09:20Z'), at)).toMatchObject({ status: 'warn' })
  })

  it('well past the time it was due to be gone, it is stuck Terminating', () => {
    expect(judgePod(terminating('2024-12-04T10:05:00Z'), at)).toMatchObject({
      status: 'fail', problem: 'kube-system/kube-proxy-7vjmt stuck Terminating', observed: 'Running, ready 0/1, restarts 0; Terminating, due to be gone at 2024-12-04T10:05:00Z',
    })
  })
})

describe('removed-apis on the apiserver’s metrics and kubectl’s annotations', () => {
  const samples = parsePrometheus(fixture('apiserver-1.31-metrics-excerpt.txt'))

  it('a request to a version removed in the target fails, by the apiserver’s own removed_release; other removals and alpha APIs do not', () => {
    const f = requestedRemovedApis(samples, 31, 32)
    expect(f.map((x) => x.problem)).toEqual([
      'a client uses flowschemas.flowcontrol.apiserver.k8s.io/v1beta3, removed in 1.32: migrate it to flowcontrol.apiserver.k8s.io/v1',
      'a client uses prioritylevelconfigurations/status.flowcontrol.apiserver.k8s.io/v1beta3, removed in 1.32: migrate it to flowcontrol.apiserver.k8s.io/v1',
    ])
    expect(requestedRemovedApis(samples, 32, 33)).toEqual([]) // already past 1.32: not this upgrade's problem
    expect(requestedRemovedApis(samples, 29, 30)).toEqual([])
  })

  it('objects applied through a removed version fail (client-side and server-side apply); objects the apiserver wrote through v1 do not', () => {
    const removed = REMOVED_APIS.filter((a) => a.removedIn === '1.32' && a.resource === 'flowschemas')
    // kubectl apply writes the manifest, compact JSON with a trailing newline, into this annotation.
    const lastApplied = '{"apiVersion":"flowcontrol.apiserver.k8s.io/v1beta3","kind":"FlowSchema","metadata":{"annotations":{},"name":"ci-runners"},"spec":{"matchingPrecedence":1000,"priorityLevelConfiguration":{"name":"workload-low"}}}\n'
    const items: { metadata: ObjectMeta }[] = [
      { metadata: { name: 'ci-runners', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': lastApplied }, managedFields: [{ manager: 'kubectl-client-side-apply', operation: 'Update', apiVersion: 'flowcontrol.apiserver.k8s.io/v1beta3' }] } },
      { metadata: { name: 'gitops', managedFields: [{ manager: 'flux', operation: 'Apply', apiVersion: 'flowcontrol.apiserver.k8s.io/v1beta3' }] } },
      { metadata: { name: 'catch-all', annotations: { 'apf.kubernetes.io/autoupdate-spec': 'true' }, managedFields: [{ manager: 'api-priority-and-fairness-config-producer-v1', operation: 'Update', apiVersion: 'flowcontrol.apiserver.k8s.io/v1' }] } },
      { metadata: { name: 'odd', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': 'not json' } } },
    ]
    const f = objectsOnRemovedApis(items, removed, 'kubectl get flowschemas.flowcontrol.apiserver.k8s.io -A -o json')
    expect(f.map((x) => x.observed)).toEqual([
      'flowschemas ci-runners: last-applied-configuration apiVersion flowcontrol.apiserver.k8s.io/v1beta3',
      'flowschemas gitops: server-side apply by flux as flowcontrol.apiserver.k8s.io/v1beta3',
    ])
    expect(f.every((x) => x.status === 'fail')).toBe(true)
  })
})

describe('prometheus: the HTTP API’s JSON', () => {
  const serve = async (reply: (query: string) => [number, unknown]) => {
    const s = createServer((req, res) => {
      const [code, body] = reply(new URL(req.url ?? '/', 'http://x').searchParams.get('query') ?? '')
      res.writeHead(code, { 'Content-Type': 'application/json' }).end(JSON.stringify(body))
    })
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
    return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, close: () => s.close() }
  }
  const params = (url: string) => ({ url, query: 'ALERTS{alertstate="firing",severity="critical"}', max: 0, timeout: '5s' })

  it('a vector with a firing alert fails naming it; an empty vector passes; Prometheus’s error answer is unknown, never a pass', async () => {
    const firing = { status: 'success', data: { resultType: 'vector', result: [{ metric: { __name__: 'ALERTS', alertname: 'TargetDown', alertstate: 'firing', job: 'kube-proxy', namespace: 'kube-system', severity: 'critical' }, value: [1733306400.123, '1'] }] } }
    const p = await serve((q) => (q.startsWith('ALERTS{') ? [200, firing] : [400, { status: 'error', errorType: 'bad_data', error: 'invalid parameter "query": 1:1: parse error: unexpected end of input' }]))
    try {
      const bad = await prometheusGate.check(ctx(kubectlJson({})), params(p.url))
      expect(bad).toMatchObject({ status: 'fail', summary: '1 series returned (max 0): TargetDown{alertstate="firing",job="kube-proxy",namespace="kube-system",severity="critical"} 1' })
      const broken = await prometheusGate.check(ctx(kubectlJson({})), { ...params(p.url), query: 'sum(' })
      expect(broken).toMatchObject({ status: 'unknown', summary: 'query failed: invalid parameter "query": 1:1: parse error: unexpected end of input' })
      firing.data.result = []
      expect((await prometheusGate.check(ctx(kubectlJson({})), params(p.url))).status).toBe('pass')
    } finally {
      p.close()
    }
  })
})

describe('command on the runner', () => {
  it('exit 0 passes with its output; another exit fails with the exit code and output; a missing program fails by name', async () => {
    const c = ctx(kubectlJson({}), undefined, { env: { PATH: process.env.PATH } })
    expect(await commandGate.check(c, { run: 'echo window open', on: 'runner', timeout: '10s' })).toMatchObject({ status: 'pass', evidence: [{ source: 'runner: echo window open', observed: 'exit 0: window open' }] })
    const bad = await commandGate.check(c, { run: 'echo "change freeze until Friday" >&2; exit 2', on: 'runner', timeout: '10s', name: 'change window' })
    expect(bad).toMatchObject({ status: 'fail', summary: 'runner: `change window` exited 2', evidence: [{ observed: 'exit 2: change freeze until Friday' }] })
    expect(await commandGate.check(c, { run: ['kupgrade-no-such-tool'], on: 'runner', timeout: '10s' })).toMatchObject({ status: 'fail', summary: 'runner: kupgrade-no-such-tool not found' })
  })
})

describe('control-plane-ha on the plan and the API’s node roles', () => {
  const node = (name: string, cp: boolean) => ({ metadata: { name, labels: { 'kubernetes.io/hostname': name, ...(cp ? { 'node-role.kubernetes.io/control-plane': '' } : {}) } } })
  const plan = (cps: number) => Array.from({ length: cps }, (_, i) => ({ name: `cp-${i + 1}`, role: 'control-plane' as const, target: { host: `10.0.0.${i + 1}` } as never }))
  const withNodes = (items: unknown[]) => ({ nodes: async () => ({ items }) }) as unknown as KubectlClient

  it('three control planes pass; two lose quorum with one down; four are even; a control plane the plan forgot still counts', async () => {
    const three = [node('cp-1', true), node('cp-2', true), node('cp-3', true), node('w-1', false)]
    expect(await controlPlaneHaGate.check(ctx(withNodes(three), undefined, { nodes: plan(3) }), { policy: 'block' })).toMatchObject({ status: 'pass', summary: '3 control-plane nodes (odd, ≥ 3)' })
    expect(await controlPlaneHaGate.check(ctx(withNodes(three.slice(0, 2)), undefined, { nodes: plan(2) }), { policy: 'block' })).toMatchObject({ status: 'fail', summary: '2 control-plane nodes: losing one loses etcd quorum' })
    expect(await controlPlaneHaGate.check(ctx(withNodes(three.slice(0, 2)), undefined, { nodes: plan(2) }), { policy: 'warn' })).toMatchObject({ status: 'warn' })
    expect(await controlPlaneHaGate.check(ctx(withNodes([...three, node('cp-4', true)]), undefined, { nodes: plan(3) }), { policy: 'block' })).toMatchObject({ status: 'fail', summary: '4 control-plane nodes: an even count tolerates no more failures than 3' })
  })
})

describe('upgrade-path on the apiservers’ versions (facts)', () => {
  const facts = (versions: string[], target = 'v1.30.4') =>
    ({ from: 'v1.29.6+k3s1', target, apiserverVersions: versions.map((version, i) => ({ version, source: 'pod', node: `cp-${i + 1}` })) }) as never
  const check = (versions: string[]) => upgradePathGate.check(ctx({} as KubectlClient, undefined, { distribution: 'k3s', facts: facts(versions) }), {})

  it('a path of hops is told as such; a cluster already at the target says so, not "0 hops"', async () => {
    expect(await check(['v1.29.6+k3s1', 'v1.29.6+k3s1'])).toMatchObject({ status: 'pass', summary: 'v1.29.6+k3s1 → v1.30.4+k3s1: one minor at a time, 1 hop, a released k3s version' })
    expect(await check(['v1.30.4+k3s1', 'v1.30.4+k3s1'])).toMatchObject({ status: 'pass', summary: 'v1.30.4+k3s1: already at the target v1.30.4+k3s1, a released k3s version' })
    // One apiserver behind: the oldest decides.
    expect(await check(['v1.30.4+k3s1', 'v1.30.2+k3s1'])).toMatchObject({ status: 'pass', summary: 'v1.30.2+k3s1 → v1.30.4+k3s1: one minor at a time, 1 hop, a released k3s version' })
  })
})

describe('disk-space on GNU df output (coreutils 9.1, captured: df -P -B1 / /var/lib /nonexistent)', () => {
  const ssh = { read: async () => ({ stdout: fixture('df-coreutils-P-B1.txt'), stderr: '', exitCode: 1 }) } as unknown as Transport
  const c = () => ctx(kubectlJson({}), undefined, { ssh, nodes: [{ name: 'w-1', role: 'worker', target: { host: '10.0.0.21' } as never }] })

  it('free space is df’s Available against Used + Available; a missing path warns; the absolute floor fails on its own', async () => {
    const ok = await diskSpaceGate.check(c(), { minFree: '15%', minFreeBytes: '2Gi', paths: ['/', '/var/lib', '/nonexistent'] })
    expect(ok.status).toBe('warn')
    expect(ok.summary).toBe('w-1: /nonexistent does not exist')
    expect(ok.evidence.map((e) => e.observed)).toContain('/ on /: 78.3 GiB free of 101.5 GiB (77.2% free)')
    const floor = await diskSpaceGate.check(c(), { minFree: '15%', minFreeBytes: '100Gi', paths: ['/', '/var/lib'] })
    expect(floor).toMatchObject({ status: 'fail', summary: 'w-1 /: only 78.3 GiB (77.2%) free; w-1 /var/lib: only 78.3 GiB (77.2%) free' })
  })
})

describe('a gate that could not check', () => {
  it('is unknown, its evidence one line with what kubectl printed and its hint kept', async () => {
    const failed = new RemoteCommandError({ cluster: 'prod', node: 'kubectl', host: 'prod', command: 'kubectl get pods -A -o json', exitCode: 1, stderr: 'W1206 03:04:05 loader.go:222] Config not found\nerror: context "prod" does not exist\n', hint: 'the kubeconfig cannot be used as given' })
    const kubectl = { json: () => Promise.reject(failed), run: () => Promise.reject(failed) } as unknown as KubectlClient
    const r = await checkOnce(ctx(kubectl), { id: 'pending-pods', params: {}, label: 'pending-pods' })
    expect(r).toMatchObject({ status: 'unknown', summary: 'could not check: command failed on prod/kubectl (prod) with exit code 1: kubectl get pods -A -o json', hint: 'the kubeconfig cannot be used as given' })
    expect(r.evidence).toEqual([{ source: 'gate pending-pods', observed: 'command failed on prod/kubectl (prod) with exit code 1: kubectl get pods -A -o json: W1206 03:04:05 loader.go:222] Config not found; error: context "prod" does not exist' }])
  })
  it('a check on a signal leaves no listener on it when it ends, however it ends', async () => {
    const run = new AbortController()
    const failing = { json: () => Promise.reject(new Error('no answer')), run: () => Promise.reject(new Error('no answer')) } as unknown as KubectlClient
    const empty = kubectlJson({})
    // A run checks its gates again and again on its one signal.
    for (let i = 0; i < 20; i++) {
      expect((await checkOnce(ctx(i % 2 ? failing : empty, undefined, { signal: run.signal }), { id: 'pending-pods', params: {}, label: 'pending-pods' })).status).toBe(i % 2 ? 'unknown' : 'pass')
    }
    expect(getEventListeners(run.signal, 'abort')).toHaveLength(0)
    // Aborted while a check waits: the check ends with the signal's reason.
    const stuck = { json: () => new Promise(() => undefined) } as unknown as KubectlClient
    const pending = checkOnce(ctx(stuck, undefined, { signal: run.signal }), { id: 'pending-pods', params: {}, label: 'pending-pods' })
    run.abort(new Error('interrupted'))
    expect(await pending).toMatchObject({ status: 'unknown', summary: 'could not check: interrupted' })
    expect(getEventListeners(run.signal, 'abort')).toHaveLength(0)
  })
})
