import { describe, expect, it } from 'vitest'
import type { GateRun } from '../../src/gates/run.js'
import { renderGateReportMarkdown, renderGateReportText, type GateReport } from '../../src/report/gate-report.js'
import { sameButFor } from '../../src/util/same-but-for.js'

const noKey = (host: string) => `no SSH credentials for ops@${host}: no identity file and no ssh-agent`
const nodes = Array.from({ length: 12 }, (_, i) => ({ name: `w-${i + 1}`, host: `10.0.1.${i + 1}` }))

const run = (evidence: GateRun['evidence']): GateRun => ({
  cluster: 'prod', gate: 'disk-space', label: 'disk-space', attempts: 1, durationMs: 5, status: 'unknown',
  summary: 'w-1 unreachable over SSH; …', evidence, incident: 'k3s-expired-certs-disk-full', hint: 'free space first',
})
/** Cluster prod's report: one gate's result or several. */
const report = (r: GateRun | GateRun[], withNodes = true): GateReport => ({ checkedAt: '2026-12-06T04:00:00Z', durationMs: 900, clusters: [{ name: 'prod', distribution: 'k3s', results: [r].flat(), skipped: [], ...(withNodes ? { nodes } : {}) }] })
const evidenceOf = (text: string) => text.split('\n').filter((l) => l.startsWith('         ') && !/^\s+(hint|stops incident):/.test(l)).map((l) => l.trim())

describe('gate report (text): evidence', () => {
  it('what nodes observed alike but for their own names and addresses is one line naming the others', () => {
    const r = run([
      ...nodes.slice(0, 3).map((n) => ({ source: `node ${n.name}`, observed: noKey(n.host) })),
      { source: 'node w-4', observed: 'disk /var: 97% used (max 85%)' },
      ...nodes.slice(4).map((n) => ({ source: `node ${n.name}`, observed: noKey(n.host) })),
      { source: 'runner', observed: 'GET https://10.0.0.1:6443/readyz: connect ECONNREFUSED 10.0.0.1:6443' },
    ])
    expect(evidenceOf(renderGateReportText(report(r), { color: false }))).toEqual([
      `node w-1: ${noKey('10.0.1.1')} (the same for 10 more nodes: w-2, w-3, w-5, w-6, w-7 and 5 more)`,
      'node w-4: disk /var: 97% used (max 85%)',
      'runner: GET https://10.0.0.1:6443/readyz: connect ECONNREFUSED 10.0.0.1:6443',
    ])
  })

  it('under a failure, the observations that held are a count after what did not hold', () => {
    const pods = Array.from({ length: 18 }, (_, i) => ({ source: `kubectl get pod kube-system/kube-proxy-${i} (node w-${(i % 12) + 1})`, observed: 'Running, ready 1/1, restarts 0', status: 'pass' as const }))
    const r: GateRun = {
      ...run([
        { source: 'kubectl get pod kube-system/coredns-5d78c9869d-x7k2p (node w-1)', observed: 'Running, ready 0/1, restarts 6; container coredns CrashLoopBackOff', status: 'fail' },
        { source: 'kubectl get pods -n kube-system -l k8s-app=kube-dns', observed: '0/2 CoreDNS pods Ready', status: 'fail' },
        ...pods,
      ]),
      gate: 'system-pods', label: 'system-pods', status: 'fail', summary: 'kube-system/coredns-5d78c9869d-x7k2p CrashLoopBackOff; CoreDNS 0/2 Ready',
    }
    expect(evidenceOf(renderGateReportText(report(r), { color: false }))).toEqual([
      'kubectl get pod kube-system/coredns-5d78c9869d-x7k2p (node w-1): Running, ready 0/1, restarts 6; container coredns CrashLoopBackOff',
      'kubectl get pods -n kube-system -l k8s-app=kube-dns: 0/2 CoreDNS pods Ready',
      '(+18 observations that held; --format json has all)',
    ])
    // Passing, with --verbose, they are its evidence.
    const ok: GateRun = { ...r, status: 'pass', summary: '18 system pods Running and Ready', evidence: pods }
    expect(evidenceOf(renderGateReportText(report(ok), { color: false, verbose: true }))).toHaveLength(18)
    // The pull-request form folds them the same way.
    const md = renderGateReportMarkdown(report(r))
    expect(md.slice(md.indexOf('<details>'), md.indexOf('</details>')).split('\n').filter((l) => l.startsWith('- ')).map((l) => l.replace(/`/g, ''))).toEqual([
      '- kubectl get pod kube-system/coredns-5d78c9869d-x7k2p (node w-1): Running, ready 0/1, restarts 6; container coredns CrashLoopBackOff',
      '- kubectl get pods -n kube-system -l k8s-app=kube-dns: 0/2 CoreDNS pods Ready',
      '- … and 18 observations that held (--format json has all)',
      '- hint: free space first',
      '- stops incident: k3s-expired-certs-disk-full',
    ])
  })

  it('a source naming the node and what it read there (a file) groups with the same read on other nodes, not with other files', () => {
    const cert = (n: { name: string }, file: string, cn: string, left: string) => ({ source: `node ${n.name}: /var/lib/k0s/pki/${file}`, observed: `(CN=${cn}): notAfter 2026-12-17T14:23:59.000Z (${left} left)` })
    const r = run(nodes.slice(0, 3).flatMap((n) => [cert(n, 'server.crt', 'kube-apiserver', '9d'), cert(n, 'etcd/peer.crt', 'etcd-peer', n.name === 'w-3' ? '300d' : '9d'), cert(n, 'kubelet.crt', `system:node:${n.name}`, '9d')]))
    expect(evidenceOf(renderGateReportText(report(r), { color: false }))).toEqual([
      'node w-1: /var/lib/k0s/pki/server.crt: (CN=kube-apiserver): notAfter 2026-12-17T14:23:59.000Z (9d left) (the same for 2 more nodes: w-2, w-3)',
      'node w-1: /var/lib/k0s/pki/etcd/peer.crt: (CN=etcd-peer): notAfter 2026-12-17T14:23:59.000Z (9d left) (the same for 1 more node: w-2)',
      'node w-1: /var/lib/k0s/pki/kubelet.crt: (CN=system:node:w-1): notAfter 2026-12-17T14:23:59.000Z (9d left) (the same for 2 more nodes: w-2, w-3)',
      'node w-3: /var/lib/k0s/pki/etcd/peer.crt: (CN=etcd-peer): notAfter 2026-12-17T14:23:59.000Z (300d left)',
    ])
  })

  it('past eight lines the rest is counted in observations; without the nodes’ addresses nothing is grouped', () => {
    const distinct = nodes.map((n, i) => ({ source: `node ${n.name}`, observed: `disk /: ${80 + i}% used (max 85%)` }))
    expect(evidenceOf(renderGateReportText(report(run(distinct)), { color: false })).at(-1)).toBe('(+4 more observations; --format json has all)')
    const lines = evidenceOf(renderGateReportText(report(run(nodes.map((n) => ({ source: `node ${n.name}`, observed: noKey(n.host) }))), false), { color: false }))
    expect(lines).toHaveLength(9)
    expect(lines.at(-1)).toBe('(+4 more observations; --format json has all)')
  })
})

describe('gate report (text): one cause across the gates of a cluster', () => {
  it('an observation or a hint already said in full at an earlier gate is referred to there', () => {
    const noKeys = nodes.slice(0, 3).map((n) => ({ source: `node ${n.name}`, observed: noKey(n.host) }))
    const thrown = (gate: string, command: string): GateRun => ({ ...run([{ source: `gate ${gate}`, observed: `kubectl ${command}: error: context "prod" does not exist` }]), gate, label: gate, summary: `could not check: kubectl ${command}`, hint: 'set `kubeconfig:` for prod in the plan' })
    const results: GateRun[] = [
      run([...noKeys, { source: 'runner', observed: 'TLS https://10.0.0.1:6443: connect ECONNREFUSED' }]),
      { ...run(noKeys), gate: 'etcd', label: 'etcd', hint: 'fix etcd first' },
      thrown('nodes-ready', 'get nodes -o json'),
      thrown('system-pods', 'get pods -n kube-system -o json'),
    ]
    const text = renderGateReportText(report(results), { color: false })
    const block = (label: string) => text.split('\n').filter((l, i, all) => i > all.findIndex((x) => x.includes(` ${label} `)) && l.startsWith('         ')).slice(0, 3).map((l) => l.trim())
    expect(block('disk-space')[0]).toBe(`node w-1: ${noKey('10.0.1.1')} (the same for 2 more nodes: w-2, w-3)`)
    expect(block('etcd')).toEqual(['node w-1 and 2 more: as for disk-space above', 'hint: fix etcd first', 'stops incident: k3s-expired-certs-disk-full'])
    expect(block('nodes-ready')[1]).toBe('hint: set `kubeconfig:` for prod in the plan')
    // Its own observation (another command) in full; the hint, the same cause, referred to.
    expect(block('system-pods').slice(0, 2)).toEqual(['gate system-pods: kubectl get pods -n kube-system -o json: error: context "prod" does not exist', 'hint: as for nodes-ready above'])
  })
  it('the same observation made by another gate, or from another source, is referred to by the gate that said it', () => {
    // Every API gate of a cluster whose API gave the facts no answer observes the facts' one error.
    const noAnswer = 'no answer from the API of prod when its facts were read moments ago: kubectl get --raw /version: error: context "prod" does not exist'
    const thrown = (gate: string): GateRun => ({ ...run([{ source: `gate ${gate}`, observed: noAnswer }]), gate, label: gate, summary: 'could not check: no answer from the API of prod when its facts were read moments ago' })
    const results: GateRun[] = [
      thrown('nodes-ready'),
      thrown('system-pods'),
      run([
        { source: 'runner: GET https://10.0.0.1:6443/readyz', observed: 'connect ECONNREFUSED 10.0.0.1:6443' },
        // The same words from another source of the same gate: said again, not "as for disk-space" within disk-space.
        { source: 'node w-1: curl https://10.0.0.1:6443/readyz', observed: 'connect ECONNREFUSED 10.0.0.1:6443' },
      ]),
      { ...run([{ source: 'runner: TLS https://10.0.0.1:6443', observed: 'connect ECONNREFUSED 10.0.0.1:6443' }]), gate: 'certificates', label: 'certificates' },
    ]
    const text = renderGateReportText(report(results), { color: false })
    expect(evidenceOf(text)).toEqual([
      `gate nodes-ready: ${noAnswer}`,
      'gate system-pods: as for nodes-ready above',
      'runner: GET https://10.0.0.1:6443/readyz: connect ECONNREFUSED 10.0.0.1:6443',
      'node w-1: curl https://10.0.0.1:6443/readyz: connect ECONNREFUSED 10.0.0.1:6443',
      'runner: TLS https://10.0.0.1:6443: as for disk-space above',
    ])
  })
})

describe('gate report (markdown): the same folding as the text', () => {
  it('nodes alike are one line, and what an earlier gate said is referred to', () => {
    const noKeys = nodes.slice(0, 3).map((n) => ({ source: `node ${n.name}`, observed: noKey(n.host) }))
    const results: GateRun[] = [
      run(noKeys),
      { ...run(noKeys), gate: 'etcd', label: 'etcd', hint: 'fix etcd first' },
      { ...run([{ source: 'gate nodes-ready', observed: 'no answer from the API of prod' }]), gate: 'nodes-ready', label: 'nodes-ready' },
    ]
    const md = renderGateReportMarkdown(report(results))
    expect(md.split('\n').filter((l) => l.startsWith('- '))).toEqual([
      `- node w-1: \`${noKey('10.0.1.1')} (the same for 2 more nodes: w-2, w-3)\``,
      '- hint: free space first',
      '- stops incident: `k3s-expired-certs-disk-full`',
      '- node w-1 and 2 more: as for disk-space above',
      '- hint: fix etcd first',
      '- stops incident: `k3s-expired-certs-disk-full`',
      '- gate nodes-ready: `no answer from the API of prod`',
      '- hint: as for disk-space above',
      '- stops incident: `k3s-expired-certs-disk-full`',
    ])
  })
})

describe('sameButFor', () => {
  it('nodes named inside their addresses group; one observation twice is said once, and not counted again', () => {
    const down = (n: string) => ({ name: n, text: `cannot connect to ${n}.example.com:22: connect ETIMEDOUT`, own: [n, `${n}.example.com`] })
    expect(sameButFor([down('w-1'), down('w-2'), down('w-1'), down('w-10')])).toEqual([
      { first: 'w-1', index: 0, text: 'cannot connect to w-1.example.com:22: connect ETIMEDOUT', others: ['w-2', 'w-10'] },
    ])
  })
})
