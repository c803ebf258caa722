import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { labNodeFactory } from '../../../src/lab/node-runtime.js'
import type { LabNode } from '../../../src/lab/node/index.js'
import { eventually, smallTopology, startLab, type TestLab } from '../helpers.js'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { sshExec as sshAs } from './helpers.js'

type Obj = Record<string, any>
const buildVersion = (text: string) => /kubernetes_build_info\{.*git_version="([^"]+)"/.exec(text)?.[1]

// A lab with real nodes: kube-proxy's version, metrics and logs on a node are those of the DaemonSet pod there.
describe('lab fleet: each node serves its kube-proxy pod', () => {
  let t: TestLab
  const cluster = () => [...t.lab.clusters.values()][0]!
  const node = (name: string) => cluster().nodes.get(name) as unknown as LabNode
  const sshExec = (n: LabNode, command: string) => sshAs(n, command, { privateKey: readFileSync(join(t.dir, 'id_ed25519'), 'utf8') })
  const proxyPodOn = async (n: string) => {
    const r = await t.kubectl(['get', 'pods', '-n', 'kube-system', '-l', 'k8s-app=kube-proxy', '-o', 'json'])
    return (JSON.parse(r.stdout).items as Obj[]).find((p) => p.spec.nodeName === n && p.status.phase === 'Running' && !p.metadata.deletionTimestamp)
  }
  beforeAll(async () => {
    t = await startLab(smallTopology('127.0.61', { workers: 1 }), { nodeFactory: labNodeFactory })
  })
  afterAll(async () => t?.stop())

  it('kube-proxy-sync-failure: `kubectl logs` of the pod shows exactly the lines of the node\'s /var/log/pods file', async () => {
    const pod = (await proxyPodOn('w-1'))!
    t.lab.setFault({ fault: 'kube-proxy-sync-failure', cluster: 'lab', node: 'w-1' }, true)
    try {
      const file = `/var/log/pods/kube-system_${pod.metadata.name}_${pod.metadata.uid}/kube-proxy/0.log`
      // The first failed sync is written when the fault lands; wait for it on the node before comparing with kubectl.
      await eventually(async () => ((await sshExec(node('w-1'), `cat ${file}`)).stdout.includes('"Sync failed"') ? true : undefined), 15_000, 'the first failed sync in the node log')
      const logs = (await t.kubectl(['logs', '-n', 'kube-system', pod.metadata.name])).stdout
      const onNode = (await sshExec(node('w-1'), `cat ${file}`)).stdout
      expect(onNode).toMatch(/ stderr F E\d{4} [\d:.]+ +1 proxier\.go:\d+\] "Failed to execute iptables-restore" err=<\n/)
      expect(onNode).toMatch(/ stderr F I\d{4} [\d:.]+ +1 proxier\.go:\d+\] "Sync failed" ipFamily="IPv4" retryingTime="30s"\n/)
      // kubectl prints the container's lines; the node file has them with CRI prefixes (the first sync only so far:
      // the next one is a whole syncPeriod, 30 s, away).
      expect(logs + '\n').toBe(onNode.replace(/^\S+ stderr F /gm, ''))
      const metrics = (await sshExec(node('w-1'), '/usr/bin/curl -s http://127.0.0.1:10249/metrics')).stdout
      expect(metrics).toMatch(/\nkubeproxy_sync_proxy_rules_iptables_restore_failures_total 1\n/)
    } finally {
      t.lab.setFault({ fault: 'kube-proxy-sync-failure', cluster: 'lab', node: 'w-1' }, false)
    }
  })

  it('kube-proxy-skew: the lagging DaemonSet pod is what the node\'s kube-proxy reports', async () => {
    const version = async () => buildVersion((await sshExec(node('w-1'), '/usr/bin/curl -s http://127.0.0.1:10249/metrics')).stdout)
    expect(await version()).toBe('v1.29.6')
    t.lab.setFault({ fault: 'kube-proxy-skew', cluster: 'lab' }, true)
    try {
      expect(await eventually(async () => ((await version()) === 'v1.28.0' ? true : undefined), 15_000, 'skewed kube-proxy on w-1')).toBe(true)
      expect((await proxyPodOn('w-1'))!.spec.containers[0].image).toBe('registry.k8s.io/kube-proxy:v1.28.0')
    } finally {
      t.lab.setFault({ fault: 'kube-proxy-skew', cluster: 'lab' }, false)
    }
  })
})

describe('lab fleet: k3s', () => {
  let t: TestLab
  beforeAll(async () => {
    t = await startLab(smallTopology('127.0.62', { distribution: 'k3s', workers: 0 }))
  })
  afterAll(async () => t?.stop())

  it('refuses kube-proxy-skew with the reason: kube-proxy is the k3s binary', () => {
    expect(() => t.lab.setFault({ fault: 'kube-proxy-skew', cluster: 'lab' }, true))
      .toThrow('cluster lab: kube-proxy-skew cannot happen on k3s: kube-proxy runs inside the k3s binary, always at the k3s version')
    expect(t.lab.status().clusters[0]!.faults).toEqual([])
  })
})
