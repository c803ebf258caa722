import { execFile } from 'node:child_process'
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clientKey, recordEvents, sshExec, startNode, type TestNode } from './helpers.js'

describe('k0s node (a controller with --enable-worker)', () => {
  let t: TestNode
  let ev: ReturnType<typeof recordEvents>
  beforeAll(async () => {
    t = await startNode({ distribution: 'k0s', version: 'v1.29.2+k0s.0', mirror: ['v1.29.2+k0s.0', 'v1.30.4+k0s.0'], os: 'rocky-9', iptablesBackend: 'legacy', enableWorker: true, users: [{ name: 'ops', sudo: true }] })
    ev = recordEvents(t.node)
  })
  afterAll(async () => t?.cleanup())

  it('has the embedded kubelet and the iptables mode link under /var/lib/k0s/bin (facts §2.4, §4.3)', async () => {
    const r = await sshExec(t.node, '/var/lib/k0s/bin/kubelet --version; readlink /var/lib/k0s/bin/iptables')
    expect(r.stdout).toBe('Kubernetes v1.29.2+k0s\nxtables-legacy-multi\n')
  })

  it('k0s status is root\'s: its socket refuses other logins (the k0s docs run it with sudo); through the real OpenSSH client', async () => {
    const key = join(t.dir, 'id_ed25519')
    writeFileSync(key, clientKey.private)
    chmodSync(key, 0o600)
    const known = join(t.dir, 'known_hosts')
    writeFileSync(known, `[${t.node.options.address}]:2222 ${t.node.hostKeyPublic}\n`)
    const ssh = (user: string, cmd: string) => promisify(execFile)('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${known}`, '-i', key, '-p', '2222', '-o', 'ConnectTimeout=10', `${user}@${t.node.options.address}`, cmd], { timeout: 30_000 })
      .then((r) => ({ ...r, code: 0 }), (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }))
    expect(await ssh('ops', 'k0s status')).toEqual({ code: 1, stdout: '', stderr: 'Error: status: can\'t get "status" via "/run/k0s/status.sock": Get "http://localhost/status": dial unix /run/k0s/status.sock: connect: permission denied\n' })
    expect((await ssh('ops', 'sudo -n k0s status')).stdout).toMatch(/^Version: v1\.29\.2\+k0s\.0\n/)
    expect((await ssh('root', 'k0s status')).stdout).toMatch(/^Version: v1\.29\.2\+k0s\.0\n/)
    // k0s version reads nothing of root's.
    expect((await ssh('ops', 'k0s version')).stdout).toBe('v1.29.2+k0s.0\n')
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
    const up = await sshExec(t.node, 'k0s stop && curl --proto =https --tlsv1.2 -sSf https://get.k0s.sh | K0S_VERSION=v1.30.4+k0s.0 sh && k0s install controller --enable-worker --force && k0s start && k0s status')
    expect(up.code).toBe(0)
    expect(up.stdout).toContain('Downloading k0s from URL: https://github.com/k0sproject/k0s/releases/download/v1.30.4+k0s.0/k0s-v1.30.4+k0s.0-amd64\n')
    expect(up.stdout).toMatch(/Version: v1\.30\.4\+k0s\.0\nProcess ID: \d+\nRole: controller\nWorkloads: true\nSingleNode: false\nKube-api probing successful: true\n/)
    expect((await sshExec(t.node, 'grep ^ExecStart= /etc/systemd/system/k0scontroller.service')).stdout).toBe('ExecStart=/usr/local/bin/k0s controller --config=/etc/k0s/k0s.yaml --enable-worker=true\n')
    expect(await ev.next('installed')).toEqual({ version: 'v1.30.4+k0s.0', binary: 'k0s' })
    // k0s unpacked its newer kubelet on start (facts §2.4: it reports +k0s without the revision).
    expect((await sshExec(t.node, '/var/lib/k0s/bin/kubelet --version')).stdout).toBe('Kubernetes v1.30.4+k0s\n')
    expect(await ev.next('service', (d) => d['state'] === 'started')).toEqual({ service: 'k0scontroller', state: 'started', version: 'v1.30.4+k0s.0', due: expect.any(Number) })
  })

  it('shows the legacy iptables backend and the hint chain only there (facts §4.3)', async () => {
    const r = await sshExec(t.node, 'iptables --version; iptables-legacy-save -t mangle | grep -c KUBE-IPTABLES-HINT; iptables-nft-save | wc -l')
    expect(r.stdout).toBe('iptables v1.8.10 (legacy)\n1\n0\n')
  })
})

/**
 * A controller as `k0s install controller` makes it (no --enable-worker): k0s runs the control plane only, so there is
 * no kubelet binary and nothing on the kubelet's healthz port; `k0s status` says Workloads: false. stop/start/status
 * answer as k0s's cmd/stop, cmd/start and cmd/status do, errors included.
 */
describe('k0s plain controller', () => {
  let t: TestNode
  beforeAll(async () => {
    t = await startNode({ distribution: 'k0s', version: 'v1.29.2+k0s.0', mirror: ['v1.29.2+k0s.0', 'v1.30.4+k0s.0'] })
  })
  afterAll(async () => t?.cleanup())

  it('runs no kubelet: no binary under /var/lib/k0s/bin, nothing on 127.0.0.1:10248, Workloads: false', async () => {
    const r = await sshExec(t.node, 'ls /var/lib/k0s/bin; curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:10248/healthz; echo " rc=$?"; k0s status')
    // Nothing serves 10248: the lab's 127.0.0.1 broker resets the connection (curl 56) where a real node refuses it
    // (curl 7), see local-ports.ts; a controller with a worker answers 200 ok there.
    expect(r.stdout).toMatch(/^iptables\n000 rc=(7|56)\nVersion: v1\.29\.2\+k0s\.0\nProcess ID: \d+\nRole: controller\nWorkloads: false\nSingleNode: false\nInit System: linux-systemd\nService file: \/etc\/systemd\/system\/k0scontroller\.service\n$/)
  })

  it('k0s stop twice: the second is "already stopped"; status then fails; start twice: "already running"', async () => {
    const r = await sshExec(t.node, 'k0s stop; echo "rc=$?"; systemctl is-active k0scontroller; echo "rc=$?"; k0s stop; echo "rc=$?"; k0s status; echo "rc=$?"')
    expect(r.stdout).toBe('rc=0\ninactive\nrc=3\nrc=1\nrc=1\n')
    expect(r.stderr).toBe('Error: already stopped\nError: k0s is not running\n')
    const s = await sshExec(t.node, 'k0s start && k0s start; echo "rc=$?"; k0s version; /var/lib/k0s/bin/kubelet --version')
    expect(s.stdout).toBe('rc=1\nv1.29.2+k0s.0\n')
    expect(s.stderr).toMatch(/^Error: already running\n.*No such file or directory\n$/)
  })

  it('a node without the k0s service says so on stop and start', async () => {
    const r = await sshExec(t.node, 'rm /etc/systemd/system/k0scontroller.service; k0s stop; k0s start; echo rc=$?')
    expect(r.stderr).toBe('Error: k0s has not been installed as a service\nError: k0s has not been installed as a service\n')
    expect(r.stdout).toBe('rc=1\n')
  })
})

describe('get.k0s.sh on a 32-bit ARM worker', () => {
  let t: TestNode
  beforeAll(async () => {
    t = await startNode({ distribution: 'k0s', role: 'worker', version: 'v1.29.2+k0s.0', mirror: ['v1.29.2+k0s.0', 'v1.30.4+k0s.0'], arch: 'arm' })
  })
  afterAll(async () => t?.cleanup())

  it("downloads the machine's binary (_detect_arch: armv7l → arm), which runs there", async () => {
    const r = await sshExec(t.node, 'k0s stop && curl --proto =https --tlsv1.2 -sSf https://get.k0s.sh | K0S_VERSION=v1.30.4+k0s.0 sh && k0s start && k0s version')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('Downloading k0s from URL: https://github.com/k0sproject/k0s/releases/download/v1.30.4+k0s.0/k0s-v1.30.4+k0s.0-arm\n')
    expect(r.stdout.endsWith('v1.30.4+k0s.0\n')).toBe(true)
    expect(t.node.getState()).toMatchObject({ installedVersion: 'v1.30.4+k0s.0', serviceActive: true })
  })
})
