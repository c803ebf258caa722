import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { gatherFleetFacts } from '../../src/facts/gather.js'
import { checkPlan } from '../../src/gates/check-plan.js'
import { loadPlan } from '../../src/plan/load.js'
import { KubectlClient } from '../../src/transport/kubectl/client.js'
import { SshConnectError } from '../../src/transport/ssh/pool.js'
import type { Transport } from '../../src/transport/types.js'

/**
 * A one-shot check (`check`, `plan --live`) of a cluster whose API gave the facts no answer: its gates do not run
 * kubectl again, each failing the same way a process at a time, but report what the facts saw. An API that did
 * answer, even with a refusal, is asked again by each gate: another request may be allowed.
 */
const dir = mkdtempSync(join(tmpdir(), 'kupgrade-api-no-answer-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
writeFileSync(join(dir, 'plan.yaml'), `apiVersion: kupgrade.dev/v1alpha1
kind: UpgradePlan
metadata: { name: no-answer }
spec:
  target: { kubernetes: v1.30.4 }
  stages:
    - { name: all, clusters: [edge] }
  clusters:
    - name: edge
      distribution: k3s
      from: v1.29.6+k3s1
      apiEndpoint: https://127.0.0.1:1
      nodes:
        - { name: e-cp, host: 127.0.0.1, role: control-plane }
        - { name: e-w1, host: 127.0.0.2, role: worker }
`)
const loaded = loadPlan(join(dir, 'plan.yaml'))
const noSsh = { read: async () => { throw new SshConnectError('cannot connect to edge (127.0.0.1:22): connect ECONNREFUSED') } } as unknown as Transport

/** kubectl as a script that says STDERR and exits 1, counting its starts in a file. */
function kubectlSaying(name: string, stderr: string) {
  const bin = join(dir, name)
  writeFileSync(bin, `#!/bin/sh\necho x >> ${bin}.starts\nprintf '%s\\n' '${stderr}' >&2\nexit 1\n`)
  chmodSync(bin, 0o755)
  return {
    kubectlFor: () => new KubectlClient({ cluster: 'edge', binary: bin, cacheDir: join(dir, 'cache', name), proxy: false, attempts: 1 }),
    starts: () => { try { return readFileSync(`${bin}.starts`, 'utf8').split('\n').length - 1 } catch { return 0 } },
  }
}

async function factsThenGates(k: ReturnType<typeof kubectlSaying>) {
  const facts = await gatherFleetFacts(loaded, { transport: noSsh, kubectlFor: k.kubectlFor, env: {} })
  const afterFacts = k.starts()
  const report = await checkPlan(loaded, { transport: noSsh, env: {}, facts, kubectlFor: k.kubectlFor })
  return { facts: facts.clusters[0]!, gateStarts: k.starts() - afterFacts, results: report.clusters[0]!.results }
}

describe('gates of a cluster whose API gave the facts no answer', () => {
  it('no such context: no gate runs kubectl again; each API read reports the facts’ error', async () => {
    const r = await factsThenGates(kubectlSaying('no-context', 'error: context "edge" does not exist'))
    expect(r.facts).toMatchObject({ apiUnreachable: true, error: expect.stringContaining('context "edge" does not exist') })
    expect(r.gateStarts).toBe(0)
    const nodesReady = r.results.find((x) => x.gate === 'nodes-ready')!
    expect(nodesReady).toMatchObject({ status: 'unknown', summary: 'could not check: no answer from the API of edge when its facts were read moments ago' })
    expect(nodesReady.evidence).toEqual([{ source: 'gate nodes-ready', observed: expect.stringMatching(/^no answer from the API of edge when its facts were read moments ago: command failed on edge\/kubectl .*context "edge" does not exist/) }])
  })

  it('nothing listening: the same', async () => {
    const r = await factsThenGates(kubectlSaying('refused', 'The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?'))
    expect(r.facts.apiUnreachable).toBe(true)
    expect(r.gateStarts).toBe(0)
  })

  it('an answer, even a refusal (Forbidden): each gate asks again', async () => {
    const r = await factsThenGates(kubectlSaying('forbidden', 'Error from server (Forbidden): nodes is forbidden: User "ci" cannot list resource "nodes" in API group "" at the cluster scope'))
    expect(r.facts.apiUnreachable).toBeUndefined()
    expect(r.facts.error).toContain('Forbidden')
    expect(r.gateStarts).toBeGreaterThan(5)
    expect(r.results.find((x) => x.gate === 'nodes-ready')!.summary).toMatch(/^could not check: command failed on edge\/kubectl \(default context\) with exit code 1: \S+\/forbidden get nodes -o json$/)
  })
})
