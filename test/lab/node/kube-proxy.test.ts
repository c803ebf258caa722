import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { nodesForThisFile, sshExec, waitFor } from './helpers.js'
import type { KubeProxyPod } from '../../../src/lab/node/index.js'

const node = nodesForThisFile()
const metric = (text: string, name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1])
const buildVersion = (text: string) => /kubernetes_build_info\{.*git_version="([^"]+)"/.exec(text)?.[1]
// The real tools, not the lab's curl stand-in (first on PATH): every client on a node reaches these ports.
const REAL = [
  '/usr/bin/curl -s http://127.0.0.1:10249/metrics | grep kubernetes_build_info{',
  'wget -qO- http://127.0.0.1:10248/healthz; echo',
  'exec 3<>/dev/tcp/127.0.0.1/10256; printf "GET /healthz HTTP/1.0\\r\\n\\r\\n" >&3; head -n 1 <&3',
].join('; ')

describe('kube-proxy and kubelet ports are real sockets, served by the kube-proxy that runs on that node', () => {
  it('each node has its own 127.0.0.1:10249/10248/10256 for real curl, wget and bash /dev/tcp; the host has none', async () => {
    const k3s = await node({ address: '127.0.60.1', name: 'cp-1' })
    const kadm = await node({ address: '127.0.60.2', name: 'w-1', role: 'worker', distribution: 'kubeadm', version: 'v1.30.4', mirror: ['v1.30.4'] })
    const [a, b] = await Promise.all([sshExec(k3s.node, REAL), sshExec(kadm.node, REAL)])
    expect(buildVersion(a.stdout)).toBe('v1.29.2+k3s1')
    expect(a.stdout).toMatch(/\nok\nHTTP\/1\.1 200 OK\r?\n$/)
    expect(buildVersion(b.stdout)).toBe('v1.30.4')
    expect(b.stdout).toMatch(/\nok\nHTTP\/1\.1 200 OK\r?\n$/)
    // A process in no node (this test) is no kube-proxy's client: the connection is dropped.
    const host = await new Promise<string>((resolve) => {
      const s = connect(10249, '127.0.0.1', () => s.write('GET /metrics HTTP/1.0\r\n\r\n'))
      let got = ''
      s.on('data', (d) => (got += d.toString()))
      s.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code}`))
      s.on('close', () => resolve(got || 'closed'))
    })
    expect(host).toMatch(/^(error ECONNRESET|closed)$/)
  })

  it('binds as the distribution does: kubeadm healthz on the node address, metrics on 127.0.0.1 only; k3s both local', async () => {
    const kadm = await node({ address: '127.0.60.3', name: 'w-2', role: 'worker', distribution: 'kubeadm', version: 'v1.30.4', mirror: ['v1.30.4'] })
    const k3s = await node({ address: '127.0.60.4', name: 'cp-2' })
    const probe = (addr: string, port: number) => `/usr/bin/curl -s -o /dev/null -w "%{http_code}" http://${addr}:${port}/healthz; echo " rc=$?"`
    const r = await sshExec(k3s.node, [probe('127.0.60.3', 10256), probe('127.0.60.3', 10249), probe('127.0.60.4', 10256)].join('; '))
    expect(r.stdout).toBe('200 rc=0\n000 rc=7\n000 rc=7\n')
    void kadm
  })

  it('k3s: kube-proxy is the k3s process — down while k3s is stopped, back with the new binary version', async () => {
    const t = await node({ address: '127.0.60.5', name: 'cp-3', timing: { serviceStartMs: 100 } })
    const r = await sshExec(t.node, 'systemctl stop k3s; /usr/bin/curl -s http://127.0.0.1:10249/metrics; echo "rc=$?"; wget -qO- -T 2 -t 1 http://127.0.0.1:10248/healthz; echo "rc=$?"')
    expect(r.stdout).toMatch(/^rc=(56|7)\nrc=[1-9]\n$/)
    const up = await sshExec(t.node, 'curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.30.4+k3s1 sh - >/dev/null && /usr/bin/curl -s http://127.0.0.1:10249/metrics')
    expect(buildVersion(up.stdout)).toBe('v1.30.4+k3s1')
  })

  it('kubeadm/k0s: the version is the kube-proxy pod\'s on that node (the fleet\'s DaemonSet), not the kubelet\'s', async () => {
    let pod: KubeProxyPod | undefined = { name: 'kube-proxy-x7k2p', uid: '0f4c3a9e-0000-4000-8000-000000000001', version: 'v1.29.6', startedAt: new Date() }
    const t = await node({ address: '127.0.60.6', name: 'w-3', role: 'worker', distribution: 'k0s', version: 'v1.30.4+k0s.0', mirror: ['v1.30.4+k0s.0'], kubeProxyPod: () => pod })
    const get = async () => (await sshExec(t.node, '/usr/bin/curl -s http://127.0.0.1:10249/metrics; echo "rc=$?"')).stdout
    expect(buildVersion(await get())).toBe('v1.29.6')
    pod = undefined // the DaemonSet is replacing it: no kube-proxy runs on the node for now
    expect(await get()).toMatch(/^rc=(56|7)\n$/)
    pod = { name: 'kube-proxy-q9w8z', uid: '0f4c3a9e-0000-4000-8000-000000000002', version: 'v1.30.4', startedAt: new Date() }
    expect(buildVersion(await get())).toBe('v1.30.4')
    // k0s binds metrics on 0.0.0.0: the node address reaches it too.
    expect(buildVersion((await sshExec(t.node, '/usr/bin/curl -s http://127.0.0.1:10249/metrics')).stdout)).toBe('v1.30.4')
    expect(buildVersion((await sshExec(t.node, '/usr/bin/curl -s http://127.0.60.6:10249/metrics')).stdout)).toBe('v1.30.4')
  })
})

describe('kube-proxy-sync-failure at kube-proxy\'s rate: one failed sync per syncPeriod', () => {
  it('counter and log lines rise together; structured lines (current kube-proxy) in the pod log file and kubectl logs', async () => {
    const pod = { name: 'kube-proxy-h5m2c', uid: '7d1e2f3a-1111-4222-8333-444455556666', version: 'v1.30.4', startedAt: new Date(Date.now() - 60_000) }
    const t = await node({ address: '127.0.60.7', name: 'w-4', role: 'worker', distribution: 'kubeadm', version: 'v1.30.4', mirror: ['v1.30.4'],
      timing: { kubeProxySyncMs: 300 }, kubeProxyPod: () => pod })
    const counter = async () => metric((await sshExec(t.node, '/usr/bin/curl -s http://127.0.0.1:10249/metrics')).stdout, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total')
    expect(await counter()).toBe(0)
    t.node.setFault('kube-proxy-sync-failure', true)
    expect(await counter()).toBeGreaterThanOrEqual(1) // the first failed sync is at once
    await waitFor('three failed syncs', async () => (await counter()) >= 3)
    t.node.setFault('kube-proxy-sync-failure', false)
    const n = await counter()
    const file = `/var/log/pods/kube-system_${pod.name}_${pod.uid}/kube-proxy/0.log`
    const onNode = (await sshExec(t.node, `cat ${file}`)).stdout
    // CRI log format: RFC3339Nano time, stream, F(ull line), the message.
    expect(onNode).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z stderr F I\d{4} [\d:.]+ +1 server_linux\.go:\d+\] "Using iptables proxy"\n/)
    const logs = t.node.readKubeProxyLog()
    expect(logs).toBe(onNode.replace(/^\S+ stderr F /gm, ''))
    expect(logs.match(/^E\d{4} [\d:.]+ +1 proxier\.go:\d+\] "Failed to execute iptables-restore" err=<$/gm)).toHaveLength(n)
    expect(logs.match(/^I\d{4} [\d:.]+ +1 proxier\.go:\d+\] "Sync failed" ipFamily="IPv4" retryingTime="300ms"$/gm)).toHaveLength(n)
    expect(logs).toContain('"Version info" version="v1.30.4"')
    // One failure per period and no more: the counter stops when the fault goes.
    await new Promise((r) => setTimeout(r, 700))
    expect(await counter()).toBe(n)
    expect(readdirSync(join(t.node.paths.root, 'var/log/pods'))).toEqual([`kube-system_${pod.name}_${pod.uid}`])
  })

  it('an old kube-proxy (≤ 1.20) logs the klog text form; the default syncPeriod is 30s', async () => {
    const t = await node({ address: '127.0.60.8', name: 'w-5', role: 'worker', distribution: 'kubeadm', version: 'v1.20.15', mirror: ['v1.20.15'], timing: {} })
    t.node.setFault('kube-proxy-sync-failure', true)
    const logs = t.node.readKubeProxyLog()
    expect(logs).toMatch(/^E\d{4} [\d:.]+ +1 proxier\.go:\d+\] Failed to execute iptables-restore: exit status 1 \(iptables-restore: line 86 failed\n\)\nI\d{4} [\d:.]+ +1 proxier\.go:\d+\] Sync failed; retrying in 30s$/m)
    const podDir = readdirSync(join(t.node.paths.root, 'var/log/pods'))[0]!
    expect(readFileSync(join(t.node.paths.root, 'var/log/pods', podDir, 'kube-proxy/0.log'), 'utf8')).toContain(' stderr F I')
    t.node.setFault('kube-proxy-sync-failure', false)
  })
})
