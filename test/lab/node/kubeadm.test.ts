import { existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { realTools } from '../../../src/lab/node/real-tools.js'
import { recordEvents, sshExec, startNode, type TestNode } from './helpers.js'

const APT_HEADER = 'Reading package lists...\nBuilding dependency tree...\nReading state information...\n'

describe('kubeadm node: packages, upgrade policy, certificates', () => {
  let t: TestNode
  let ev: ReturnType<typeof recordEvents>
  beforeAll(async () => {
    t = await startNode({ distribution: 'kubeadm', version: 'v1.29.2', mirror: ['v1.29.2', 'v1.29.8', 'v1.30.4'], os: 'debian-12' })
    ev = recordEvents(t.node)
  })
  afterAll(async () => t?.cleanup())

  it('prints kubeadm version in every -o form and kubelet --version (facts §2.3, §2.4)', async () => {
    const r = await sshExec(t.node, 'kubeadm version -o short; kubeadm version; kubeadm version -o json; kubeadm version -o yaml; kubelet --version')
    const lines = r.stdout.split('\n')
    expect(lines[0]).toBe('v1.29.2')
    expect(lines[1]).toMatch(/^kubeadm version: &version\.Info\{Major:"1", Minor:"29", GitVersion:"v1\.29\.2", GitCommit:"[0-9a-f]+", GitTreeState:"clean", BuildDate:"[^"]+", GoVersion:"go[\d.]+", Compiler:"gc", Platform:"linux\/amd64"\}$/)
    const start = r.stdout.indexOf('{\n  "clientVersion"')
    const json = JSON.parse(r.stdout.slice(start, r.stdout.indexOf('\n}\n', start) + 3)) as { clientVersion: Record<string, string> }
    expect(json.clientVersion).toMatchObject({ major: '1', minor: '29', gitVersion: 'v1.29.2' })
    expect(r.stdout).toContain('clientVersion:\n  buildDate: ')
    expect(r.stdout).toContain('  gitVersion: v1.29.2\n')
    expect(r.stdout.endsWith('Kubernetes v1.29.2\n')).toBe(true)
  })

  it("runs the host's kubectl of its own minor for the kubectl package (not the SDK's dispatcher, which asks the server first)", async (ctx) => {
    const { LAB_REAL_KUBECTL: host } = await realTools()
    if (!existsSync(`${host}.1.29`)) ctx.skip()
    // Not --client (the stand-in answers that from the package): the real binary's own version, the server refused.
    const r = await sshExec(t.node, 'kubectl version -o json --server https://127.0.0.1:9 --token unused --request-timeout=2s')
    const json = JSON.parse(r.stdout.slice(0, r.stdout.lastIndexOf('}') + 1)) as { clientVersion: { minor: string; gitVersion: string } }
    expect(json.clientVersion.minor).toBe('29')
    expect(r.stderr).toContain('127.0.0.1:9')
  })

  it('lists the configured minor repo with apt-cache madison and refuses held packages without the flag', async () => {
    const m = await sshExec(t.node, 'apt-cache madison kubeadm; apt-mark showhold')
    expect(m.stdout).toBe('   kubeadm | 1.29.8-1.1 | https://pkgs.k8s.io/core:/stable:/v1.29/deb  Packages\n   kubeadm | 1.29.2-1.1 | https://pkgs.k8s.io/core:/stable:/v1.29/deb  Packages\nkubeadm\nkubectl\nkubelet\n')
    // Holds list by package name whatever order they were set in, as dpkg's database keeps them.
    const again = await sshExec(t.node, 'apt-mark unhold kubectl kubeadm; apt-mark showhold; apt-mark hold kubectl kubeadm kubectl; apt-mark showhold')
    // Messages from the state before the command, as Debian 12's apt-mark (apt 2.6) gives them: a name given twice, twice alike.
    expect(again.stdout).toBe('Canceled hold on kubectl.\nCanceled hold on kubeadm.\nkubelet\nkubectl set on hold.\nkubeadm set on hold.\nkubectl set on hold.\nkubeadm\nkubectl\nkubelet\n')
    // An unknown name is an error (exit 100, printed last) but the names found are still held; none found: nothing is.
    const none = await sshExec(t.node, 'apt-mark unhold kubelet kubeadm kubectl >/dev/null; apt-mark showhold; echo "[$(apt-mark showhold)]"; apt-mark hold kubelet nosuchpkg kubeadm; echo "rc=$?"; apt-mark showhold')
    expect(none).toMatchObject({ stdout: '[]\nkubelet set on hold.\nkubeadm set on hold.\nrc=100\nkubeadm\nkubelet\n', stderr: 'E: Unable to locate package nosuchpkg\n' })
    const nothing = await sshExec(t.node, 'apt-mark unhold nosuch1 nosuch2; echo "rc=$?"; apt-mark hold; echo "rc=$?"; apt-mark showhold; apt-mark hold kubectl >/dev/null')
    expect(nothing).toMatchObject({ stdout: 'rc=100\nrc=100\nkubeadm\nkubelet\n', stderr: 'E: Unable to locate package nosuch1\nE: Unable to locate package nosuch2\nE: No packages found\nE: No packages found\n' })
    const held = await sshExec(t.node, 'apt-get install -y kubeadm=1.29.8-1.1')
    expect(held.code).toBe(100)
    expect(held.stderr).toBe('E: Held packages were changed and -y was used without --allow-change-held-packages.\n')
    const other = await sshExec(t.node, 'apt-get install -y --allow-change-held-packages kubeadm=1.30.4-1.1')
    expect(other).toMatchObject({ code: 100, stderr: "E: Version '1.30.4-1.1' for 'kubeadm' was not found\n" })
  })

  it('prints apt-get install as apt does, up and down, and systemctl status as systemd does', async () => {
    const up = await sshExec(t.node, 'apt-get install -y --allow-change-held-packages kubeadm=1.29.8-1.1')
    expect(up).toMatchObject({ code: 0, stderr: '' })
    expect(up.stdout).toBe(APT_HEADER +
      'The following held packages will be changed:\n  kubeadm\nThe following packages will be upgraded:\n  kubeadm \n' +
      '1 upgraded, 0 newly installed, 0 downgraded, 0 to remove and 12 not upgraded.\nNeed to get 10.4 MB of archives.\n' +
      'After this operation, 4096 B of additional disk space will be used.\nGet:1 https://pkgs.k8s.io/core:/stable:/v1.29/deb  kubeadm 1.29.8-1.1 [10.4 MB]\n' +
      'Fetched 10.4 MB in 1s (10.4 MB/s)\n(Reading database ... 74213 files and directories currently installed.)\n' +
      'Preparing to unpack .../kubeadm_1.29.8-1.1_amd64.deb ...\nUnpacking kubeadm (1.29.8-1.1) over (1.29.2-1.1) ...\nSetting up kubeadm (1.29.8-1.1) ...\n')
    const down = await sshExec(t.node, 'apt-get install -y --allow-change-held-packages --allow-downgrades kubeadm=1.29.2-1.1')
    expect(down).toMatchObject({ code: 0, stderr: '' })
    expect(down.stdout).toContain('The following packages will be DOWNGRADED:\n  kubeadm\n1 upgraded, 0 newly installed, 1 downgraded, 0 to remove and 12 not upgraded.\n')
    expect(down.stdout).toContain('Unpacking kubeadm (1.29.2-1.1) over (1.29.8-1.1) ...\nSetting up kubeadm (1.29.2-1.1) ...\n')
    expect((await sshExec(t.node, 'kubeadm version -o short')).stdout).toBe('v1.29.2\n')

    await sshExec(t.node, 'systemctl restart kubelet')
    expect(await ev.next('service', (d) => d['state'] === 'started')).toMatchObject({ service: 'kubelet', version: 'v1.29.2' })
    const st = await sshExec(t.node, 'systemctl status kubelet --no-pager')
    expect(st.code).toBe(0)
    const [head, loaded, active] = st.stdout.split('\n')
    expect(head).toMatch(/^● kubelet\.service - kubelet: The Kubernetes Node Agent$/)
    expect(loaded).toBe('     Loaded: loaded (/etc/systemd/system/kubelet.service; enabled; vendor preset: enabled)')
    expect(active).toMatch(/^     Active: active \(running\) since (Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; \d+(s|min) ago$/)
    // The journal's lines carry syslog's timestamp: `Dec 05 12:23:36 node ident[pid]: message`.
    expect(st.stdout).toMatch(/\n[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d \S+ systemd\[1\]: Started kubelet\.service\.\n/)
  })

  it('enforces the one-minor-at-a-time policy with kubeadm\'s own error text (facts §1.5)', async () => {
    const r = await sshExec(t.node, 'kubeadm upgrade apply v1.30.4 -y')
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('error execution phase preflight: the --version argument is invalid due to these fatal errors:\n\n\t- Specified version to upgrade to "v1.30.4" is at least one minor release higher than the kubeadm minor release (30 > 29). Such an upgrade is not supported\n\nPlease fix the misalignments highlighted above and try upgrading again\n')
  })

  it('upgrades: repo switch, kubeadm package, upgrade apply, kubelet package, restart', async () => {
    const up = await sshExec(t.node, [
      "sed -i 's|/v1.29/|/v1.30/|' /etc/apt/sources.list.d/kubernetes.list",
      'apt-get update >/dev/null',
      'apt-mark unhold kubeadm >/dev/null && apt-get install -y kubeadm=1.30.4-1.1 >/dev/null && apt-mark hold kubeadm >/dev/null',
      'kubeadm version -o short',
      'kubeadm upgrade apply v1.30.4 -y | tail -n 3',
      'grep image: /etc/kubernetes/manifests/kube-apiserver.yaml',
      'apt-get install -y --allow-change-held-packages kubelet=1.30.4-1.1 kubectl=1.30.4-1.1 >/dev/null',
      'dpkg-query -W kubelet', 'kubelet --version',
    ].join(' && '))
    expect(up.code).toBe(0)
    expect(up.stdout).toBe('v1.30.4\n[upgrade/successful] SUCCESS! Your cluster was upgraded to "v1.30.4". Enjoy!\n\n' +
      "[upgrade/kubelet] Now that your control plane is upgraded, please proceed with upgrading your kubelets if you haven't already done so.\n" +
      '    image: registry.k8s.io/kube-apiserver:v1.30.4\nkubelet\t1.30.4-1.1\nKubernetes v1.30.4\n')
    expect(await ev.next('upgrade-applied')).toEqual({ command: 'apply', version: 'v1.30.4' })
    expect(t.node.getState()).toMatchObject({ installedVersion: 'v1.30.4', runningVersion: 'v1.29.2', serviceActive: true })
    await sshExec(t.node, 'systemctl daemon-reload && systemctl restart kubelet')
    expect(await ev.next('service', (d) => d['state'] === 'started')).toEqual({ service: 'kubelet', state: 'started', version: 'v1.30.4', due: expect.any(Number) })
    expect(t.node.getState().runningVersion).toBe('v1.30.4')
  })

  it('reports certificate expiry like `kubeadm certs check-expiration` (facts §3.3)', async () => {
    const r = await sshExec(t.node, 'kubeadm certs check-expiration')
    const lines = r.stdout.split('\n')
    expect(lines[3]).toMatch(/^CERTIFICATE {16}EXPIRES {18}RESIDUAL TIME {3}CERTIFICATE AUTHORITY {3}EXTERNALLY MANAGED$/)
    expect(lines.find((l) => l.startsWith('apiserver '))).toMatch(/^apiserver\s+\w{3} \d\d, \d{4} \d\d:\d\d UTC\s+36[45]d\s+ca\s+no$/)
    expect(lines.find((l) => l.startsWith('etcd-ca '))).toMatch(/^etcd-ca\s+\w{3} \d\d, \d{4} \d\d:\d\d UTC\s+9y\s+no$/)
    const real = await sshExec(t.node, 'openssl x509 -enddate -noout -in /etc/kubernetes/pki/apiserver.crt')
    expect(real.stdout).toMatch(/^notAfter=\w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} GMT\n$/)
    // -o json (output.kubeadm.k8s.io/v1alpha3): RFC 3339 in UTC, residualTime in whole seconds, caName only on leaves.
    const json = JSON.parse((await sshExec(t.node, 'kubeadm certs check-expiration -o json')).stdout) as { certificates: Record<string, unknown>[]; certificateAuthorities: Record<string, unknown>[] }
    const notAfter = new Date(real.stdout.slice('notAfter='.length).trim())
    const apiserver = json.certificates.find((c) => c['name'] === 'apiserver')!
    expect(apiserver).toEqual({ name: 'apiserver', expirationDate: notAfter.toISOString().replace('.000Z', 'Z'), residualTime: expect.any(Number), caName: 'ca', externallyManaged: false })
    expect(Math.abs((apiserver['residualTime'] as number) - (notAfter.getTime() - Date.now()) / 1000)).toBeLessThan(60)
    expect(json.certificateAuthorities.map((c) => c['name'])).toEqual(['ca', 'etcd-ca', 'front-proxy-ca'])
    expect(json.certificateAuthorities.every((c) => !('caName' in c))).toBe(true)
    expect(lines.find((l) => l.startsWith('apiserver '))).toContain(`${notAfter.toUTCString().slice(8, 11)} ${notAfter.toUTCString().slice(5, 7)}, ${notAfter.getUTCFullYear()} ${notAfter.toISOString().slice(11, 16)} UTC`)
  })
})

describe('a kubeadm node on arm64 (Rocky Linux)', () => {
  let t: TestNode
  beforeAll(async () => {
    t = await startNode({ distribution: 'kubeadm', version: 'v1.29.2', mirror: ['v1.29.2', 'v1.30.4'], os: 'rocky-9', arch: 'arm64' })
  })
  afterAll(async () => t?.cleanup())

  it('says aarch64 everywhere a real one does: uname, the kernel release, the binaries\' platform', async () => {
    const r = await sshExec(t.node, 'uname -m; uname -r; kubeadm version -o yaml | grep platform; kubelet --version=raw; kubectl version --client -o json | grep platform')
    expect(r.stdout.split('\n')).toEqual([
      'aarch64',
      '5.14.0-427.13.1.el9_4.aarch64',
      '  platform: linux/arm64',
      expect.stringMatching(/Platform:"linux\/arm64"\}$/),
      '    "platform": "linux/arm64"',
      '',
    ])
  })
})

describe('a kubeadm node on 32-bit ARM (Debian)', () => {
  let t: TestNode
  beforeAll(async () => {
    t = await startNode({ distribution: 'kubeadm', version: 'v1.29.2', mirror: ['v1.29.2', 'v1.30.4'], os: 'debian-12', arch: 'arm' })
  })
  afterAll(async () => t?.cleanup())

  it("Debian's armmp kernel flavour and dpkg's armhf, and an OS upgrade stages linux-image-armmp", async () => {
    const r = await sshExec(t.node, 'uname -m; uname -r; dpkg-query -l kubeadm | tail -n 1; apt-get upgrade -y >/dev/null; cat /run/reboot-required.pkgs')
    const lines = r.stdout.split('\n')
    expect(lines.slice(0, 2)).toEqual(['armv7l', '6.1.0-21-armmp'])
    expect(lines[2]).toMatch(/^hi  kubeadm +1\.29\.2-1\.1 +armhf +Kubernetes kubeadm$/)
    expect(lines.slice(3)).toEqual(['linux-image-armmp', 'libc6', 'openssl', ''])
  })
})
