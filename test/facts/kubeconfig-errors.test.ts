import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { readApiFacts } from '../../src/facts/api-facts.js'
import { gatherFleetFacts } from '../../src/facts/gather.js'
import { groupedProblems } from '../../src/facts/render.js'
import { parsePlan, type LoadedPlan } from '../../src/plan/load.js'
import type { KubectlClient } from '../../src/transport/kubectl/client.js'
import type { ExecResult, NodeTarget, Transport } from '../../src/transport/types.js'
import { KUBECTL } from '../lab/helpers.js'

/**
 * A fleet whose kubeconfig has none of its contexts, read with the real kubectl: the most common first run of a new
 * plan. Each cluster's error is one line with kubectl's own words and what to fix, the same words in every cluster
 * (whichever read kubectl failed first), and a live plan's list of what could not be read says it once.
 */
const dir = mkdtempSync(join(tmpdir(), 'kupgrade-kubeconfig-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const kubeconfig = join(dir, 'kubeconfig')
writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: elsewhere, context: {cluster: c, user: u}}]\ncurrent-context: elsewhere\n')

const cluster = (name: string, net: number) => `
    - name: ${name}
      distribution: k0s
      from: v1.29.7+k0s.0
      kubeconfig: ${kubeconfig}
      context: ${name}
      apiEndpoint: https://10.${net}.0.1:6443
      nodes:
        - { name: ${name}-ctrl, host: 10.${net}.0.11, role: control-plane }
        - { name: ${name}-wrk, host: 10.${net}.0.21, role: worker }`
const source = `apiVersion: kupgrade.dev/v1alpha1
kind: UpgradePlan
metadata: { name: k }
spec:
  target: { kubernetes: v1.30.4, k0s: v1.30.4+k0s.0 }
  stages: [{ name: s, clusters: [edge-a, edge-b, edge-c] }]
  clusters:${cluster('edge-a', 1)}${cluster('edge-b', 2)}${cluster('edge-c', 3)}
`
const parsed = parsePlan('k.yaml', source)
const loaded: LoadedPlan = { file: 'k.yaml', dir, plan: parsed.plan!, warnings: [] }

/** SSH with no credentials for any node, worded per node as the pool words it. */
const noCredentials: Transport = {
  read: (node: NodeTarget): Promise<ExecResult> => Promise.reject(new Error(`no SSH credentials for root@${node.host}: no identity file and no ssh-agent`)),
  mutate: () => Promise.reject(new Error('a read-only gather never mutates')),
  close: async () => {},
}

describe('facts: a kubeconfig without the fleet\'s contexts', () => {
  it('is one line per cluster in kubectl\'s words with the fix, the same read named in each, and said once where problems are listed', async () => {
    expect(parsed.problems.filter((p) => p.severity !== 'warning')).toEqual([])
    const facts = await gatherFleetFacts(loaded, { transport: noCredentials, env: { PATH: process.env.PATH, HOME: dir, KUPGRADE_KUBECTL: KUBECTL }, stateDir: join(dir, 'state') })
    const said = (c: string) => `command failed on ${c}/kubectl (${c}) with exit code 1: ${KUBECTL} get --raw /version: error: context "${c}" does not exist (the kubeconfig cannot be used as given: is there a context named ${c} in ${kubeconfig}? (kubectl config get-contexts))`
    expect(facts.clusters.map((c) => c.error)).toEqual(['edge-a', 'edge-b', 'edge-c'].map(said))
    expect(groupedProblems(facts)).toEqual([
      `edge-a: API: ${said('edge-a')} (the same for 2 more clusters: edge-b, edge-c)`,
      'edge-a/edge-a-ctrl: no SSH credentials for root@10.1.0.11: no identity file and no ssh-agent (the same for 1 more node of edge-a: edge-a-wrk)',
      'edge-b/edge-b-ctrl: no SSH credentials for root@10.2.0.11: no identity file and no ssh-agent (the same for 1 more node of edge-b: edge-b-wrk)',
      'edge-c/edge-c-ctrl: no SSH credentials for root@10.3.0.11: no identity file and no ssh-agent (the same for 1 more node of edge-c: edge-c-wrk)',
    ])
  })

  it('the API reads fail in their own order: the version read is named even when another failed first', async () => {
    const later = (ms: number, what: string) => new Promise<never>((_, reject) => setTimeout(() => reject(new Error(what)), ms))
    const kubectl = { version: () => later(30, 'version: refused'), nodes: () => later(0, 'nodes: refused'), pods: () => later(10, 'pods: refused') } as unknown as KubectlClient
    // nodes and pods fail while version is awaited: unreported, and no unhandled rejection (vitest fails a run on one).
    await expect(readApiFacts(kubectl, 'k0s')).rejects.toThrow('version: refused')
  })
})
