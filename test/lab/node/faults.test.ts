import { createServer, type Server } from 'node:https'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCA, issue } from '../../../src/lab/pki/x509.js'
import { freshAddress, sshExec, startNode, waitFor, type TestNode } from './helpers.js'

const metric = (text: string, name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1])

describe('node faults: each observable through its signal, absent without it', () => {
  let t: TestNode
  let api: Server
  const apiAddress = freshAddress()
  beforeAll(async () => {
    // A stand-in API server on the VIP so the ClusterIP path can be seen to reach it when healthy.
    const ca = createCA('lab-test-ca')
    const cert = issue(ca, { commonName: 'kube-apiserver', altNames: [apiAddress, '10.43.0.1'], usage: 'server', notAfter: new Date(Date.now() + 86400_000) })
    api = createServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) => res.end('ok'))
    await new Promise<void>((r) => api.listen(6443, apiAddress, r))
    t = await startNode({ apiEndpoint: `https://${apiAddress}:6443`, timing: { serviceStartMs: 100, kubeProxySyncMs: 100 } })
  })
  afterAll(async () => {
    await t?.cleanup()
    await new Promise((r) => api?.close(r))
  })

  it('kube-proxy-sync-failure: restore-failure counter rises, journal shows the sync errors, healthz goes 503', async () => {
    const healthy = await sshExec(t.node, 'curl -sf http://127.0.0.1:10249/metrics; journalctl -u k3s | grep -c "Sync failed"; curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:10256/healthz')
    expect(metric(healthy.stdout, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total')).toBe(0)
    expect(healthy.stdout).toMatch(/\n0\n200$/)
    t.node.setFault('kube-proxy-sync-failure', true)
    const first = metric((await sshExec(t.node, 'curl -sf http://127.0.0.1:10249/metrics')).stdout, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total')
    expect(first).toBeGreaterThan(0)
    await waitFor('a higher failure counter', async () =>
      metric((await sshExec(t.node, 'curl -sf http://127.0.0.1:10249/metrics')).stdout, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total') > first)
    // k3s v1.29 embeds a kube-proxy that logs structured lines (klog text was kube-proxy ≤ 1.20); retryingTime is
    // the syncPeriod (this node's 100ms).
    const j = await sshExec(t.node, 'journalctl -u k3s --no-pager')
    expect(j.stdout).toMatch(/k3s\[\d+\]: E\d{4} [\d:.]+ +\d+ proxier\.go:\d+\] "Failed to execute iptables-restore" err=<\n/)
    expect(j.stdout).toMatch(/k3s\[\d+\]: I\d{4} [\d:.]+ +\d+ proxier\.go:\d+\] "Sync failed" ipFamily="IPv4" retryingTime="100ms"\n/)
    await waitFor('healthz 503', async () => (await sshExec(t.node, 'curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:10256/healthz')).stdout === '503')
    t.node.setFault('kube-proxy-sync-failure', false)
    expect((await sshExec(t.node, 'curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:10256/healthz')).stdout).toBe('200')
  })

  it('kube-proxy-skew is refused on a k3s node (kube-proxy is the k3s binary) and is no node fault elsewhere', () => {
    expect(() => t.node.setFault('kube-proxy-skew', true)).toThrow('lab node cp-1: kube-proxy-skew cannot happen on k3s: kube-proxy runs inside the k3s binary, always at the k3s version')
  })

  it('api-vip-unreachable: curl to the VIP and the ClusterIP times out with exit 28', async () => {
    const probe = `curl -sSk --connect-timeout 1 https://10.43.0.1:443/readyz; echo " rc=$?"; curl -sSk -m 1 https://${apiAddress}:6443/readyz; echo " rc=$?"`
    expect((await sshExec(t.node, probe)).stdout).toBe('ok rc=0\nok rc=0\n')
    // One curl for both: the real curl does them (the first answer to /dev/null, the second's to the output).
    const healthy = `curl -sSk --stderr - -w '\\ncode=%{http_code}\\n' -m 1 -o /dev/null https://10.43.0.1:443/readyz https://${apiAddress}:6443/readyz; echo "rc=$?"`
    expect((await sshExec(t.node, healthy)).stdout).toBe('\ncode=200\nok\ncode=200\nrc=0\n')
    t.node.setFault('api-vip-unreachable', true)
    const r = await sshExec(t.node, probe)
    expect(r.stdout).toBe(' rc=28\n rc=28\n')
    expect(r.stderr).toBe(`curl: (28) Failed to connect to 10.43.0.1 port 443 after 1000 ms: Timeout was reached\ncurl: (28) Connection timed out after 1001 milliseconds\n`)
    // Both in one curl, messages in the output (--stderr -): each transfer's message, then its write-out, in order,
    // as curl 7.88 prints them (test/gates/curl-transfers.test.ts shows the real one doing so).
    const both = `curl -sSk --stderr - -w 'probe %{url_effective}: HTTP %{http_code}\\n' -m 1 -o /dev/null https://10.43.0.1:443/readyz https://${apiAddress}:6443/readyz; echo "rc=$?"`
    expect((await sshExec(t.node, both)).stdout).toBe([
      'curl: (28) Connection timed out after 1001 milliseconds', 'probe https://10.43.0.1:443/readyz: HTTP 000',
      'curl: (28) Connection timed out after 1001 milliseconds', `probe https://${apiAddress}:6443/readyz: HTTP 000`, 'rc=28', '',
    ].join('\n'))
    // The node's own apiserver is not behind the VIP: it still answers, until the k3s service stops.
    const local = 'curl -sSk -m 2 https://127.0.0.1:6443/readyz; echo " rc=$?"'
    expect((await sshExec(t.node, local)).stdout).toBe('ok rc=0\n')
    t.node.setFault('api-vip-unreachable', false)
    const stopped = await sshExec(t.node, `systemctl stop k3s; ${local}; systemctl start k3s`)
    expect(stopped.stdout).toBe(' rc=7\n')
    expect(stopped.stderr).toBe("curl: (7) Failed to connect to 127.0.0.1 port 6443 after 0 ms: Couldn't connect to server\n")
  })

  it('cert-expired and cert-expiring show in k3s certificate check and in the real files', async () => {
    const check = 'k3s certificate check --output table | grep serving-kube-apiserver; openssl x509 -checkend 0 -noout -in /var/lib/rancher/k3s/server/tls/serving-kube-apiserver.crt'
    expect((await sshExec(t.node, check)).stdout).toMatch(/\s+OK\nCertificate will not expire\n$/)
    t.node.setFault('cert-expired', true)
    const expired = await sshExec(t.node, check)
    expect(expired.stdout).toMatch(/\s+1 day\s+EXPIRED\nCertificate will expire\n$/)
    t.node.setFault('cert-expired', false)
    t.node.setFault('cert-expiring', true, { days: 10 })
    expect((await sshExec(t.node, check)).stdout).toMatch(/\s+1 week\s+WARNING\nCertificate will not expire\n$/)
    expect((await sshExec(t.node, 'k3s certificate check 2>&1 | grep serving-kube-apiserver')).stdout).toMatch(/^WARN\[0000\] serving-kube-apiserver\.crt: certificate kube-apiserver \(ServerAuth\) will expire within 120 days at /)
    t.node.setFault('cert-expiring', false)
    expect((await sshExec(t.node, check)).stdout).toMatch(/\s+OK\nCertificate will not expire\n$/)
  })

  it('disk-full: df shows no space and writers fail', async () => {
    const df = 'df -P / | tail -n 1'
    expect((await sshExec(t.node, df)).stdout).toMatch(/^\/dev\/sda1 +41943040 +10485760 +29360128 +27% \/\n$/)
    t.node.setFault('disk-full', true)
    expect((await sshExec(t.node, df)).stdout).toMatch(/^\/dev\/sda1 +41943040 +41943040 +0 +100% \/\n$/)
    const snap = await sshExec(t.node, 'k3s etcd-snapshot save')
    expect(snap.code).toBe(1)
    expect(snap.stderr).toMatch(/no space left on device/)
    t.node.setFault('disk-full', false)
  })

  it('node-not-ready-after-upgrade: a restart at the same version is no upgrade and leaves the node ready', async () => {
    t.node.setFault('node-not-ready-after-upgrade', true)
    await sshExec(t.node, 'systemctl restart k3s')
    expect(t.node.getState()).toMatchObject({ serviceActive: true, notReady: false })
    t.node.setFault('node-not-ready-after-upgrade', false)
  })

  it('upgrade-command-fails: the installer fails like a broken download', async () => {
    t.node.setFault('upgrade-command-fails', true)
    const r = await sshExec(t.node, 'curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.30.4+k3s1 sh -s -; echo rc=$?; curl -sSfL -o /tmp/k https://github.com/k3s-io/k3s/releases/download/v1.30.4%2Bk3s1/k3s')
    expect(r.stdout).toContain('rc=1\n')
    expect(r.stderr).toBe('[ERROR]  Download failed\ncurl: (56) Recv failure: Connection reset by peer\n')
    expect(t.node.getState().installedVersion).toBe('v1.29.2+k3s1')
    t.node.setFault('upgrade-command-fails', false)
  })

  it('etcd-unhealthy and etcd-db-near-quota show in etcdctl', async () => {
    const ok = await sshExec(t.node, 'etcdctl endpoint health -w json; etcdctl endpoint status -w json')
    const [health, status] = ok.stdout.trim().split('\n')
    expect(JSON.parse(health!)).toEqual([{ endpoint: '127.0.0.1:2379', health: true, took: expect.stringMatching(/ms$/) }])
    const quoted = status!.replace(/:(\d{16,})/g, ':"$1"') // uint64 ids: quote before JSON.parse (lab-findings)
    const st = JSON.parse(quoted) as [{ Status: { dbSize: number; leader: string; header: { member_id: string } } }]
    expect(st[0].Status.leader).toBe(st[0].Status.header.member_id)
    expect(st[0].Status.dbSize).toBeLessThan(0.1 * 2 ** 31)
    t.node.setFault('etcd-unhealthy', true, { hangMs: 50 })
    const bad = await sshExec(t.node, 'etcdctl endpoint health')
    expect(bad).toMatchObject({ code: 1, stdout: '', stderr: '127.0.0.1:2379 is unhealthy: failed to commit proposal: context deadline exceeded\nError: unhealthy cluster\n' })
    t.node.setFault('etcd-unhealthy', false)
    t.node.setFault('etcd-db-near-quota', true)
    const near = JSON.parse((await sshExec(t.node, 'etcdctl endpoint status -w json')).stdout.replace(/:(\d{16,})/g, ':"$1"')) as typeof st
    expect(near[0].Status.dbSize / 2 ** 31).toBeGreaterThan(0.9)
    t.node.setFault('etcd-db-near-quota', false)
  })

  it('ssh-drop: the running command loses its connection; the next one works', async () => {
    expect((await sshExec(t.node, 'echo fine')).stdout).toBe('fine\n')
    t.node.setFault('ssh-drop', true, { afterMs: 1000 }) // long enough for 'started' to arrive on a loaded machine
    const dropped = await sshExec(t.node, 'echo started; sleep 5; echo finished').catch((e: Error) => e)
    if (dropped instanceof Error) expect(dropped.message).toMatch(/ECONNRESET|closed|ended/i)
    else expect(dropped).toMatchObject({ code: null, stdout: 'started\n' })
    expect((await sshExec(t.node, 'echo again')).stdout).toBe('again\n')
  })

  it('ssh-drop with command: only the next command containing it loses its connection, mid-command', async () => {
    t.node.setFault('ssh-drop', true, { afterMs: 1000, command: 'the-chosen-one' })
    // Other commands pass untouched while the fault waits for its command.
    expect((await sshExec(t.node, 'echo other; sleep 1.5; echo still')).stdout).toBe('other\nstill\n')
    const dropped = await sshExec(t.node, 'echo the-chosen-one; sleep 5; echo finished').catch((e: Error) => e)
    if (dropped instanceof Error) expect(dropped.message).toMatch(/ECONNRESET|closed|ended/i)
    else expect(dropped).toMatchObject({ code: null, stdout: 'the-chosen-one\n' })
    // One-shot: the same command runs to its end the next time.
    expect((await sshExec(t.node, 'echo the-chosen-one; sleep 1.5; echo finished')).stdout).toBe('the-chosen-one\nfinished\n')
  })

  it('rejects unknown faults', () => {
    expect(() => t.node.setFault('coredns-crashloop', true)).toThrow(/unknown node fault/)
  })
})
