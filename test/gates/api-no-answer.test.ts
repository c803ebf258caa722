import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { gatherFleetFacts } from '../../src/facts/gather.js'
import { checkPlan } from '../../src/gates/check-plan.js'
import { loadPlan } from '../../src/plan/load.js'
import { KubectlClient } from '../../src/transport/kubectl/client.js'
import { SshConnectError } from '../../src/transport/ssh/pool.js'
import type { Transport } from '../../src/transport/types.js'
import { KUBECTL } from '../lab/helpers.js'
import { legacyApi, legacyApis, resourceList } from '../../src/lab/api/discovery.js'

/**
 * A one-shot check (`check`, `plan --live`) of a cluster whose API gave the facts no answer: its gates do not run
 * kubectl again, each failing the same way a process at a time, but report what the facts saw. An API that did
 * answer, even with a refusal, is asked again by each gate: another request may be allowed. The real kubectl says
 * each of these in its own words.
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

/**
 * The real kubectl (through a wrapper that counts its starts) with a kubeconfig whose context `edge` points at `server`,
 * or with no context `edge` at all.
 */
function realKubectl(name: string, server: string | undefined) {
  const bin = join(dir, name)
  const kubeconfig = join(dir, `${name}.kubeconfig`)
  writeFileSync(kubeconfig, `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "${server ?? 'https://127.0.0.1:1'}"}}]\nusers: [{name: ci, user: {token: not-shown}}]\ncontexts: [{name: ${server ? 'edge' : 'elsewhere'}, context: {cluster: c, user: ci}}]\n`)
  writeFileSync(bin, `#!/bin/sh\necho x >> '${bin}.starts'\nexec '${KUBECTL}' "$@"\n`)
  chmodSync(bin, 0o755)
  return {
    kubectlFor: () => new KubectlClient({ cluster: 'edge', binary: bin, kubeconfig, context: 'edge', cacheDir: join(dir, 'cache', name), proxy: false, attempts: 1 }),
    starts: () => { try { return readFileSync(`${bin}.starts`, 'utf8').split('\n').length - 1 } catch { return 0 } },
  }
}

/**
 * An API server whose RBAC lets user `ci` discover the API and read its version, and nothing else: 403 with a Status
 * of reason Forbidden in kube-apiserver's words (k8s.io/apiserver's forbidden message). Discovery is the lab's own.
 */
async function refusingApiServer(): Promise<string> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!
    const answer = (code: number, body: object) => {
      res.writeHead(code, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    if (path === '/version') return answer(200, { major: '1', minor: '29', gitVersion: 'v1.29.6+k3s1', platform: 'linux/amd64' })
    if (path === '/api') return answer(200, legacyApi('127.0.0.1:6443'))
    if (path === '/apis') return answer(200, legacyApis(29))
    const gv = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))$/.exec(path)
    const list = gv && (gv[1] ? resourceList('', 'v1', 29) : resourceList(gv[2]!, gv[3]!, 29))
    if (list) return answer(200, list)
    const r = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?/.exec(path)
    const verb = ({ GET: r?.[4] ? 'get' : 'list', POST: 'create', DELETE: 'delete', PATCH: 'patch', PUT: 'update' } as Record<string, string>)[req.method ?? 'GET']
    const message = r
      ? `${r[3]}${r[4] ? ` "${r[4]}"` : ''} is forbidden: User "ci" cannot ${verb} resource "${r[3]}" in API group "${r[1] ?? ''}" ${r[2] ? `in the namespace "${r[2]}"` : 'at the cluster scope'}`
      : `forbidden: User "ci" cannot ${req.method?.toLowerCase()} path "${path}"`
    answer(403, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'Forbidden', details: r ? { ...(r[4] ? { name: r[4] } : {}), ...(r[1] ? { group: r[1] } : {}), kind: r[3] } : {}, code: 403 })
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  afterAll(() => new Promise<void>((done) => server.close(() => done())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function factsThenGates(k: ReturnType<typeof realKubectl>) {
  const facts = await gatherFleetFacts(loaded, { transport: noSsh, kubectlFor: k.kubectlFor, env: {} })
  const afterFacts = k.starts()
  const report = await checkPlan(loaded, { transport: noSsh, env: {}, facts, kubectlFor: k.kubectlFor })
  return { facts: facts.clusters[0]!, gateStarts: k.starts() - afterFacts, results: report.clusters[0]!.results }
}

describe('gates of a cluster whose API gave the facts no answer', () => {
  it('no such context: no gate runs kubectl again; each API read reports the facts’ error', async () => {
    const r = await factsThenGates(realKubectl('no-context', undefined))
    expect(r.facts).toMatchObject({ apiUnreachable: true, error: expect.stringContaining('context "edge" does not exist') })
    expect(r.gateStarts).toBe(0)
    const nodesReady = r.results.find((x) => x.gate === 'nodes-ready')!
    expect(nodesReady).toMatchObject({ status: 'unknown', summary: 'could not check: no answer from the API of edge when its facts were read moments ago' })
    expect(nodesReady.evidence).toEqual([{ source: 'gate nodes-ready', observed: expect.stringMatching(/^no answer from the API of edge when its facts were read moments ago: command failed on edge\/kubectl .*context "edge" does not exist/) }])
  })

  it('nothing listening: the same', async () => {
    const r = await factsThenGates(realKubectl('refused', 'https://127.0.0.1:1'))
    expect(r.facts.apiUnreachable).toBe(true)
    expect(r.gateStarts).toBe(0)
  })

  it('an answer, even a refusal (Forbidden): each gate asks again', async () => {
    const r = await factsThenGates(realKubectl('forbidden', await refusingApiServer()))
    expect(r.facts.apiUnreachable).toBeUndefined()
    expect(r.facts.error).toContain('Forbidden')
    expect(r.gateStarts).toBeGreaterThan(5)
    expect(r.results.find((x) => x.gate === 'nodes-ready')!.evidence[0]!.observed).toMatch(/: Error from server \(Forbidden\): nodes is forbidden: User "ci" cannot list resource "nodes" in API group "" at the cluster scope$/)
    expect(r.results.find((x) => x.gate === 'nodes-ready')!.summary).toMatch(/^could not check: command failed on edge\/kubectl \(edge\) with exit code 1: \S+\/forbidden get nodes -o json$/)
  })
})
