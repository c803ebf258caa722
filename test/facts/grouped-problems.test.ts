import { describe, expect, it } from 'vitest'
import { groupedProblems, problems, renderInventory, unreadCount } from '../../src/facts/render.js'
import type { FleetFacts, NodeFacts } from '../../src/facts/types.js'

/** Only what the problem lists read: names, hosts, errors. */
const fleet = (clusters: { name: string; error?: string; nodes: { name: string; host: string; error?: string }[] }[]) => ({ clusters }) as unknown as FleetFacts

const noKey = (host: string) => `no SSH credentials for ops@${host}: no identity file and no ssh-agent (set ssh.identityFile in the plan)`

describe('facts: the problems a live plan is blocked by, for people', () => {
  it('nodes of a cluster that failed alike but for their own name and address are said once, the others named after it', () => {
    const nodes: { name: string; host: string; error?: string }[] = Array.from({ length: 9 }, (_, i) => ({ name: `prod-n${i + 1}`, host: `10.0.1.${i + 1}`, error: noKey(`10.0.1.${i + 1}`) }))
    nodes[3] = { name: 'prod-n4', host: '10.0.1.4', error: 'cannot connect to prod-n4 (ops@10.0.1.4:22) after 3 attempts: connect ECONNREFUSED 10.0.1.4:22' }
    nodes.push({ name: 'prod-n10', host: '10.0.1.10' })
    const f = fleet([
      { name: 'prod', error: 'the API server could not be reached', nodes },
      { name: 'edge', nodes: [{ name: 'e1', host: 'e1.example', error: noKey('e1.example') }, { name: 'e2', host: 'e2.example', error: noKey('e2.example') }] },
    ])
    expect(groupedProblems(f)).toEqual([
      'prod: API: the API server could not be reached',
      `prod/prod-n1: ${noKey('10.0.1.1')} (the same for 7 more nodes of prod: prod-n2, prod-n3, prod-n5, prod-n6, prod-n7 and 2 more)`,
      'prod/prod-n4: cannot connect to prod-n4 (ops@10.0.1.4:22) after 3 attempts: connect ECONNREFUSED 10.0.1.4:22',
      `edge/e1: ${noKey('e1.example')} (the same for 1 more node of edge: e2)`,
    ])
    // The machine-readable list (inventory --format json) keeps one entry per node.
    expect(problems(f)).toHaveLength(12)
    // inventory's last line counts nodes and API servers apart.
    expect(unreadCount(f)).toBe('could not read 11 nodes and the API of 1 cluster: the reasons are above')
    expect(unreadCount(fleet([{ name: 'ok', nodes: [{ name: 'n', host: 'h' }] }]))).toBeUndefined()
  })

  it('errors that differ in more than the node itself stay apart', () => {
    const f = fleet([{ name: 'c', nodes: [
      { name: 'a', host: '10.0.0.1', error: 'cannot connect to a (root@10.0.0.1:22): host key mismatch' },
      { name: 'b', host: '10.0.0.2', error: 'cannot connect to b (root@10.0.0.2:22): connect ETIMEDOUT' },
    ] }])
    expect(groupedProblems(f)).toEqual(problems(f))
  })

  it('API errors the same but for the cluster name are said once, at the first such cluster; others stay apart', () => {
    const down = (c: string) => `command failed on ${c}/kubectl (${c}): the API server could not be reached (is the VPN to ${c} up?)`
    const f = fleet([
      { name: 'eu', nodes: [{ name: 'eu-1', host: '10.0.0.1' }] },
      { name: 'us', error: 'Error from server (Forbidden): nodes is forbidden', nodes: [] },
      { name: 'ap', error: down('ap'), nodes: [{ name: 'ap-1', host: '10.1.0.1', error: 'connect ETIMEDOUT 10.1.0.1:22' }] },
      { name: 'sa', error: down('sa'), nodes: [] },
      { name: 'af', error: down('af'), nodes: [] },
    ])
    expect(groupedProblems(f)).toEqual([
      'us: API: Error from server (Forbidden): nodes is forbidden',
      `ap: API: ${down('ap')} (the same for 2 more clusters: sa, af)`,
      'ap/ap-1: connect ETIMEDOUT 10.1.0.1:22',
    ])
    expect(problems(f)).toHaveLength(5)
  })

  it('the inventory table notes a node error shared by others but for their names once, at the first of them', () => {
    const node = (name: string, host: string, error?: string): NodeFacts => ({ name, role: 'worker', host, kubeProxySource: 'none', roles: [], inApi: false, disk: [], services: {}, ...(error ? { error, unreachable: true as const } : {}) })
    const text = renderInventory({ gatheredAt: '2026-12-06T03:00:00Z', durationMs: 1, clusters: [{ name: 'prod', distribution: 'k3s', from: 'v1.29.6+k3s1', apiserverVersions: [], unlistedNodes: [], nodes: [
      node('w-1', '10.0.1.1', noKey('10.0.1.1')),
      node('w-2', '10.0.1.2', 'cannot connect to w-2 (ops@10.0.1.2:22): connect ETIMEDOUT'),
      node('w-3', '10.0.1.3', noKey('10.0.1.3')),
      node('w-4', '10.0.1.4'),
      node('w-5', '10.0.1.5', noKey('10.0.1.5')),
    ] }] })
    expect(text.split('\n').filter((l) => l.startsWith('  !'))).toEqual([
      `  ! w-1: ${noKey('10.0.1.1')} (the same for 2 more nodes: w-3, w-5)`,
      '  ! w-2: cannot connect to w-2 (ops@10.0.1.2:22): connect ETIMEDOUT',
    ])
    expect(text.match(/UNREACHABLE/g)).toHaveLength(4)
  })
})

