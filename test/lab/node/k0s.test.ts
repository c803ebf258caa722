import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { recordEvents, sshExec, startNode, type TestNode } from './helpers.js'

describe('k0s node', () => {
  let t: TestNode
  let ev: ReturnType<typeof recordEvents>
  beforeAll(async () => {
    t = await startNode({ distribution: 'k0s', version: 'v1.29.2+k0s.0', mirror: ['v1.29.2+k0s.0', 'v1.30.4+k0s.0'], os: 'rocky-9', iptablesBackend: 'legacy' })
    ev = recordEvents(t.node)
  })
  afterAll(async () => t?.cleanup())

  it('has the embedded kubelet and the iptables mode link under /var/lib/k0s/bin (facts §2.4, §4.3)', async () => {
    const r = await sshExec(t.node, '/var/lib/k0s/bin/kubelet --version; readlink /var/lib/k0s/bin/iptables')
    expect(r.stdout).toBe('Kubernetes v1.29.2+k0s\nxtables-legacy-multi\n')
  })

  it('prints k0s version, -a and -j as facts §2.2', async () => {
    const r = await sshExec(t.node, 'k0s version; k0s version -a; k0s version -j')
    const [plain, ...rest] = r.stdout.split('\n')
    expect(plain).toBe('v1.29.2+k0s.0')
    expect(rest.slice(0, 7).map((l) => l.split(' :')[0])).toEqual(['k0s', 'runc', 'containerd', 'kubernetes', 'kine', 'etcd', 'konnectivity'])
    expect(rest[3]).toBe('kubernetes :v1.29.2')
    expect(Object.keys(JSON.parse(rest[7]!) as object)).toEqual(['k0s', 'runc', 'containerd', 'kubernetes', 'kine', 'etcd', 'konnectivity'])
  })

  it('backs up to --save-path as k0s_backup_<datetime>.tar.gz', async () => {
    const r = await sshExec(t.node, 'mkdir -p /root/b && k0s backup --save-path /root/b && ls /root/b && tar -tzf /root/b/*.tar.gz | head -1')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^k0s_backup_\d{4}-\d\d-\d\dT\d\d_\d\d_\d\d_000Z\.tar\.gz\npki\/\n$/)
  })

  it('refuses reset while running, upgrades by stop / get.k0s.sh / start', async () => {
    const reset = await sshExec(t.node, 'k0s reset')
    expect(reset).toMatchObject({ code: 1, stderr: 'Error: k0s seems to be running! please stop k0s before reset.\n' })
    const missing = await sshExec(t.node, 'curl --proto =https --tlsv1.2 -sSf https://get.k0s.sh | K0S_VERSION=v1.31.1+k0s.0 sh')
    expect(missing.code).toBe(22)
    expect(missing.stderr).toBe('curl: (22) The requested URL returned error: 404\n')
    const up = await sshExec(t.node, 'k0s stop && curl --proto =https --tlsv1.2 -sSf https://get.k0s.sh | K0S_VERSION=v1.30.4+k0s.0 sh && k0s install controller --force && k0s start && k0s status')
    expect(up.code).toBe(0)
    expect(up.stdout).toContain('Downloading k0s from URL: https://github.com/k0sproject/k0s/releases/download/v1.30.4+k0s.0/k0s-v1.30.4+k0s.0-amd64\n')
    expect(up.stdout).toMatch(/Version: v1\.30\.4\+k0s\.0\nProcess ID: \d+\nRole: controller\n/)
    expect(await ev.next('installed')).toEqual({ version: 'v1.30.4+k0s.0', binary: 'k0s' })
    // k0s unpacked its newer kubelet on start (facts §2.4: it reports +k0s without the revision).
    expect((await sshExec(t.node, '/var/lib/k0s/bin/kubelet --version')).stdout).toBe('Kubernetes v1.30.4+k0s\n')
    expect(await ev.next('service', (d) => d['state'] === 'started')).toEqual({ service: 'k0scontroller', state: 'started', version: 'v1.30.4+k0s.0' })
  })

  it('shows the legacy iptables backend and the hint chain only there (facts §4.3)', async () => {
    const r = await sshExec(t.node, 'iptables --version; iptables-legacy-save -t mangle | grep -c KUBE-IPTABLES-HINT; iptables-nft-save | wc -l')
    expect(r.stdout).toBe('iptables v1.8.10 (legacy)\n1\n0\n')
  })
})
