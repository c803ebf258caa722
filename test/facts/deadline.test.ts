import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { gatherFleetFacts } from '../../src/facts/gather.js'
import { problems } from '../../src/facts/render.js'
import { parsePlan, type LoadedPlan } from '../../src/plan/load.js'
import { KubectlClient } from '../../src/transport/kubectl/client.js'
import type { ExecResult, NodeTarget, Transport } from '../../src/transport/types.js'

/**
 * A cluster gets one overall deadline (issue 8): an API server answering in 25 s used to hold a run for 103 s (four
 * attempts of a 20 s request timeout plus backoff), and a node whose sshd accepts but never answers held it for as long
 * as the command timeout. When the deadline passes, what is still outstanding is cancelled, and named once, in the
 * cluster's error.
 */
const dir = mkdtempSync(join(tmpdir(), 'kupgrade-limit-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const source = `apiVersion: kupgrade.dev/v1alpha1
kind: UpgradePlan
metadata: { name: d }
spec:
  target: { kubernetes: v1.30.4 }
  stages: [{ name: s, clusters: [slow] }]
  clusters:
    - name: slow
      distribution: k3s
      from: v1.29.2
      apiEndpoint: https://10.0.0.1:6443
      nodes:
        - { name: quick, host: 10.0.0.11, role: control-plane }
        - { name: stuck, host: 10.0.0.12, role: control-plane }
        - { name: stuck-too, host: 10.0.0.13, role: control-plane }
`
const loaded: LoadedPlan = { file: 'd.yaml', dir, plan: parsePlan('d.yaml', source).plan!, warnings: [] }

/** SSH that answers `quick` with a refusal at once and leaves every other node hanging until the call is cancelled. */
class StuckTransport implements Transport {
  readonly aborted: string[] = []
  read(node: NodeTarget, _cmd: unknown, opts: { signal?: AbortSignal } = {}): Promise<ExecResult> {
    if (node.node === 'quick') return Promise.reject(new Error('connection refused'))
    return new Promise((_, reject) => {
      opts.signal?.addEventListener('abort', () => {
        this.aborted.push(node.node)
        reject(new Error('cancelled'))
      })
    })
  }
  mutate(): Promise<ExecResult> {
    throw new Error('a read-only gather never mutates')
  }
  async close() {}
}

describe('facts: the per-cluster deadline', () => {
  it('cancels what is outstanding and names it once, in the cluster error', async () => {
    // A kubectl that never answers: only the deadline's signal ends it.
    const kubectl = join(dir, 'kubectl-hangs')
    writeFileSync(kubectl, `#!/bin/sh\necho $$ > ${join(dir, 'kubectl.pid')}\nexec sleep 600\n`)
    chmodSync(kubectl, 0o755)
    const transport = new StuckTransport()
    const facts = await gatherFleetFacts(loaded, {
      transport,
      deadlineMs: 400,
      kubectlFor: (c, _l, signal) => new KubectlClient({ cluster: c.name, binary: kubectl, cacheDir: join(dir, 'cache'), signal }),
    })
    const c = facts.clusters[0]!
    expect(c.error).toBe('not read within the 400ms deadline (--deadline): still waiting for the API server (kubectl) and SSH to 2 of 3 nodes (stuck, stuck-too)')
    expect(c.nodes.map((n) => [n.name, n.error])).toEqual([
      ['quick', 'connection refused'],
      ['stuck', "not read within the cluster's 400ms deadline"],
      ['stuck-too', "not read within the cluster's 400ms deadline"],
    ])
    // The explanation is given once; the rows only point at it.
    expect(problems(facts).filter((p) => p.includes('--deadline'))).toHaveLength(1)
    expect(transport.aborted.sort()).toEqual(['stuck', 'stuck-too'])
    // And the kubectl process was killed, not left running.
    const pid = Number(execFileSync('cat', [join(dir, 'kubectl.pid')], { encoding: 'utf8' }))
    await new Promise((r) => setTimeout(r, 200))
    expect(() => process.kill(pid, 0)).toThrow()
  })

  it('is not an error when everything answers in time', async () => {
    const kubectl = join(dir, 'kubectl-refuses')
    writeFileSync(kubectl, `#!/bin/sh\necho 'Error from server (Forbidden): nodes is forbidden' >&2\nexit 1\n`)
    chmodSync(kubectl, 0o755)
    const facts = await gatherFleetFacts({ ...loaded, plan: { ...loaded.plan, spec: { ...loaded.plan.spec, clusters: [{ ...loaded.plan.spec.clusters[0]!, nodes: [loaded.plan.spec.clusters[0]!.nodes[0]!] }] } } }, {
      transport: new StuckTransport(),
      deadlineMs: 30_000,
      kubectlFor: (c, _l, signal) => new KubectlClient({ cluster: c.name, binary: kubectl, cacheDir: join(dir, 'cache'), signal }),
    })
    expect(facts.clusters[0]!.error).toMatch(/forbidden/)
    expect(facts.clusters[0]!.error).not.toMatch(/--deadline|deadline passed/)
  })
})

describe('check: the per-cluster deadline', () => {
  it('reports a gate still waiting at the deadline as unknown, naming the cluster and the limit', async () => {
    const { checkPlan } = await import('../../src/gates/check-plan.js')
    const kubectl = join(dir, 'kubectl-hangs-check')
    writeFileSync(kubectl, `#!/bin/sh\nexec sleep 600\n`)
    chmodSync(kubectl, 0o755)
    const report = await checkPlan(loaded, {
      transport: new StuckTransport(),
      env: {},
      gates: ['nodes-ready', 'disk-space'],
      deadlineMs: 300,
      kubectlFor: (c) => new KubectlClient({ cluster: c.name, binary: kubectl, cacheDir: join(dir, 'cache'), processTimeoutMs: 5_000, attempts: 1 }),
    })
    const results = report.clusters[0]!.results
    expect(results.map((r) => [r.gate, r.status])).toEqual([['nodes-ready', 'unknown'], ['disk-space', 'unknown']])
    for (const r of results) expect(r.summary).toContain('cluster slow: no answer within the --deadline of 0.3s')
  })

  it('without a deadline a gate that answers is judged as usual', async () => {
    const { checkPlan } = await import('../../src/gates/check-plan.js')
    const kubectl = join(dir, 'kubectl-forbidden-check')
    writeFileSync(kubectl, `#!/bin/sh\necho 'Error from server (Forbidden): nodes is forbidden' >&2\nexit 1\n`)
    chmodSync(kubectl, 0o755)
    const report = await checkPlan(loaded, {
      transport: new StuckTransport(),
      env: {},
      gates: ['nodes-ready'],
      deadlineMs: 30_000,
      kubectlFor: (c) => new KubectlClient({ cluster: c.name, binary: kubectl, cacheDir: join(dir, 'cache'), attempts: 1 }),
    })
    const r = report.clusters[0]!.results[0]!
    expect(r.summary).not.toContain('--deadline')
    expect(r.summary + JSON.stringify(r.evidence)).toMatch(/forbidden/)
  })
})
