import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { execa } from 'execa'
import { parse } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PlanError } from '../../src/errors.js'
import { labNodeFactory } from '../../src/lab/node-runtime.js'
import { realTools } from '../../src/lab/node/real-tools.js'
import { parseTopology, type TopologyInput } from '../../src/lab/topology.js'
import { startLab, type TestLab } from './helpers.js'

/**
 * A topology can start a cluster half-way through an upgrade (issue 7 item 17): per-node kubelet/binary versions,
 * kubeadm control-plane (static pod) versions and kube-proxy pod versions, validated against the mirror and the skew
 * policy with located errors; the API (real kubectl) and the nodes (real OpenSSH) show that state.
 */
const problemsOf = (text: string): string[] => {
  try {
    parseTopology(text, 'topo.yaml')
  } catch (err) {
    if (err instanceof PlanError) return err.problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.message}`)
    throw err
  }
  return []
}
const topo = (distribution: string, nodes: string) => `apiVersion: kupgrade.dev/v1alpha1
kind: LabTopology
metadata: { name: t }
spec:
  mirror: [v1.28.9, v1.29.6, v1.30.4]
  clusters:
    - name: c
      distribution: ${distribution}
      version: v1.29.6
      nodes:
${nodes}`

describe('mid-upgrade topologies: validation', () => {
  it('accepts the example and a kubeadm node whose kubelet is newer than another control plane\'s apiserver (the documented order)', () => {
    expect(problemsOf(readFileSync('examples/lab/kubeadm-mid-upgrade.yaml', 'utf8'))).toEqual([])
    const t = parseTopology(readFileSync('examples/lab/kubeadm-mid-upgrade.yaml', 'utf8'), 'x.yaml')
    expect(t.clusters[0]!.nodes.map((n) => [n.name, n.version, n.controlPlaneVersion, n.kubeProxyVersion])).toEqual([
      ['cp-1', 'v1.30.4', 'v1.30.4', undefined],
      ['cp-2', 'v1.29.6', 'v1.30.4', undefined],
      ['cp-3', 'v1.29.6', 'v1.29.6', undefined],
      ['worker-1', 'v1.29.6', 'v1.29.6', 'v1.29.6'],
      ['worker-2', 'v1.29.6', 'v1.29.6', undefined],
    ])
  })

  it('locates versions missing from the mirror and fields the distribution does not have', () => {
    expect(problemsOf(topo('k3s', `        - { name: s1, role: control-plane, version: v1.29.7+k3s1 }
        - { name: a1, role: worker, kubeProxyVersion: v1.29.6 }
        - { name: a2, role: worker, apiServerVersion: v1.29.6 }`))).toEqual([
      'topo.yaml:11:53: spec.clusters[0].nodes[0].version: version v1.29.7+k3s1 of node s1 is not in spec.mirror (v1.28.9, v1.29.6, v1.30.4)',
      'topo.yaml:12:55: spec.clusters[0].nodes[1].kubeProxyVersion: on k3s kube-proxy runs inside the k3s binary: set the node\'s version instead',
      'topo.yaml:13:55: spec.clusters[0].nodes[2].apiServerVersion: node a2 is a worker: only control-plane nodes run an apiserver',
    ])
    expect(problemsOf(topo('k0s', '        - { name: c1, role: control-plane, apiServerVersion: v1.30.4 }'))).toEqual([
      'topo.yaml:11:62: spec.clusters[0].nodes[0].apiServerVersion: on k0s the apiserver runs inside the k0s binary: set the node\'s version instead',
    ])
  })

  it('refuses HA apiservers two minors apart, and kubelets or kube-proxies newer than every apiserver', () => {
    expect(problemsOf(topo('kubeadm', `        - { name: cp-1, role: control-plane, apiServerVersion: v1.30.4, version: v1.28.9 }
        - { name: cp-2, role: control-plane, version: v1.28.9 }`))).toEqual([
      'topo.yaml:11:64: spec.clusters[0].nodes[0].apiServerVersion: the apiservers of cluster c are more than one minor apart (v1.30.4 on cp-1, v1.28.9 on cp-2): HA apiservers may differ by one minor at most',
    ])
    expect(problemsOf(topo('kubeadm', `        - { name: cp-1, role: control-plane }
        - { name: w-1, role: worker, version: v1.30.4, kubeProxyVersion: v1.30.4 }`))).toEqual([
      'topo.yaml:12:47: spec.clusters[0].nodes[1].version: kubelet v1.30.4 on w-1 is newer than every apiserver (newest: v1.29.6 on cp-1): kubelet must not be newer than kube-apiserver',
      'topo.yaml:12:74: spec.clusters[0].nodes[1].kubeProxyVersion: kube-proxy v1.30.4 on w-1 is newer than every apiserver (newest: v1.29.6 on cp-1): kube-proxy must not be newer than kube-apiserver',
    ])
  })
})

describe('mid-upgrade topologies: the running lab', () => {
  let t: TestLab
  const NET = '127.0.67'
  const ssh = (host: string, command: string) =>
    execa('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${join(t.dir, 'known_hosts')}`,
      '-o', 'GlobalKnownHostsFile=/dev/null', '-i', join(t.dir, 'id_ed25519'), '-p', '2222', `root@${host}`, command], { reject: false, timeout: 60_000 })
  beforeAll(async () => {
    // The example topology on this file's addresses.
    const input = parse(readFileSync('examples/lab/kubeadm-mid-upgrade.yaml', 'utf8')) as TopologyInput & { spec: { clusters: { apiAddress: string; nodes: { address: string }[] }[] } }
    const c = input.spec.clusters[0]!
    c.apiAddress = `${NET}.1`
    c.nodes.forEach((n, i) => (n.address = `${NET}.${101 + i}`))
    t = await startLab(input, { nodeFactory: labNodeFactory })
  }, 60_000)
  afterAll(async () => t?.stop())

  it('kubectl shows each node\'s kubelet, each control plane\'s static pods and each kube-proxy pod at its own version', async () => {
    const nodes = (await t.kubectl(['get', 'nodes', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.nodeInfo.kubeletVersion} {end}'])).stdout.trim()
    expect(nodes).toBe('cp-1=v1.30.4 cp-2=v1.29.6 cp-3=v1.29.6 worker-1=v1.29.6 worker-2=v1.29.6')
    const images = (await t.kubectl(['-n', 'kube-system', 'get', 'pods', '-l', 'component=kube-apiserver', '-o', 'jsonpath={range .items[*]}{.spec.nodeName}={.spec.containers[0].image} {end}'])).stdout.trim().split(' ').sort()
    expect(images).toEqual(['cp-1=registry.k8s.io/kube-apiserver:v1.30.4', 'cp-2=registry.k8s.io/kube-apiserver:v1.30.4', 'cp-3=registry.k8s.io/kube-apiserver:v1.29.6'])
    const proxies = (await t.kubectl(['-n', 'kube-system', 'get', 'pods', '-l', 'k8s-app=kube-proxy', '-o', 'jsonpath={range .items[*]}{.spec.nodeName}={.spec.containers[0].image} {end}'])).stdout.trim().split(' ').sort()
    expect(proxies).toHaveLength(5)
    expect(proxies.every((p) => p.endsWith('kube-proxy:v1.29.6'))).toBe(true)
    expect((await t.kubectl(['version', '-o', 'json'])).stdout).toContain('"gitVersion": "v1.30.4"')
  })

  it('the nodes carry the same state: kubelet, kubeadm and manifests per node', async () => {
    const show = 'kubelet --version; kubeadm version -o short; grep -o "kube-apiserver:v[0-9.]*" /etc/kubernetes/manifests/kube-apiserver.yaml || echo no-manifest'
    expect((await ssh(`${NET}.101`, show)).stdout).toBe('Kubernetes v1.30.4\nv1.30.4\nkube-apiserver:v1.30.4')
    expect((await ssh(`${NET}.102`, show)).stdout).toBe('Kubernetes v1.29.6\nv1.30.4\nkube-apiserver:v1.30.4')
    expect((await ssh(`${NET}.103`, show)).stdout).toBe('Kubernetes v1.29.6\nv1.29.6\nkube-apiserver:v1.29.6')
    expect((await ssh(`${NET}.104`, show)).stdout).toBe('Kubernetes v1.29.6\nv1.29.6\nno-manifest')
  })

  it("each node's kubectl against the API is the host's kubectl of the node's own package minor, not the SDK dispatcher's", async (ctx) => {
    const { LAB_REAL_KUBECTL: host } = await realTools()
    if (!existsSync(`${host}.1.29`) || !existsSync(`${host}.1.30`)) ctx.skip()
    for (const [address, minor] of [[`${NET}.101`, '30'], [`${NET}.103`, '29']] as const) {
      // --client is the package's own answer (the stand-in); without it the real binary runs and asks the API.
      const pkg = JSON.parse((await ssh(address, 'kubectl version --client -o json')).stdout) as { clientVersion: { minor: string } }
      expect(pkg.clientVersion.minor, address).toBe(minor)
      const r = await ssh(address, 'kubectl --kubeconfig /etc/kubernetes/admin.conf version -o json')
      expect(r.exitCode, r.stderr).toBe(0)
      const both = JSON.parse(r.stdout) as { clientVersion: { minor: string }; serverVersion: { gitVersion: string } }
      expect([both.clientVersion.minor, both.serverVersion.gitVersion], address).toEqual([minor, 'v1.30.4'])
    }
  })

  it('apt-mark through OpenSSH as apt 2.6 does: an unknown name is an error (exit 100, said last) and the known ones are still marked', async () => {
    const w = `${NET}.104`
    const r = await ssh(w, 'apt-mark unhold kubelet nosuchpkg kubeadm; echo "rc=$?"; apt-mark showhold; apt-mark hold kubelet kubeadm >/dev/null')
    expect([r.stdout, r.stderr]).toEqual(['Canceled hold on kubelet.\nCanceled hold on kubeadm.\nrc=100\nkubectl', 'E: Unable to locate package nosuchpkg'])
    expect((await ssh(w, 'apt-mark showhold')).stdout).toBe('kubeadm\nkubectl\nkubelet')
  })
})

describe('mid-upgrade topologies: k3s and kube-proxy pods', () => {
  it('a k3s server ahead of its agents, and a kubeadm kube-proxy rollout half-way, as the API shows them', async () => {
    const t = await startLab({
      apiVersion: 'kupgrade.dev/v1alpha1', kind: 'LabTopology', metadata: { name: 't' },
      spec: {
        mirror: ['v1.29.6', 'v1.30.4'],
        clusters: [
          { name: 'k3s', distribution: 'k3s', version: 'v1.29.6', apiAddress: '127.0.68.1', nodes: [{ name: 's1', role: 'control-plane', address: '127.0.68.101', version: 'v1.30.4' }, { name: 'a1', role: 'worker', address: '127.0.68.111' }] },
        ],
      },
    })
    try {
      const nodes = (await t.kubectl(['get', 'nodes', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.nodeInfo.kubeletVersion} {end}'])).stdout.trim()
      expect(nodes).toBe('s1=v1.30.4+k3s1 a1=v1.29.6+k3s1')
      expect((await t.kubectl(['version', '-o', 'json'])).stdout).toContain('"gitVersion": "v1.30.4+k3s1"')
    } finally {
      await t.stop()
    }
    const k = await startLab({
      apiVersion: 'kupgrade.dev/v1alpha1', kind: 'LabTopology', metadata: { name: 't' },
      spec: {
        mirror: ['v1.29.6', 'v1.30.4'],
        clusters: [{
          name: 'kubeadm', distribution: 'kubeadm', version: 'v1.30.4', apiAddress: '127.0.69.1',
          nodes: [{ name: 'cp-1', role: 'control-plane', address: '127.0.69.101' }, { name: 'w-1', role: 'worker', address: '127.0.69.111', version: 'v1.29.6', kubeProxyVersion: 'v1.29.6' }, { name: 'w-2', role: 'worker', address: '127.0.69.112', version: 'v1.29.6' }],
        }],
      },
    }, { nodeFactory: labNodeFactory })
    try {
      const proxies = (await k.kubectl(['-n', 'kube-system', 'get', 'pods', '-l', 'k8s-app=kube-proxy', '-o', 'jsonpath={range .items[*]}{.spec.nodeName}={.spec.containers[0].image} {end}'])).stdout.trim().split(' ').sort()
      expect(proxies).toEqual(['cp-1=registry.k8s.io/kube-proxy:v1.30.4', 'w-1=registry.k8s.io/kube-proxy:v1.29.6', 'w-2=registry.k8s.io/kube-proxy:v1.30.4'])
      const ds = JSON.parse((await k.kubectl(['-n', 'kube-system', 'get', 'ds', 'kube-proxy', '-o', 'json'])).stdout)
      expect(ds.spec.template.spec.containers[0].image).toBe('registry.k8s.io/kube-proxy:v1.30.4')
      expect(ds.status.updatedNumberScheduled).toBe(2)
      // The kube-proxy that runs on each node reports its pod's version, not the kubelet's.
      const buildInfo = async (host: string) => {
        const r = await execa('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${join(k.dir, 'known_hosts')}`,
          '-o', 'GlobalKnownHostsFile=/dev/null', '-i', join(k.dir, 'id_ed25519'), '-p', '2222', `root@${host}`, 'curl -s http://127.0.0.1:10249/metrics | grep -o \'git_version="[^"]*"\''], { reject: false, timeout: 60_000 })
        return r.stdout
      }
      expect(await buildInfo('127.0.69.111')).toBe('git_version="v1.29.6"')
      expect(await buildInfo('127.0.69.112')).toBe('git_version="v1.30.4"')
    } finally {
      await k.stop()
    }
  }, 60_000)
})
