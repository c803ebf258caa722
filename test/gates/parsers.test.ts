import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Node, Pod } from 'kubernetes-types/core/v1.js'
import { describe, expect, it } from 'vitest'
import { certFilesScript, parseCertFiles, parseKubeadmExpiration, parseOpensslDate } from '../../src/gates/checks/certificates.js'
import { createCA, issue } from '../../src/lab/pki/x509.js'
import { parseNslookup } from '../../src/gates/checks/dns.js'
import { judgeEtcdNode, membershipFinding, parseQuota } from '../../src/gates/checks/etcd.js'
import { judgeHealthz, judgeLog, judgeMetrics, lineTime } from '../../src/gates/checks/kube-proxy-sync.js'
import { judge as judgeNode } from '../../src/gates/checks/nodes-ready.js'
import { judgePod } from '../../src/gates/checks/system-pods.js'
import { parsePrometheus, sumOf } from '../../src/gates/read/prom.js'
import { firstServiceIP } from '../../src/gates/read/service-ip.js'
import { bytes, cpuMilli, matches } from '../../src/gates/read/workloads.js'

const fixture = (f: string) => readFileSync(join(import.meta.dirname, 'fixtures', f), 'utf8')

describe('etcd: real etcdctl 3.4.23 output', () => {
  it('a healthy single member: healthy, leader is itself, DB far under the default 2 GiB quota', () => {
    const j = judgeEtcdNode('cp-1', fixture('etcd-3.4.23-healthy.txt'), 0.8)
    expect(j.findings.map((f) => f.status)).toEqual(['pass', 'pass'])
    expect(j.leader).toBe('8412909167226757059') // uint64 kept exact, not rounded through a double
    expect(j.members).toEqual([{ name: expect.any(String), id: '8412909167226757059', peer: expect.stringMatching(/^https?:\/\//) }])
    expect(j.findings[1]!.observed).toMatch(/^DB 20\.0 KiB \(in use 16\.0 KiB\) of quota 2\.0 GiB \(etcd default\) = 0\.0%; leader 8412909167226757059 \(this member\)$/)
  })

  it('an unreachable member: the JSON answer is found behind etcdctl’s JSON warning log line, and it fails', () => {
    const j = judgeEtcdNode('cp-1', fixture('etcd-3.4.23-down.txt'), 0.8)
    expect(j.findings[0]).toMatchObject({ status: 'fail', problem: 'cp-1: etcd member unhealthy' })
    expect(j.findings[0]!.observed).toContain('"health":false')
    expect(j.findings[0]!.observed).not.toContain('"level":"warn"')
    expect(j.findings[1]).toMatchObject({ status: 'fail', problem: 'cp-1: etcd status unreadable' })
  })

  it('DB size against --quota-backend-bytes, and a NOSPACE alarm', () => {
    const near = fixture('etcd-3.4.23-healthy.txt').replace('"dbSize":20480', '"dbSize":7516192768').replace('@@quota', '@@quota\n--quota-backend-bytes=8589934592').replace('@@alarms\n', '@@alarms\nmemberID:8412909167226757059 alarm:NOSPACE\n')
    const j = judgeEtcdNode('cp-1', near, 0.8)
    expect(j.findings.filter((f) => f.status === 'fail').map((f) => f.problem)).toEqual(['cp-1: etcd DB at 88% of its quota (max 80%)', 'cp-1: etcd alarm NOSPACE'])
    expect(parseQuota('')).toEqual({ bytes: 2147483648, source: 'etcd default' })
    expect(parseQuota('--quota-backend-bytes=0').source).toBe('etcd default')
  })
})

describe('etcd: members against the control-plane nodes of the plan', () => {
  const m = (name: string, id = '1', peer?: string) => ({ name, id, ...(peer ? { peer } : {}) })
  const hosts = (names: string[]) => names.map((name, i) => ({ name, host: `10.0.0.${i + 1}` }))
  it('k3s members are named after their node and 8 hex digits; a node whose name is a prefix of another is not matched by it', () => {
    const lists = [{ node: 's1', members: [m('s1-0a1b2c3d'), m('s10-0a1b2c3d'), m('s2-ffffffff')] }]
    const f = membershipFinding('k3s', hosts(['s1', 's2']), lists)
    expect(f).toMatchObject({ status: 'fail', problem: 'etcd has 3 members for 2 control-plane nodes in the plan: etcd member s10-0a1b2c3d is no control-plane node of the plan: this run would leave it at the current version' })
    expect(membershipFinding('k3s', hosts(['s1', 's2', 's10']), lists)).toMatchObject({ status: 'pass', source: 'etcdctl member list on s1' })
    // Only k3s adds the suffix: a kubeadm member s1-0a1b2c3d is no node s1.
    expect(membershipFinding('kubeadm', hosts(['s1', 's2', 's10']), lists)?.status).toBe('fail')
  })
  it('k0s and kubeadm name members after the node; a planned node that is no member, and an unstarted member, are said', () => {
    const f = membershipFinding('kubeadm', hosts(['cp-1', 'cp-2', 'cp-3']), [{ node: 'cp-1', members: [m('cp-1', '1', 'https://10.0.0.1:2380'), m('cp-2'), m('', '8412909167226757059')] }, { node: 'cp-2', members: [] }])
    expect(f).toMatchObject({
      status: 'fail', source: 'etcdctl member list on cp-1, cp-2',
      observed: '3 members: cp-1 (https://10.0.0.1:2380), cp-2, (unstarted); control-plane nodes in the plan: cp-1, cp-2, cp-3',
      problem: 'etcd has 3 members for 3 control-plane nodes in the plan: etcd member 74c0a850682d9fc3 (unstarted) is no control-plane node of the plan: this run would leave it at the current version; control-plane node cp-3 of the plan is no member of this etcd',
    })
    expect(membershipFinding('k0s', hosts(['c1']), [])).toBeUndefined()
    // k0s names a member after its host's name (os.Hostname()); a plan that names its controllers otherwise still has
    // each member accounted for by the peer URL's address. One on an address of no planned node is said.
    const k0s = [{ node: 'ctrl-a', members: [m('ip-10-0-0-1', '1', 'https://10.0.0.1:2380'), m('ip-10-0-0-2', '2', 'https://10.0.0.2:2380'), m('ip-10-0-0-9', '3', 'https://10.0.0.9:2380')] }]
    expect(membershipFinding('k0s', hosts(['ctrl-a', 'ctrl-b']), k0s)?.problem).toBe('etcd has 3 members for 2 control-plane nodes in the plan: etcd member ip-10-0-0-9 is no control-plane node of the plan: this run would leave it at the current version')
  })
})

describe('certificates: the node script with the real sh and awk, and kubeadm output', () => {
  it('openssl x509 -enddate -noout (OpenSSL 3) and X509Certificate.validTo dates, single-digit days padded', () => {
    expect(parseOpensslDate('notAfter=Dec 10 08:23:56 2026 GMT')?.toISOString()).toBe('2026-12-10T08:23:56.000Z')
    expect(parseOpensslDate('notAfter=Jan  2 15:04:05 2027 GMT')?.toISOString()).toBe('2027-01-02T15:04:05.000Z')
  })

  it('reads every certificate of every file, never a private key, and names a file without one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kupgrade-certs-'))
    try {
      mkdirSync(join(dir, 'pki'))
      const ca = createCA('test-ca')
      const day = 86_400_000
      const leaf = issue(ca, { commonName: 'apiserver', usage: 'server', notAfter: new Date(Date.now() + 400 * day) })
      const intermediate = issue(ca, { commonName: 'intermediate', usage: 'client', notAfter: new Date(Date.now() + 5 * day) })
      const client = issue(ca, { commonName: 'system:node:w-1', usage: 'client', notAfter: new Date(Date.now() + 300 * day) })
      writeFileSync(join(dir, 'pki', 'ca.crt'), ca.certPem)
      // A bundle: the first certificate is fine, the second expires in five days (openssl x509 reads only the first).
      writeFileSync(join(dir, 'pki', 'chain.crt'), `${leaf.certPem}${intermediate.certPem}`)
      writeFileSync(join(dir, 'pki', 'empty.crt'), '')
      // kubelet-client-current.pem: the certificate and its private key in one file.
      writeFileSync(join(dir, 'kubelet-client-current.pem'), `${client.certPem}${client.keyPem}`)
      const out = execFileSync('/bin/sh', ['-c', certFilesScript([`${dir}/pki/*.crt`, `${dir}/pki/etcd/*.crt`, `${dir}/kubelet-client-current.pem`])], { encoding: 'utf8' })
      expect(out).not.toMatch(/PRIVATE KEY/)
      const files = parseCertFiles(out)
      const days = (d: Date) => Math.round((d.getTime() - Date.now()) / day)
      expect(files.map((f) => [f.path.slice(dir.length), f.certs.map((c) => [c.subject, days(c.notAfter)]), f.problem])).toEqual([
        ['/pki/ca.crt', [['CN=test-ca', 3650]], undefined],
        ['/pki/chain.crt', [['CN=apiserver', 400], ['CN=intermediate', 5]], undefined],
        ['/pki/empty.crt', [], 'no certificate in the file'],
        ['/kubelet-client-current.pem', [['CN=system:node:w-1', 300]], undefined],
      ])
      // No file at all: nothing is printed, and the gate says none was found.
      expect(execFileSync('/bin/sh', ['-c', certFilesScript([`${dir}/none/*.crt`])], { encoding: 'utf8' })).toBe('')
      expect(parseCertFiles('cert-file\t/x.crt\ncert-in\t/x.crt\n-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n')[0]!.problem).toMatch(/^certificate #1 does not parse/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('kubeadm certs check-expiration -o json (output.kubeadm.k8s.io/v1alpha3)', () => {
    const doc = `kubeadm-json-begin\n{\n  "kind": "CertificateExpirationInfo",\n  "apiVersion": "output.kubeadm.k8s.io/v1alpha3",\n  "certificates": [\n    {\n      "name": "admin.conf",\n      "expirationDate": "2027-06-01T10:00:00Z",\n      "residualTime": 15638400000000000,\n      "caName": "ca",\n      "externallyManaged": false\n    }\n  ],\n  "certificateAuthorities": [\n    {\n      "name": "ca",\n      "expirationDate": "2035-11-29T10:00:00Z",\n      "residualTime": 315000000000000000,\n      "externallyManaged": false\n    }\n  ]\n}\nkubeadm-json-end\n`
    expect(parseKubeadmExpiration(doc).map((c) => [c.name, c.notAfter.toISOString()])).toEqual([['admin.conf', '2027-06-01T10:00:00.000Z'], ['ca', '2035-11-29T10:00:00.000Z']])
    expect(parseKubeadmExpiration('kubeadm-json-begin\nerror\nkubeadm-json-end')).toEqual([])
  })
})

describe('kube-proxy: metrics, healthz and log lines in their real formats (facts §4.2)', () => {
  const text = fixture('kube-proxy-1.29-metrics.txt')
  const ctx = (now: number) => ({ cluster: 'c', now: () => new Date(now) })
  const answer = (body: string) => ({ body, code: '200' })

  it('sums counters over ip_family and takes the newest last-sync gauge', () => {
    const s = parsePrometheus(text)
    expect(sumOf(s, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total')).toBe(3)
    expect(s.find((x) => x.name === 'kubernetes_build_info')?.labels.git_version).toBe('v1.29.6')
  })

  it('a recent sync passes; a stale one fails with its age', () => {
    const fresh = judgeMetrics(ctx(1.7333e12 + 20_000), 'n1', answer(text), 90_000)
    expect(fresh.map((f) => f.status)).toEqual(['pass', 'pass'])
    const stale = judgeMetrics(ctx(1.7333e12 + 300_000), 'n2', answer(text), 90_000)
    expect(stale[0]).toMatchObject({ status: 'fail', problem: 'n2: kube-proxy last synced 5m ago (max 1m30s)' })
  })

  it('the failure counter rising between two checks fails; a counter that stands still does not', () => {
    judgeMetrics(ctx(1.7333e12), 'n3', answer(text), 90_000)
    expect(judgeMetrics(ctx(1.7333e12), 'n3', answer(text), 90_000)[1]!.status).toBe('pass')
    const rose = judgeMetrics(ctx(1.7333e12), 'n3', answer(text.replace('{ip_family="IPv4"} 3', '{ip_family="IPv4"} 5')), 90_000)
    expect(rose[1]).toMatchObject({ status: 'fail', problem: 'n3: kube-proxy sync failures rose 4 → 6' })
  })

  it('a missing series is unknown, never zero; unreachable metrics are unknown', () => {
    const none = judgeMetrics(ctx(0), 'n4', answer('go_goroutines 10\n'), 90_000)
    expect(none.map((f) => f.status)).toEqual(['unknown', 'unknown'])
    const refused = "curl: (7) Failed to connect to 127.0.0.1 port 10249 after 0 ms: Couldn't connect to server"
    expect(judgeMetrics(ctx(0), 'n4', { body: '', code: '000', exit: 7, error: refused }, 90_000)).toEqual([
      { status: 'unknown', source: 'node n4: curl http://127.0.0.1:10249/metrics', observed: refused, problem: 'n4: kube-proxy metrics unreachable' },
    ])
    // Cut off mid-body: the sync time that did arrive is not trusted.
    const cut = { body: text.slice(0, text.length / 2), code: '200', exit: 28, error: 'curl: (28) Operation timed out after 5000 milliseconds with 2048 bytes received' }
    expect(judgeMetrics(ctx(1.7333e12 + 20_000), 'n4', cut, 90_000).map((f) => f.status)).toEqual(['unknown'])
  })

  it('healthz: 200 passes, 503 (stale) fails, no answer fails', () => {
    const body = '{"lastUpdated": "2024-12-04 08:13:20.123 +0000 UTC m=+12.3","currentTime": "2024-12-04 08:13:21.456 +0000 UTC m=+13.6", "nodeEligible": true}'
    expect(judgeHealthz('n', { body, code: '200' }).status).toBe('pass')
    expect(judgeHealthz('n', { body, code: '503' })).toMatchObject({ status: 'fail', problem: 'n: kube-proxy healthz HTTP 503 (last sync too old)' })
    expect(judgeHealthz('n', { body: '', code: '000', exit: 7, error: 'curl: (7) Failed to connect' })).toMatchObject({ status: 'fail', observed: 'curl: (7) Failed to connect' })
    expect(judgeHealthz('n', { body: 'sh: 1: curl: not found', code: '000' })).toMatchObject({ status: 'fail', observed: 'sh: 1: curl: not found' })
  })

  it('log: both the structured and the klog forms of a failed sync', () => {
    const structured = 'E1204 08:13:20.123456       1 proxier.go:1564] "Failed to execute iptables-restore" err="exit status 1 (iptables-restore: line 86 failed\\n)"\nI1204 08:13:20.123500       1 proxier.go:819] "Sync failed" ipFamily="IPv4" retryingTime="30s"'
    expect(judgeLog('n', 'src', structured)).toMatchObject({ status: 'fail', problem: 'n: kube-proxy log says "Sync failed"' })
    expect(judgeLog('n', 'src', 'E0627 proxier.go:1598] Failed to execute iptables-restore: exit status 1 (iptables-restore: line 86 failed')).toMatchObject({ status: 'fail' })
    expect(judgeLog('n', 'src', '').status).toBe('pass')
  })

  it('log lines from before the last successful sync are history, not a failure (the log keeps them for the window)', () => {
    const now = new Date('2026-12-01T09:00:00Z')
    const line = 'I1201 08:56:16.260000       1 proxier.go:819] "Sync failed" ipFamily="IPv4" retryingTime="30s"'
    expect(judgeLog('n', 'src', line, { now, lastSyncSec: Date.parse('2026-12-01T08:58:00Z') / 1000 }).status).toBe('pass')
    expect(judgeLog('n', 'src', line, { now, lastSyncSec: Date.parse('2026-12-01T08:50:00Z') / 1000 }).status).toBe('fail')
    expect(lineTime('Dec 01 08:56:16 k3s-w-1 k3s[2881]: E1201 08:56:16.1 x', now)?.toISOString()).toBe('2026-12-01T08:56:16.100Z')
    expect(lineTime('Dec 01 08:56:16 k3s-w-1 k3s[2881]: plain message', now)?.toISOString()).toBe('2026-12-01T08:56:16.000Z')
    expect(lineTime('E1231 23:59:59.500000 x', new Date('2027-01-01T00:00:10Z'))?.toISOString()).toBe('2026-12-31T23:59:59.500Z')
  })
})

describe('dns: nslookup answers', () => {
  it('busybox 1.36 (alpine, curlimages/curl): the server address is not an answer', () => {
    const out = 'Server:\t\t10.96.0.10\nAddress:\t10.96.0.10:53\n\n\nName:\tkubernetes.default.svc.cluster.local\nAddress: 10.96.0.1\n\n'
    expect(parseNslookup(out)).toEqual(['10.96.0.1'])
  })
  it('busybox 1.28 and bind forms; NXDOMAIN gives no answer', () => {
    expect(parseNslookup('Server:    10.43.0.10\nAddress 1: 10.43.0.10 kube-dns.kube-system.svc.cluster.local\n\nName:      kubernetes.default.svc\nAddress 1: 10.43.0.1 kubernetes.default.svc.cluster.local\n')).toEqual(['10.43.0.1'])
    expect(parseNslookup('Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\nName:\tkubernetes.default.svc.cluster.local\nAddress: 10.96.0.1\n')).toEqual(['10.96.0.1'])
    expect(parseNslookup(";; connection timed out; no servers could be reached\n")).toEqual([])
    expect(parseNslookup("Server:\t\t10.96.0.10\nAddress:\t10.96.0.10:53\n\n** server can't find kubernetes.default.svc: NXDOMAIN\n")).toEqual([])
  })
})

describe('nodes and pods as the API serves them', () => {
  const node = (ready: string, extra: Partial<Node> = {}, version = 'v1.30.4'): Node => ({
    metadata: { name: 'w-1' },
    status: { nodeInfo: { kubeletVersion: version } as Node['status'] extends infer S ? S extends { nodeInfo?: infer I } ? I : never : never, conditions: [{ type: 'MemoryPressure', status: 'False' }, { type: 'DiskPressure', status: 'False' }, { type: 'Ready', status: ready, reason: ready === 'True' ? 'KubeletReady' : 'NodeStatusUnknown', message: ready === 'True' ? 'kubelet is posting ready status' : 'Kubelet stopped posting node status.' }] },
    ...extra,
  })
  it('Ready, NotReady (Unknown), missing, pressure, wrong version', () => {
    expect(judgeNode('w-1', node('True')).status).toBe('pass')
    expect(judgeNode('w-1', node('Unknown'))).toMatchObject({ status: 'fail', problem: 'w-1 NotReady (kubelet stopped posting status)' })
    expect(judgeNode('w-1', undefined)).toMatchObject({ status: 'fail', problem: 'w-1 is not registered in the API' })
    const full = node('True')
    full.status!.conditions![1]!.status = 'True'
    expect(judgeNode('w-1', full)).toMatchObject({ status: 'fail', problem: 'w-1 has DiskPressure' })
    expect(judgeNode('w-1', node('True', {}, 'v1.29.6'), 'v1.30.4')).toMatchObject({ status: 'fail', problem: 'w-1 reports kubelet v1.29.6, expected v1.30.4' })
    expect(judgeNode('w-1', node('True', {}, 'v1.30.4+k3s1'), 'v1.30.4').status).toBe('pass')
  })

  it('a CoreDNS pod in CrashLoopBackOff fails with its last exit; a starting pod only warns', () => {
    const now = new Date('2024-12-04T10:00:00Z')
    const crash: Pod = {
      metadata: { name: 'coredns-76f75df574-abcde', namespace: 'kube-system', creationTimestamp: '2024-12-04T09:00:00Z' },
      spec: { nodeName: 'cp-1', containers: [{ name: 'coredns' }] },
      status: { phase: 'Running', startTime: '2024-12-04T09:00:00Z', conditions: [{ type: 'Ready', status: 'False' }], containerStatuses: [{ name: 'coredns', ready: false, restartCount: 7, image: 'x', imageID: 'x', state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 5m0s restarting failed container=coredns pod=coredns-76f75df574-abcde_kube-system(…)' } }, lastState: { terminated: { exitCode: 1, reason: 'Error' } } }] },
    }
    const f = judgePod(crash, now)
    expect(f).toMatchObject({ status: 'fail', problem: 'kube-system/coredns-76f75df574-abcde CrashLoopBackOff' })
    expect(f.observed).toContain('restarts 7')
    expect(f.observed).toContain('last exit 1 Error')
    const young: Pod = { ...crash, status: { phase: 'Pending', startTime: '2024-12-04T09:59:40Z', containerStatuses: [] } }
    expect(judgePod(young, now).status).toBe('warn')
    expect(judgePod({ ...young, status: { ...young.status, startTime: '2024-12-04T09:00:00Z' } }, now).status).toBe('fail')
  })
})

describe('small readers', () => {
  it('the kubernetes ClusterIP is the first address of the service CIDR (facts §4.5)', () => {
    expect(firstServiceIP('10.96.0.0/12')).toBe('10.96.0.1')
    expect(firstServiceIP('10.43.0.0/16')).toBe('10.43.0.1')
    expect(firstServiceIP('10.100.7.0/24')).toBe('10.100.7.1')
    expect(firstServiceIP('fd00::/108')).toBeUndefined()
  })
  it('resource quantities as the API serialises them', () => {
    expect([cpuMilli('100m'), cpuMilli('2'), cpuMilli('1.5'), cpuMilli(undefined)]).toEqual([100, 2000, 1500, 0])
    expect([bytes('128Mi'), bytes('1G'), bytes('1e3'), bytes('7956Ki')]).toEqual([134217728, 1e9, 1000, 7956 * 1024])
  })
  it('PDB selectors: matchLabels and matchExpressions; an empty selector selects every pod (policy/v1)', () => {
    expect(matches({ matchLabels: { app: 'web' } }, { app: 'web', x: 'y' })).toBe(true)
    expect(matches({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['a', 'b'] }] }, { tier: 'c' })).toBe(false)
    expect(matches({}, { anything: 'x' })).toBe(true)
    expect(matches(undefined, { anything: 'x' })).toBe(false)
  })
})
