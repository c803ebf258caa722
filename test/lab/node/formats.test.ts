import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sshExec, startNode, type TestNode } from './helpers.js'

describe('stand-in output formats (golden strings from the facts reference and lab-findings)', () => {
  let t: TestNode
  beforeAll(async () => {
    t = await startNode({ distribution: 'kubeadm', version: 'v1.30.4', mirror: ['v1.30.4'], iptablesBackend: 'legacy' })
  })
  afterAll(async () => t?.cleanup())

  it('etcdctl endpoint health (simple, json, table) and endpoint status table (facts §4.7)', async () => {
    const r = await sshExec(t.node, 'etcdctl --endpoints=https://127.0.0.1:2379 endpoint health; etcdctl endpoint status -w table')
    const lines = r.stdout.split('\n')
    expect(lines[0]).toMatch(/^https:\/\/127\.0\.0\.1:2379 is healthy: successfully committed proposal: took = \d+\.\d+ms$/)
    expect(lines[1]).toMatch(/^\+-+(\+-+){9}\+$/)
    expect(lines[2]).toMatch(/^\| +ENDPOINT +\| +ID +\| VERSION \| DB SIZE \| IS LEADER \| IS LEARNER \| RAFT TERM \| RAFT INDEX \| RAFT APPLIED INDEX \| ERRORS \|$/)
    expect(lines[4]).toMatch(/^\| 127\.0\.0\.1:2379 \| [0-9a-f]{16} \| +3\.5\.\d+ \| +\d+(\.\d)? MB \| +true \| +false \| +2 \| +\d+ \| +\d+ \| +\|$/)
  })

  it('systemctl exit codes: is-active 0/3, status 0/3/4, start of a missing unit 5', async () => {
    const r = await sshExec(t.node, [
      'systemctl is-active kubelet; echo "rc=$?"', 'systemctl status kubelet >/dev/null; echo "rc=$?"',
      'systemctl stop kubelet; systemctl is-active kubelet; echo "rc=$?"', 'systemctl status kubelet >/dev/null; echo "rc=$?"',
      'systemctl status nope 2>&1; echo "rc=$?"', 'systemctl start nope 2>&1; echo "rc=$?"', 'systemctl is-active --quiet kubelet; echo "rc=$?"',
    ].join('; '))
    expect(r.stdout).toBe('active\nrc=0\nrc=0\ninactive\nrc=3\nrc=3\nUnit nope.service could not be found.\nrc=4\nFailed to start nope.service: Unit nope.service not found.\nrc=5\nrc=3\n')
    await sshExec(t.node, 'systemctl start kubelet')
  })

  it('iptables-legacy-save holds the kubelet hint chains, the nft side is empty (facts §4.3)', async () => {
    const r = await sshExec(t.node, "iptables -V; iptables-legacy-save -t mangle | sed -e '/^#/d'; iptables-nft-save | wc -l")
    expect(r.stdout).toBe('iptables v1.8.7 (legacy)\n*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n' +
      ':KUBE-IPTABLES-HINT - [0:0]\n:KUBE-KUBELET-CANARY - [0:0]\n:KUBE-PROXY-CANARY - [0:0]\nCOMMIT\n0\n')
  })

  it('kube-proxy metrics and healthz (facts §4.2) on a kubeadm node: plain git_version, healthz JSON', async () => {
    const r = await sshExec(t.node, 'curl -s http://127.0.0.1:10249/metrics | grep -v "^#"; curl -s http://127.0.0.1:10256/healthz; echo; curl -s http://127.0.0.1:10249/proxyMode')
    expect(r.stdout).toMatch(/^kubernetes_build_info\{build_date="[^"]+",compiler="gc",git_commit="[0-9a-f]{40}",git_tree_state="clean",git_version="v1\.30\.4",go_version="go[\d.]+",major="1",minor="30",platform="linux\/amd64"\} 1\n/)
    expect(r.stdout).toMatch(/\nkubeproxy_sync_proxy_rules_iptables_restore_failures_total 0\nkubeproxy_sync_proxy_rules_last_timestamp_seconds \d\.\d{9}e\+09\n/)
    expect(r.stdout).toMatch(/\n\{"lastUpdated": "\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} \+0000 UTC m=\+\d+\.\d{9}","currentTime": "[^"]+", "nodeEligible": true\}\niptables$/)
  })

  it('sudo and reboot refusals for a login without rights', async () => {
    const u = await startNode({ name: 'w-2', role: 'worker', distribution: 'kubeadm', version: 'v1.30.4', mirror: ['v1.30.4'], users: [{ name: 'dev', sudo: false }] })
    try {
      const r = await sshExec(u.node, 'sudo apt-get update; echo "rc=$?"; reboot; echo "rc=$?"; apt-get update; echo "rc=$?"', { user: 'dev' })
      expect(r.stdout).toBe('rc=1\nrc=1\nrc=100\n')
      expect(r.stderr).toBe('sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper\n' +
        'sudo: a password is required\nCall to Reboot failed: Interactive authentication required.\n' +
        'E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\nE: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), are you root?\n')
    } finally {
      await u.cleanup()
    }
  })
})
