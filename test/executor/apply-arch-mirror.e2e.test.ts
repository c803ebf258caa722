import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TopologyInput } from '../../src/lab/topology.js'
import { labKubectl, openSsh } from '../lab/helpers.js'
import { events, startExecLab, type ExecLab } from './helpers.js'

/**
 * Release binaries from a mirror (`install.mirror`) on a fleet of mixed architectures: arm64 and 32-bit ARM agents
 * beside an x86_64 server, an arm64 k0s controller and worker beside an x86_64 worker. k3s and k0s publish one binary per architecture; the install scripts
 * pick it from `uname -m`. kupgrade fetched the x86_64 one everywhere: its checksum matched (it is the release's), and
 * on an ARM node the service then could not exec it (203/EXEC), so every ARM node failed its upgrade. Each node now
 * gets its own architecture's asset, checked against that architecture's checksum list.
 *
 * The mirror is the GitHub release itself (a mirror is laid out like it), which the lab's curl serves with every
 * architecture's asset; the lab's nodes run only their own architecture's binaries, as the kernel would.
 */
const NET = '127.0.172'
const SERVER = `${NET}.11`
const ARM64_AGENT = `${NET}.12`
const ARM_AGENT = `${NET}.13`
const K0S_WORKER = `${NET}.22`

const topology: TopologyInput = {
  apiVersion: 'kupgrade.dev/v1alpha1',
  kind: 'LabTopology',
  metadata: { name: 'arch' },
  spec: {
    mirror: ['v1.29.6', 'v1.30.4'],
    timing: { serviceRestart: '100ms', readyDelay: '200ms', reboot: '300ms', drainEvictionDelay: '50ms' },
    clusters: [
      {
        name: 'edge', distribution: 'k3s', version: 'v1.29.6', apiAddress: `${NET}.1`,
        nodes: [
          { name: 'edge-server', role: 'control-plane', address: SERVER },
          { name: 'edge-pi-1', role: 'worker', address: ARM64_AGENT, arch: 'arm64', os: 'debian-12' },
          { name: 'edge-pi-2', role: 'worker', address: ARM_AGENT, arch: 'arm' },
        ],
        workloads: { deployments: [], daemonSets: [], coredns: { replicas: 1 } },
      },
      {
        name: 'graviton', distribution: 'k0s', version: 'v1.29.6', apiAddress: `${NET}.2`,
        nodes: [
          { name: 'graviton-ctrl', role: 'control-plane', address: `${NET}.21`, arch: 'arm64' },
          { name: 'graviton-w-1', role: 'worker', address: K0S_WORKER, arch: 'arm64' },
          { name: 'graviton-w-2', role: 'worker', address: `${NET}.23` },
        ],
        workloads: { deployments: [], daemonSets: [], coredns: { replicas: 1 } },
      },
    ],
  },
}

describe('apply with install.mirror on ARM nodes', () => {
  let l: ExecLab
  beforeAll(async () => {
    l = await startExecLab(topology)
  }, 90_000)
  afterAll(async () => l?.stop())
  const { ssh, ok } = openSsh(() => l)

  it('the lab is an ARM machine where the node says so, and refuses a binary of another architecture as the kernel does', async () => {
    expect((await ok(SERVER, 'uname -m')).trim()).toBe('x86_64')
    expect((await ok(ARM64_AGENT, 'uname -m')).trim()).toBe('aarch64')
    expect((await ok(ARM_AGENT, 'uname -m')).trim()).toBe('armv7l')
    expect((await ok(ARM64_AGENT, 'uname -sm')).trim()).toBe('Linux aarch64')
    expect((await ok(ARM64_AGENT, 'uname -a')).trim()).toMatch(/^Linux edge-pi-1 6\.1\.0-21-arm64 .* aarch64 GNU\/Linux$/)
    // Debian names its kernel flavour by architecture; the Node reports the same kernel.
    expect((await ok(ARM64_AGENT, 'uname -r')).trim()).toBe('6.1.0-21-arm64')
    expect((await labKubectl(() => l, 'edge')(['get', 'node', 'edge-pi-1', '-o', 'jsonpath={.status.nodeInfo.kernelVersion}'])).stdout).toBe('6.1.0-21-arm64')
    const nodes = await labKubectl(() => l, 'edge')(['get', 'nodes', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.kubernetes\\.io/arch},{.status.nodeInfo.architecture} {end}'])
    expect(nodes.stdout.trim().split(' ').sort()).toEqual(['edge-pi-1=arm64,arm64', 'edge-pi-2=arm,arm', 'edge-server=amd64,amd64'])
    // What kupgrade reads of them: inventory's ARCH column, uname -m in Kubernetes' words.
    const inv = await l.cli(['inventory', l.plan, '--format', 'json'])
    expect(inv.code, inv.err).toBe(0)
    const arches = JSON.parse(inv.out).clusters.flatMap((c: any) => c.nodes.map((n: any) => `${n.name}=${n.arch}`))
    expect(arches.sort()).toEqual(['edge-pi-1=arm64', 'edge-pi-2=arm', 'edge-server=amd64', 'graviton-ctrl=arm64', 'graviton-w-1=arm64', 'graviton-w-2=amd64'])
    const table = await l.cli(['inventory', l.plan, '--cluster', 'edge'])
    const cells = (line: string | undefined) => (line ?? '').trim().split(/\s{2,}/)
    const lines = table.out.split('\n')
    const column = cells(lines.find((line) => line.trim().startsWith('NODE'))).indexOf('ARCH')
    expect(column).toBeGreaterThan(0)
    expect(['edge-server', 'edge-pi-1', 'edge-pi-2'].map((n) => cells(lines.find((line) => line.trim().startsWith(`${n} `)))[column])).toEqual(['amd64', 'arm64', 'arm'])

    // The release's x86_64 binary, fetched with curl onto the arm64 agent and installed where k3s runs from (the
    // checksum list also names the images archives, not fetched here).
    const url = 'https://github.com/k3s-io/k3s/releases/download/v1.30.4%2Bk3s1'
    await ok(ARM64_AGENT, `curl -sSfL -o /tmp/k3s ${url}/k3s && curl -sSfL -o /tmp/sums ${url}/sha256sum-amd64.txt && cd /tmp && sha256sum --check --ignore-missing --strict sums`)
    await ok(ARM64_AGENT, 'cp /usr/local/bin/k3s /root/k3s.kept && install -m 0755 /tmp/k3s /usr/local/bin/k3s')
    const run = await ssh(ARM64_AGENT, '/usr/local/bin/k3s --version')
    expect(run.code).toBe(126)
    expect(run.err).toContain('cannot execute binary file: Exec format error')
    const restart = await ssh(ARM64_AGENT, 'systemctl restart k3s-agent')
    expect(restart.code).not.toBe(0)
    expect(await ok(ARM64_AGENT, 'journalctl -u k3s-agent --no-pager | tail -n 3')).toContain('status=203/EXEC')
    // Nor does it come up at boot.
    const boot = (await ok(ARM64_AGENT, 'cat /proc/sys/kernel/random/boot_id')).trim()
    await ssh(ARM64_AGENT, 'systemctl reboot')
    const deadline = Date.now() + 30_000
    for (;;) {
      const now = await ssh(ARM64_AGENT, 'cat /proc/sys/kernel/random/boot_id')
      if (now.code === 0 && now.out.trim() !== boot) break
      if (Date.now() > deadline) throw new Error('edge-pi-1 did not come back from its reboot')
      await new Promise((r) => setTimeout(r, 200))
    }
    const after = await ssh(ARM64_AGENT, 'systemctl is-active k3s-agent; journalctl -u k3s-agent --no-pager | tail -n 1')
    expect(after.out).toMatch(/^failed\n.*k3s-agent\.service: Main process exited, code=exited, status=203\/EXEC$/)
    // The release's arm64 binary runs there.
    await ok(ARM64_AGENT, `curl -sSfL -o /tmp/k3s-arm64 ${url}/k3s-arm64 && curl -sSfL -o /tmp/sums ${url}/sha256sum-arm64.txt && cd /tmp && sha256sum --check --ignore-missing --strict sums`)
    await ok(ARM64_AGENT, 'install -m 0755 /tmp/k3s-arm64 /usr/local/bin/k3s')
    expect(await ok(ARM64_AGENT, 'k3s --version')).toMatch(/^k3s version v1\.30\.4\+k3s1 /)
    // Back as it was, running the old version.
    await ok(ARM64_AGENT, 'install -m 0755 /root/k3s.kept /usr/local/bin/k3s && systemctl restart k3s-agent && systemctl is-active k3s-agent')
    expect(await ok(ARM64_AGENT, 'k3s --version')).toMatch(/^k3s version v1\.29\.6\+k3s1 /)
  }, 120_000)

  it("installs each node's own architecture's binary from the mirror, checked against that architecture's checksums", async () => {
    await l.editPlan((d) => {
      for (const c of d.spec.clusters) c.install = { mirror: c.distribution === 'k3s' ? 'https://github.com/k3s-io/k3s/releases/download' : 'https://github.com/k0sproject/k0s/releases/download' }
    })
    const dry = await l.cli(['plan', l.plan, '--format', 'json'])
    expect(dry.code, dry.err).toBe(0)
    const titles = JSON.parse(dry.out).steps.filter((s: any) => s.action === 'replace-binary' && s.node === 'edge-pi-1').map((s: any) => s.title)
    expect(titles).toEqual([expect.stringContaining("the binary for the node's architecture (uname -m: k3s, k3s-arm64, k3s-s390x, k3s-armhf)")])
    // With live facts (plan --live, apply) each node's title names its own asset.
    const live = await l.cli(['plan', l.plan, '--live', '--format', 'json'])
    expect(live.code, live.err).toBe(0)
    const liveTitles = Object.fromEntries(JSON.parse(live.out).steps.filter((s: any) => s.action === 'replace-binary').map((s: any) => [s.node, s.title]))
    const k3s = 'https://github.com/k3s-io/k3s/releases/download/v1.30.4%2Bk3s1'
    const k0s = 'https://github.com/k0sproject/k0s/releases/download/v1.30.4%2Bk0s.0'
    // (k3s: and, where the node loads its images from archives, the same architecture's images archive.)
    const images = (arch: string) => `; where the node loads its images from /var/lib/rancher/k3s/agent/images/k3s-airgap-images-* (air-gapped), the release's k3s-airgap-images-${arch}.tar.zst (or .tar.gz, .tar) from there too, checked the same way, the old one kept in /var/lib/kupgrade/backup/v1.29.6+k3s1/airgap-images`
    expect(liveTitles).toEqual({
      'edge-server': `install k3s v1.30.4+k3s1 from ${k3s}/k3s (amd64), checked against ${k3s}/sha256sum-amd64.txt${images('amd64')}`,
      'edge-pi-1': `install k3s v1.30.4+k3s1 from ${k3s}/k3s-arm64 (arm64), checked against ${k3s}/sha256sum-arm64.txt${images('arm64')}`,
      'edge-pi-2': `install k3s v1.30.4+k3s1 from ${k3s}/k3s-armhf (arm), checked against ${k3s}/sha256sum-arm.txt${images('arm')}`,
      'graviton-ctrl': `install k0s v1.30.4+k0s.0 from ${k0s}/k0s-v1.30.4+k0s.0-arm64 (arm64), checked against ${k0s}/sha256sums.txt`,
      'graviton-w-1': `install k0s v1.30.4+k0s.0 from ${k0s}/k0s-v1.30.4+k0s.0-arm64 (arm64), checked against ${k0s}/sha256sums.txt`,
      'graviton-w-2': `install k0s v1.30.4+k0s.0 from ${k0s}/k0s-v1.30.4+k0s.0-amd64 (amd64), checked against ${k0s}/sha256sums.txt`,
    })

    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)
    const replaced = events(r.out).filter((e) => e.type === 'step-done' && e.step.action === 'replace-binary').map((e) => `${e.step.node}:${e.changed}`)
    expect(replaced.sort()).toEqual(['edge-pi-1:true', 'edge-pi-2:true', 'edge-server:true', 'graviton-ctrl:true', 'graviton-w-1:true', 'graviton-w-2:true'])
    for (const [address, arch] of [[SERVER, 'amd64'], [ARM64_AGENT, 'arm64'], [ARM_AGENT, 'arm']]) {
      expect(await ok(address!, 'k3s --version'), address).toMatch(/^k3s version v1\.30\.4\+k3s1 /)
      expect(await ok(address!, "sed -n \"s/^LAB_BINARY_ARCH='\\(.*\\)'$/\\1/p\" /usr/local/bin/k3s"), address).toBe(arch)
    }
    expect((await ok(K0S_WORKER, 'k0s version')).trim()).toBe('v1.30.4+k0s.0')
    for (const [cluster, node] of [['edge', 'edge-pi-1'], ['edge', 'edge-pi-2'], ['graviton', 'graviton-w-1']]) {
      expect(l.lab.clusters.get(cluster!)!.nodes.get(node!)!.getState(), node).toMatchObject({ runningVersion: expect.stringMatching(/^v1\.30\.4\+k(3s1|0s\.0)$/), serviceActive: true })
    }
  }, 240_000)
})
