import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { recordEvents, sshExec, startNode, waitFor, type TestNode } from './helpers.js'

describe('k3s node: stand-ins, upgrade and restart', () => {
  let t: TestNode
  let ev: ReturnType<typeof recordEvents>
  beforeAll(async () => {
    // rebootMs leaves a wide window in which the test can see sshd down.
    t = await startNode({ timing: { serviceStartMs: 1500, rebootMs: 2500 } })
    ev = recordEvents(t.node)
  })
  afterAll(async () => t?.cleanup())

  it('prints `k3s --version` as facts §2.1', async () => {
    const r = await sshExec(t.node, 'k3s --version')
    expect(r.stdout).toMatch(/^k3s version v1\.29\.2\+k3s1 \([0-9a-f]{8}\)\ngo version go1\.\d+\.\d+\n$/)
  })

  it('takes on-demand etcd snapshots in the k3s snapshot dir (facts §3.1)', async () => {
    const r = await sshExec(t.node, 'k3s etcd-snapshot save && k3s etcd-snapshot ls')
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/^INFO\[0000\] Snapshot on-demand-cp-1-\d+ saved\.\n$/)
    expect(r.stdout).toMatch(/^Name\s+Location\s+Size\s+Created\non-demand-cp-1-\d+\s+file:\/\/\/var\/lib\/rancher\/k3s\/server\/db\/snapshots\/on-demand-cp-1-\d+\s+\d+\s+\d{4}-/)
  })

  it('prunes snapshots only when asked, keeping the newest by the time in their names (k3s snapshotRetention)', async () => {
    const dir = '/var/lib/k/snaps'
    // Six earlier saves of one name (times in the names, mtimes all now), one of another name.
    const plant = [1000, 1001, 1002, 1003, 1004, 1005].map((ts) => `pre-cp-1-${ts}`).concat('other-cp-1-900')
    expect((await sshExec(t.node, `mkdir -p ${dir} && cd ${dir} && touch ${plant.join(' ')}`)).code).toBe(0)
    const save = await sshExec(t.node, `k3s etcd-snapshot save --name pre --etcd-snapshot-dir ${dir} && ls ${dir}`)
    expect(save.code, save.stderr).toBe(0)
    expect(save.stderr).toMatch(/^INFO\[0000\] Snapshot pre-cp-1-\d+ saved\.\n$/)
    expect(save.stdout.trim().split('\n')).toHaveLength(8)
    const prune = await sshExec(t.node, `k3s etcd-snapshot prune --name pre --etcd-snapshot-dir ${dir} --etcd-snapshot-retention 2 && ls ${dir}`)
    expect(prune.code, prune.stderr).toBe(0)
    expect(prune.stderr.split('\n').filter(Boolean)).toEqual([1004, 1003, 1002, 1001, 1000].map((ts) => `INFO[0000] Snapshot pre-cp-1-${ts} deleted.`))
    expect(prune.stdout.trim().split('\n')).toEqual(['other-cp-1-900', save.stderr.match(/pre-cp-1-\d+/)![0], 'pre-cp-1-1005'].sort())
    const del = await sshExec(t.node, `k3s etcd-snapshot delete --etcd-snapshot-dir ${dir} other-cp-1-900 nope && ls ${dir}`)
    expect(del.stderr).toBe('INFO[0000] Snapshot other-cp-1-900 deleted.\nWARN[0000] Snapshot nope not found.\n')
    expect(del.stdout.trim().split('\n')).toHaveLength(2)
  })

  it('checks certificates as a table with the columns of facts §3.1 (layout of k3s pkg/cli/cert)', async () => {
    const r = await sshExec(t.node, 'k3s certificate check --output table')
    expect(r.stderr).toBe('INFO[0000] Server detected, checking agent and server certificates\n')
    const [blank, header, dashes, ...rows] = r.stdout.split('\n')
    expect(blank).toBe('')
    expect(header).toMatch(/^FILENAME {21}SUBJECT {26}USAGES {7}EXPIRES {18}RESIDUAL TIME {3}STATUS$/)
    expect(dashes).toMatch(/^-{8} +-{7} +-{6} +-{7} +-{13} +-{6}$/)
    expect(rows.find((l) => l.startsWith('serving-kube-apiserver.crt'))).toMatch(/^serving-kube-apiserver\.crt +kube-apiserver +ServerAuth +\w{3} \d\d, \d{4} \d\d:\d\d UTC +1 year +OK$/)
    // The dates are the certificate's own notAfter, in UTC, in each output's format.
    const end = await sshExec(t.node, 'openssl x509 -enddate -noout -in /var/lib/rancher/k3s/server/tls/serving-kube-apiserver.crt')
    const notAfter = new Date(end.stdout.slice('notAfter='.length).trim())
    const utc = notAfter.toUTCString()
    expect(rows.find((l) => l.startsWith('serving-kube-apiserver.crt'))).toContain(` ${utc.slice(8, 11)} ${utc.slice(5, 7)}, ${notAfter.getUTCFullYear()} ${notAfter.toISOString().slice(11, 16)} UTC `)
    const json = JSON.parse((await sshExec(t.node, 'k3s certificate check -o json 2>/dev/null')).stdout) as { Certificates: { Filename: string; ExpiryTime: string; ResidualTime: number }[] }
    const serving = json.Certificates.find((c) => c.Filename === 'serving-kube-apiserver.crt')!
    expect(serving.ExpiryTime).toBe(notAfter.toISOString().replace('.000Z', 'Z'))
    expect(Math.abs(serving.ResidualTime / 1e9 - (notAfter.getTime() - Date.now()) / 1000)).toBeLessThan(60)
    const text = await sshExec(t.node, 'k3s certificate check')
    expect(text.stderr).toMatch(/\nINFO\[0000\] client-admin\.crt: certificate system:admin \(ClientAuth\) is ok, expires at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n/)
  })

  it('a release missing from the mirror fails like a failed download and changes nothing', async () => {
    const before = readFileSync(join(t.node.paths.root, 'usr/local/bin/k3s'), 'utf8')
    const r = await sshExec(t.node, 'curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.31.0+k3s1 sh -s - server')
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('[ERROR]  Download failed\n')
    const direct = await sshExec(t.node, 'curl -sSfL -o /tmp/k3s https://github.com/k3s-io/k3s/releases/download/v1.31.0%2Bk3s1/k3s')
    expect(direct).toMatchObject({ code: 22, stderr: 'curl: (22) The requested URL returned error: 404\n' })
    expect(readFileSync(join(t.node.paths.root, 'usr/local/bin/k3s'), 'utf8')).toBe(before)
  })

  it("a byte range of a release's file answers 206 with those bytes, as GitHub's downloads do; a missing file is still a 404", async () => {
    const url = 'https://github.com/k3s-io/k3s/releases/download/v1.30.4%2Bk3s1'
    const whole = await sshExec(t.node, `curl -sSfL ${url}/k3s | head -c 16 | od -An -tx1`)
    expect(whole.code).toBe(0)
    const part = await sshExec(t.node, `curl -sSfL -r 0-0 -w ' %{http_code}' -o /tmp/first ${url}/k3s && od -An -tx1 /tmp/first`)
    expect(part.code, part.stderr).toBe(0)
    expect(part.stdout.trim()).toBe(`206 ${whole.stdout.trim().split(/\s+/)[0]}`)
    const some = await sshExec(t.node, `curl -sSfL --range 2-5 ${url}/sha256sum-amd64.txt`)
    expect(some.stdout).toBe((await sshExec(t.node, `curl -sSfL ${url}/sha256sum-amd64.txt`)).stdout.slice(2, 6))
    expect(await sshExec(t.node, `curl -sSfL -r 0-0 -o /dev/null ${url}/no-such-asset`)).toMatchObject({ code: 22, stderr: 'curl: (22) The requested URL returned error: 404\n' })
  })

  it('replacing the binary changes the installed version; the restart runs it only after the start delay', async () => {
    const r = await sshExec(t.node, 'systemctl stop k3s && curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.30.4+k3s1 INSTALL_K3S_SKIP_START=true sh -s - server && k3s --version')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('[INFO]  Installing k3s to /usr/local/bin/k3s\n')
    expect(r.stdout).toContain('k3s version v1.30.4+k3s1 (')
    expect(await ev.next('installed')).toEqual({ version: 'v1.30.4+k3s1', binary: 'k3s' })
    expect(await ev.next('service')).toEqual({ service: 'k3s', state: 'stopped', version: 'v1.29.2+k3s1' })
    expect(readFileSync(join(t.node.paths.root, 'usr/local/bin/k3s'), 'utf8')).toContain("LAB_VERSION='v1.30.4+k3s1'")
    expect(t.node.getState()).toMatchObject({ installedVersion: 'v1.30.4+k3s1', runningVersion: 'v1.29.2+k3s1', serviceActive: false })

    // Start in the background: during the 1.5 s start delay the unit is activating and the fleet has no 'started' yet.
    const during = await sshExec(t.node, '(systemctl start k3s >/dev/null 2>&1 &); for i in $(seq 200); do s=$(systemctl is-active k3s); [ "$s" != inactive ] && break; sleep 0.01; done; echo "$s"')
    expect(during.stdout).toBe('activating\n')
    expect(ev.list.some((e) => e.name === 'service' && e.data['state'] === 'started')).toBe(false)
    const started = await ev.next('service')
    expect(started).toEqual({ service: 'k3s', state: 'started', version: 'v1.30.4+k3s1', due: expect.any(Number) })
    // The event carries the start's own due time (the fleet reads the unit as of it), the one the unit file holds.
    expect(started['due']).toBe(Number(readFileSync(join(t.node.paths.units, 'k3s'), 'utf8').trim().split(/\s+/)[2]))
    expect(t.node.getState()).toMatchObject({ installedVersion: 'v1.30.4+k3s1', runningVersion: 'v1.30.4+k3s1', serviceActive: true })
    expect((await sshExec(t.node, 'systemctl is-active k3s; systemctl status k3s | head -3')).stdout).toMatch(/^active\n● k3s\.service - Lightweight Kubernetes\n.*\n\s+Active: active \(running\) since /)
  })

  it('shows the service in the journal', async () => {
    const r = await sshExec(t.node, 'journalctl -u k3s --no-pager -n 3')
    expect(r.stdout).toMatch(/^\w{3} \d\d \d\d:\d\d:\d\d cp-1 systemd\[\d+\]: Starting k3s\.service\.\.\.\n.*k3s\[\d+\]: Running k3s v1\.30\.4\+k3s1\n.*systemd\[\d+\]: Started k3s\.service\.\n$/)
  })

  it('reboot drops SSH, the node comes back with the same key and k3s started', async () => {
    const r = await sshExec(t.node, 'touch /run/reboot-required; reboot').catch((e: Error) => e)
    // The session dies with the node: no clean exit status (ssh2 reports a reset or a close without one).
    expect(r instanceof Error || (r as { code: number | null }).code === null).toBe(true)
    expect(await ev.next('reboot')).toEqual({ phase: 'down' })
    await expect(sshExec(t.node, 'true', { timeoutMs: 5000 })).rejects.toThrow(/ECONNREFUSED|ECONNRESET|closed/)
    expect(await ev.next('reboot')).toEqual({ phase: 'up' })
    expect(await ev.next('service', (d) => d['state'] === 'started')).toEqual({ service: 'k3s', state: 'started', version: 'v1.30.4+k3s1', due: expect.any(Number) })
    const after = await sshExec(t.node, 'systemctl is-active k3s; ls /run')
    expect(after.stdout).toBe('active\nlab\n') // /run is a tmpfs: reboot-required is gone
  })
})

describe('k3s node loading its images from archives (airgapImages)', () => {
  const IMAGES = '/var/lib/rancher/k3s/agent/images'
  let t: TestNode
  beforeAll(async () => {
    t = await startNode({ name: 'gap-1', role: 'worker', airgapImages: true, timing: { serviceStartMs: 150, rebootMs: 400, kubeProxySyncMs: 100 } })
  })
  afterAll(async () => t?.cleanup())
  const journal = async () => (await sshExec(t.node, 'journalctl -u k3s-agent --no-pager -o cat')).stdout

  it("imports every archive in agent/images at a start and at boot; a .txt is a pull list, any other file an error", async () => {
    expect((await sshExec(t.node, `ls ${IMAGES}`)).stdout).toBe('k3s-airgap-images-amd64.tar.zst\n')
    expect(t.node.getState().airgapImages).toEqual(['v1.29.2+k3s1'])
    // Without a restart nothing is imported: the archive put there waits for k3s to start.
    const url = 'https://github.com/k3s-io/k3s/releases/download/v1.30.4%2Bk3s1/k3s-airgap-images-amd64.tar'
    const put = await sshExec(t.node, `curl -sSfL -o ${IMAGES}/k3s-airgap-images-amd64.tar ${url} && echo notes > ${IMAGES}/README.md && echo docker.io/library/busybox:1.36 > ${IMAGES}/pull.txt`)
    expect(put.code, put.stderr).toBe(0)
    expect(t.node.getState().airgapImages).toEqual(['v1.29.2+k3s1'])
    // At boot (the lab's boot path) …
    await sshExec(t.node, 'reboot').catch(() => undefined)
    await waitFor('k3s-agent back after the reboot', () => !t.node.getState().rebooting && t.node.getState().serviceActive, 15_000)
    expect(t.node.getState().airgapImages).toEqual(['v1.29.2+k3s1', 'v1.30.4+k3s1'])
    const boot = await journal()
    expect(boot).toContain(`level=info msg="Importing images from ${IMAGES}/k3s-airgap-images-amd64.tar"`)
    expect(boot).toContain(`level=error msg="Error encountered while importing ${IMAGES}/README.md: unhandled file type"`)
    expect(boot).not.toContain(`${IMAGES}/pull.txt`)
    // … and at a start by systemctl (lib.sh), the same.
    await sshExec(t.node, `rm -f ${IMAGES}/k3s-airgap-images-amd64.tar`)
    const before = (await journal()).split('\n').length
    expect((await sshExec(t.node, 'systemctl restart k3s-agent')).code).toBe(0)
    const started = (await journal()).split('\n').slice(before - 1).join('\n')
    expect(started).toContain(`level=info msg="Importing images from ${IMAGES}/k3s-airgap-images-amd64.tar.zst"`)
    expect(started).toContain(`level=error msg="Error encountered while importing ${IMAGES}/README.md: unhandled file type"`)
    expect(started).not.toContain('pull.txt')
    // Imported images stay in containerd's store: the archive's removal takes nothing back.
    expect(t.node.getState().airgapImages).toEqual(['v1.29.2+k3s1', 'v1.30.4+k3s1'])
  })
})
