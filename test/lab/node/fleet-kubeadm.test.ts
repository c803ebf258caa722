import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { labNodeFactory } from '../../../src/lab/node-runtime.js'
import type { LabNode } from '../../../src/lab/node/index.js'
import type { TopologyInput } from '../../../src/lab/topology.js'
import { eventually, startLab, type TestLab } from '../helpers.js'
import { recordEvents, sshExec as sshAs } from './helpers.js'

const net = '127.0.63'
const topology: TopologyInput = {
  apiVersion: 'kupgrade.dev/v1alpha1',
  kind: 'LabTopology',
  metadata: { name: 'kubeadm-oracle' },
  spec: {
    mirror: ['v1.28.9', 'v1.29.6', 'v1.30.4'],
    timing: { serviceRestart: '100ms', readyDelay: '200ms', reboot: '300ms', drainEvictionDelay: '100ms' },
    clusters: [{
      name: 'lab', distribution: 'kubeadm', version: 'v1.29.6', apiAddress: `${net}.10`,
      nodes: [
        { name: 'cp-1', role: 'control-plane', address: `${net}.101`, sshPort: 2222 },
        { name: 'cp-2', role: 'control-plane', address: `${net}.102`, sshPort: 2222 },
        { name: 'w-1', role: 'worker', address: `${net}.111`, sshPort: 2222 },
      ],
      workloads: { deployments: [], daemonSets: [], coredns: { replicas: 1 } },
    }],
  },
}
const kubeadm130 = [
  "sed -i 's|/v1.29/|/v1.30/|' /etc/apt/sources.list.d/kubernetes.list", 'apt-get update >/dev/null',
  'apt-get install -y --allow-change-held-packages kubeadm=1.30.4-1.1 >/dev/null',
].join(' && ')

// kubeadm as kubeadm: what `upgrade apply/plan/node` decide comes from the cluster's API, with kubeadm's own texts
// (cmd/kubeadm/app/phases/upgrade/policy.go, health.go; facts §1.5).
describe('kubeadm on a lab cluster asks the cluster', () => {
  let t: TestLab
  const node = (name: string) => [...t.lab.clusters.values()][0]!.nodes.get(name) as unknown as LabNode
  const ssh = (name: string, command: string) => sshAs(node(name), command, { privateKey: readFileSync(join(t.dir, 'id_ed25519'), 'utf8') })
  const ready = async (name: string) => (await t.kubectl(['get', 'node', name, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).stdout
  beforeAll(async () => {
    t = await startLab(topology, { nodeFactory: labNodeFactory })
    expect((await ssh('cp-1', kubeadm130)).code).toBe(0)
  })
  afterAll(async () => t?.stop())

  it('upgrade plan lists every node\'s kubelet', async () => {
    const plan = await ssh('cp-1', 'kubeadm upgrade plan')
    expect(plan.stdout).toContain("Components that must be upgraded manually after you have upgraded the control plane with 'kubeadm upgrade apply':\n")
    for (const n of ['cp-1', 'cp-2', 'w-1']) expect(plan.stdout).toMatch(new RegExp(`\\nkubelet +${n} +v1\\.29\\.6 +v1\\.30\\.4\\n`))
  })

  it('upgrade apply refuses while a control-plane node is NotReady, even with --force', async () => {
    await ssh('cp-2', 'systemctl stop kubelet')
    try {
      await eventually(async () => ((await ready('cp-2')) !== 'True' ? true : undefined), 20_000, 'cp-2 not Ready')
      for (const flags of ['-y', '--force']) {
        const r = await ssh('cp-1', `kubeadm upgrade apply v1.30.4 ${flags}`)
        expect(r.code).toBe(1)
        expect(r.stderr).toBe('[upgrade/health] FATAL: [preflight] Some fatal errors occurred:\n\t[ERROR ControlPlaneNodesReady]: there are NotReady control-planes in the cluster: [cp-2]\n' +
          '[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`\nTo see the stack trace of this error execute with --v=5 or higher\n')
      }
    } finally {
      await ssh('cp-2', 'systemctl start kubelet')
    }
    await eventually(async () => ((await ready('cp-2')) === 'True' ? true : undefined), 20_000, 'cp-2 Ready again')
  })

  it('upgrade apply refuses while a kubelet is too old for the target; --force passes as kubeadm\'s does', async () => {
    // w-1 goes back to a 1.28 kubelet (within skew of the 1.29 control plane, so it starts).
    const down = await ssh('w-1', [
      "sed -i 's|/v1.29/|/v1.28/|' /etc/apt/sources.list.d/kubernetes.list", 'apt-get update >/dev/null',
      'apt-get install -y --allow-change-held-packages --allow-downgrades kubelet=1.28.9-1.1 >/dev/null', 'systemctl restart kubelet',
    ].join(' && '))
    expect(down.code).toBe(0)
    await eventually(async () => ((await t.kubectl(['get', 'node', 'w-1', '-o', 'jsonpath={.status.nodeInfo.kubeletVersion}'])).stdout === 'v1.28.9' ? true : undefined), 20_000, 'w-1 on v1.28.9')
    const refused = await ssh('cp-1', 'kubeadm upgrade apply v1.30.4 -y')
    expect(refused.code).toBe(1)
    expect(refused.stderr).toBe('error execution phase preflight: the --version argument is invalid due to these errors:\n\n' +
      '\t- There are kubelets in this cluster that are too old that have these versions [v1.28.9]\n\nCan be bypassed if you pass the --force flag\n' +
      'To see the stack trace of this error execute with --v=5 or higher\n')
    const forced = await ssh('cp-1', 'kubeadm upgrade apply v1.30.4 --force')
    expect(forced.code).toBe(0)
    expect(forced.stdout).toContain('[upgrade/successful] SUCCESS! Your cluster was upgraded to "v1.30.4". Enjoy!\n')
  })

  it('upgrade node takes the version from kubeadm-config, not from its own (older) binary', async () => {
    await eventually(async () => ((await t.kubectl(['get', 'cm', '-n', 'kube-system', 'kubeadm-config', '-o', 'jsonpath={.data.ClusterConfiguration}'])).stdout.includes('kubernetesVersion: v1.30.4') ? true : undefined), 20_000, 'kubeadm-config at v1.30.4')
    const ev = recordEvents(node('cp-2'))
    const r = await ssh('cp-2', 'kubeadm version -o short; kubeadm upgrade node')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^v1\.29\.6\n/)
    expect(r.stdout).toContain('[upgrade] Upgrading your Static Pod-hosted control plane instance to version "v1.30.4"...\n')
    expect(await ev.next('upgrade-applied')).toEqual({ command: 'node', version: 'v1.30.4' })
    expect((await ssh('cp-2', 'grep image: /etc/kubernetes/manifests/kube-apiserver.yaml')).stdout).toBe('    image: registry.k8s.io/kube-apiserver:v1.30.4\n')
  })
})
