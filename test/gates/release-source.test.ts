import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { releaseSourceGate } from '../../src/gates/checks/release-source.js'
import { gateContexts } from '../../src/gates/context.js'
import type { GateContext } from '../../src/gates/types.js'
import type { FleetFacts } from '../../src/facts/types.js'
import type { LoadedPlan } from '../../src/plan/load.js'
import { parsePlan } from '../../src/plan/load.js'
import { buildExecutionPlan } from '../../src/planner/build.js'
import { releaseFetches, repoSwitches } from '../../src/planner/fetches.js'
import { commandLine } from '../../src/transport/quote.js'
import type { NodeTarget, Transport } from '../../src/transport/types.js'
import type { KubectlClient } from '../../src/transport/kubectl/client.js'

/**
 * The release-source gate's script, run by the machine's own sh with the real curl, sha256sum and grep, against a
 * release folder and an HTTP mirror laid out as the GitHub release is. Each "node" is a `uname` on PATH answering its
 * machine (x86_64, aarch64), as the script picks its asset from `uname -m` like install.sh does.
 */
let dir: string
let server: Server
let mirror: string

const sum = (text: string) => createHash('sha256').update(text).digest('hex')

/** A k3s release folder with the given files, and checksum lists naming what `lists` says (a name without a file: its own sum). */
async function release(root: string, rel: string, files: Record<string, string>, lists: Record<string, string[]>): Promise<void> {
  const at = join(root, rel)
  await mkdir(at, { recursive: true })
  for (const [name, body] of Object.entries(files)) await writeFile(join(at, name), body)
  for (const [list, names] of Object.entries(lists)) await writeFile(join(at, list), names.map((n) => `${sum(files[n] ?? n)}  ${n}\n`).join(''))
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kupgrade-release-source-'))
  for (const [name, machine] of [['amd64', 'x86_64'], ['arm64', 'aarch64']]) {
    await mkdir(join(dir, 'bin', name), { recursive: true })
    await writeFile(join(dir, 'bin', name, 'uname'), `#!/bin/sh\n[ "$1" = -m ] && echo ${machine} || exec /bin/uname "$@"\n`, { mode: 0o755 })
  }
  // Two hops' releases: v1.29.8+k3s1 complete; v1.30.4+k3s1 without the arm64 binary.
  const files = (rel: string) => ({ k3s: `k3s ${rel} amd64`, 'k3s-arm64': `k3s ${rel} arm64` })
  await release(join(dir, 'srv'), 'v1.29.8+k3s1', files('v1.29.8'), { 'sha256sum-amd64.txt': ['k3s'], 'sha256sum-arm64.txt': ['k3s-arm64'] })
  const { 'k3s-arm64': _, ...amd64Only } = files('v1.30.4')
  await release(join(dir, 'srv'), 'v1.30.4+k3s1', amd64Only, { 'sha256sum-amd64.txt': ['k3s'], 'sha256sum-arm64.txt': ['k3s-arm64'] })
  // A mirror whose v1.30.4 amd64 list forgot the binary.
  await release(join(dir, 'www'), 'v1.30.4+k3s1', files('v1.30.4'), { 'sha256sum-amd64.txt': ['k3s-airgap-images-amd64.tar'], 'sha256sum-arm64.txt': ['k3s-arm64'] })
  server = createServer((req, res) => {
    const path = join(dir, 'www', decodeURIComponent(new URL(req.url!, 'http://x').pathname))
    readFile(path).then((body) => res.end(body), () => { res.statusCode = 404; res.end('Not Found') })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  mirror = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}, 30_000)

afterAll(async () => {
  await new Promise((r) => server?.close(r))
  await rm(dir, { recursive: true, force: true })
})

/**
 * A one-cluster plan, planned: the gate checks what its replace-binary steps (and a rebuild's) fetch. Its nodes'
 * commands run here under sh, each with its own machine architecture (`nodes`: name → arch; the first is the
 * control-plane node).
 */
function context(install: Record<string, string> | undefined, o: { distribution?: GateContext['distribution']; from?: string; to?: string; via?: string[]; onFailure?: string; rebuild?: 'previous' | 'target'; nodes?: Record<string, string> } = {}): GateContext {
  const nodes = o.nodes ?? { 'edge-1': 'amd64', 'pi-1': 'arm64' }
  const transport = {
    read: async (t: NodeTarget, cmd: Parameters<Transport['read']>[1]) => {
      const r = await execa('sh', ['-c', commandLine(cmd)], { reject: false, env: { PATH: `${join(dir, 'bin', nodes[t.node]!)}:${process.env.PATH}` } })
      return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? null }
    },
    mutate: async () => { throw new Error('a gate never mutates') },
  } as unknown as Transport
  const distribution = o.distribution ?? 'k3s'
  const parsed = parsePlan('plan.yaml', JSON.stringify({
    apiVersion: 'kupgrade.dev/v1alpha1', kind: 'UpgradePlan', metadata: { name: 'sources' },
    spec: {
      target: { kubernetes: o.to ?? 'v1.30.4', ...(o.via ? { via: o.via } : {}) }, strategy: { onFailure: o.onFailure ?? 'rollback', ...(o.rebuild ? { rebuild: { version: o.rebuild } } : {}) }, stages: [{ name: 's', clusters: ['edge'] }],
      clusters: [{
        name: 'edge', distribution, from: o.from ?? 'v1.29.8+k3s1', apiEndpoint: 'https://10.0.0.1:6443', ...(install ? { install } : {}),
        nodes: Object.keys(nodes).map((name, i) => ({ name, host: `10.0.0.${i + 2}`, role: i === 0 ? 'control-plane' : 'worker' })),
      }],
    },
  }))
  if (!parsed.plan) throw new Error(parsed.problems.map((p) => p.message).join('\n'))
  const cluster = buildExecutionPlan(parsed.plan).stages[0]!.clusters[0]!
  return {
    cluster: 'edge', distribution, scope: 'cluster', now: () => new Date(), kubectl: {} as KubectlClient, ssh: transport,
    nodes: Object.keys(nodes).map((name, i) => ({ name, role: i === 0 ? 'control-plane' as const : 'worker' as const, target: { node: name, host: '127.0.0.1', port: 22, user: 'root' } as NodeTarget })),
    releaseFetches: () => releaseFetches(cluster),
  }
}

describe('release-source on each node, before anything changes', () => {
  it("finds each node's architecture's files for every hop in the folder, and names the node and file the folder lacks", async () => {
    const srv = join(dir, 'srv')
    const r = await releaseSourceGate.check(context({ path: srv }, { from: 'v1.28.9+k3s1', via: ['v1.29.8'] }), { timeout: '30s' })
    expect(r.status).toBe('fail')
    expect(r.summary).toBe(`pi-1: cannot get k3s-arm64 (k3s v1.30.4+k3s1 for aarch64) from ${srv}/v1.30.4+k3s1/`)
    expect(r.evidence).toEqual(expect.arrayContaining([
      { source: `node edge-1: v1.29.8+k3s1 from install.path ${srv} on the node`, observed: `${srv}/v1.29.8+k3s1/k3s, ${srv}/v1.29.8+k3s1/sha256sum-amd64.txt`, status: 'pass' },
      { source: `node edge-1: v1.30.4+k3s1 from install.path ${srv} on the node`, observed: `${srv}/v1.30.4+k3s1/k3s, ${srv}/v1.30.4+k3s1/sha256sum-amd64.txt`, status: 'pass' },
      { source: `node pi-1: v1.29.8+k3s1 from install.path ${srv} on the node`, observed: `${srv}/v1.29.8+k3s1/k3s-arm64, ${srv}/v1.29.8+k3s1/sha256sum-arm64.txt`, status: 'pass' },
    ]))
    expect(r.evidence).toHaveLength(4)
    expect(r.hint).toContain("put each node's architecture's files of the release where the plan's install points")
    // The one hop every node can get passes.
    const one = await releaseSourceGate.check(context({ path: srv }, { from: 'v1.28.9+k3s1', to: 'v1.29.8' }), { timeout: '30s' })
    expect(one).toMatchObject({ status: 'pass', summary: `every node can get v1.29.8+k3s1 for its architecture from install.path ${srv} on the node` })
  })

  it('with onFailure: rebuild, what a rebuild would reinstall is checked too: a worker the release it ran before', async () => {
    const srv = join(dir, 'srv')
    const where = `install.path ${srv} on the node`
    const r = await releaseSourceGate.check(context({ path: srv }, { from: 'v1.28.9+k3s1', to: 'v1.29.8', onFailure: 'rebuild' }), { timeout: '30s' })
    expect(r).toMatchObject({ status: 'fail', summary: `pi-1: cannot get k3s-arm64 (k3s v1.28.9+k3s1 for aarch64) from ${srv}/v1.28.9+k3s1/ (what a rebuild of it reinstalls)` })
    // The only server is never rebuilt (a restore from the snapshot brings it back): the old release is not asked of it.
    expect(r.evidence.map((e) => e.source).sort()).toEqual([`node edge-1: v1.29.8+k3s1 from ${where}`, `node pi-1: v1.28.9+k3s1 (what a rebuild of it reinstalls) from ${where}`, `node pi-1: v1.29.8+k3s1 from ${where}`])
    // Rebuilt at the hop's target, a worker fetches nothing more.
    const target = await releaseSourceGate.check(context({ path: srv }, { from: 'v1.28.9+k3s1', to: 'v1.29.8', onFailure: 'rebuild', rebuild: 'target' }), { timeout: '30s' })
    expect(target).toMatchObject({ status: 'pass', summary: `every node can get v1.29.8+k3s1 for its architecture from ${where}` })
  })

  it('reads a mirror with curl: a missing file is its 404, a binary its checksum list does not name fails', async () => {
    const r = await releaseSourceGate.check(context({ mirror }), { timeout: '30s' })
    expect(r.status).toBe('fail')
    expect(r.summary).toBe('edge-1: k3s is not listed in sha256sum-amd64.txt of v1.30.4+k3s1')
    const pass = r.evidence.find((e) => e.source.startsWith('node pi-1'))
    expect(pass).toEqual({ source: `node pi-1: v1.30.4+k3s1 from install.mirror ${mirror}`, observed: `${mirror}/v1.30.4%2Bk3s1/k3s-arm64, ${mirror}/v1.30.4%2Bk3s1/sha256sum-arm64.txt`, status: 'pass' })
    // A release the mirror lacks altogether.
    const none = await releaseSourceGate.check(context({ mirror }, { from: 'v1.28.9+k3s1', to: 'v1.29.8', nodes: { 'edge-1': 'amd64' } }), { timeout: '30s' })
    expect(none).toMatchObject({ status: 'fail', summary: `edge-1: cannot get k3s (k3s v1.29.8+k3s1 for x86_64) from ${mirror}/v1.29.8%2Bk3s1/` })
    expect(none.evidence[0]!.observed).toContain('curl: (22) The requested URL returned error: 404')
  })

  it('k0s from its install script: get.k0s.sh and the binary only (the script checks no list)', async () => {
    const ctx = context(undefined, { distribution: 'k0s', from: 'v1.29.6+k0s.0', to: 'v1.30.4', nodes: { 'edge-1': 'amd64' } })
    // The script, as the node would run it: the install script's URL and GitHub's asset, by the release's raw name.
    let seen = ''
    const ssh = ctx.ssh
    ctx.ssh = { ...ssh, read: async (_t, cmd) => { seen = commandLine(cmd); return { stdout: '', stderr: 'curl: (6) Could not resolve host: get.k0s.sh\nkupgrade: cannot get the install script https://get.k0s.sh', exitCode: 0 } } } as Transport
    const r = await releaseSourceGate.check(ctx, { timeout: '30s' })
    expect(seen).toContain('curl -sSfL -r 0-0 -o /dev/null https://get.k0s.sh ||')
    expect(seen).toContain('curl -sSfL -r 0-0 -o /dev/null https://github.com/k0sproject/k0s/releases/download/v1.30.4+k0s.0/"$asset" ||')
    expect(seen).not.toContain('"$tmp/$sums"')
    // A read whose sections never came back is unknown, never a pass.
    expect(r).toMatchObject({ status: 'unknown', summary: 'edge-1: the check of v1.30.4+k0s.0 did not finish' })
  })

  it('check and plan --live ask it with live facts, as apply plans: a node already at the target fetches nothing', () => {
    const source = JSON.stringify({
      apiVersion: 'kupgrade.dev/v1alpha1', kind: 'UpgradePlan', metadata: { name: 'live' },
      spec: {
        target: { kubernetes: 'v1.30.4' }, stages: [{ name: 's', clusters: ['edge'] }],
        clusters: [{ name: 'edge', distribution: 'k3s', from: 'v1.29.8+k3s1', apiEndpoint: 'https://10.0.0.1:6443', install: { mirror }, nodes: [
          { name: 'edge-1', host: '10.0.0.2', role: 'control-plane' }, { name: 'pi-1', host: '10.0.0.3', role: 'worker' },
        ] }],
      },
    })
    const parsed = parsePlan('live.yaml', source)
    if (!parsed.plan) throw new Error(parsed.problems.map((p) => p.message).join('\n'))
    const loaded: LoadedPlan = { file: 'live.yaml', dir, plan: parsed.plan, warnings: [], ...(parsed.expanded ? { expanded: parsed.expanded } : {}) }
    const node = (name: string, kubeletVersion: string) => ({ name, role: 'worker', kubeletVersion, installedVersion: kubeletVersion, services: {}, arch: 'amd64' })
    const facts = { gatheredAt: '', durationMs: 0, clusters: [{ name: 'edge', distribution: 'k3s', nodes: [node('edge-1', 'v1.30.4+k3s1'), node('pi-1', 'v1.29.8+k3s1')] }] } as unknown as FleetFacts
    const o = { transport: {} as Transport, env: {}, kubectlFor: () => ({}) as KubectlClient }
    const fetched = (ctx: GateContext) => ctx.releaseFetches!().map((f) => `${f.node} ${f.release}`)
    expect(fetched(gateContexts(loaded, undefined, o)[0]!)).toEqual(['edge-1 v1.30.4+k3s1', 'pi-1 v1.30.4+k3s1'])
    expect(fetched(gateContexts(loaded, undefined, { ...o, facts })[0]!)).toEqual(['pi-1 v1.30.4+k3s1'])
  })

  it("kubeadm: every node that switches its package repository has a pkgs.k8s.io line the switch can move; the legacy repository, another file or none is named", async () => {
    // Each node's /etc is a folder of its own here: the script's absolute paths are read under it (the lab e2e reads a
    // node's real /etc over SSH).
    const ubuntu = 'ID=ubuntu\nID_LIKE=debian\n'
    const nodes: Record<string, { os: string; files: Record<string, string> }> = {
      'cp-1': { os: ubuntu, files: { 'apt/sources.list.d/kubernetes.list': 'deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.29/deb/ /\n' } },
      'w-1': { os: ubuntu, files: { 'apt/sources.list.d/kubernetes.list': 'deb https://apt.kubernetes.io/ kubernetes-xenial main\n' } },
      'w-2': { os: 'ID="rocky"\nID_LIKE="rhel centos fedora"\n', files: { 'yum.repos.d/k8s.repo': '[kubernetes]\nbaseurl=https://pkgs.k8s.io/core:/stable:/v1.29/rpm/\n' } },
      'w-3': { os: ubuntu, files: {} },
      'w-4': { os: ubuntu, files: { 'apt/sources.list.d/kubernetes.list': 'deb https://mirror.example.com/k8s/ stable main\n' } },
    }
    for (const [name, n] of Object.entries(nodes)) {
      const etc = join(dir, 'roots', name, 'etc')
      await mkdir(join(etc, 'apt/sources.list.d'), { recursive: true })
      await mkdir(join(etc, 'yum.repos.d'), { recursive: true })
      await writeFile(join(etc, 'os-release'), n.os)
      for (const [f, body] of Object.entries(n.files)) await writeFile(join(etc, f), body)
    }
    const root = (node: string) => join(dir, 'roots', node)
    const transport = {
      read: async (t: NodeTarget, cmd: Parameters<Transport['read']>[1]) => {
        const r = await execa('sh', ['-c', commandLine(cmd).replaceAll('/etc/', `${root(t.node)}/etc/`)], { reject: false })
        return { stdout: r.stdout.replaceAll(root(t.node), ''), stderr: r.stderr, exitCode: r.exitCode ?? null }
      },
    } as unknown as Transport
    const plan = (from: string) => {
      const parsed = parsePlan('plan.yaml', JSON.stringify({
        apiVersion: 'kupgrade.dev/v1alpha1', kind: 'UpgradePlan', metadata: { name: 'repos' },
        spec: { target: { kubernetes: 'v1.30.4' }, stages: [{ name: 's', clusters: ['prod'] }], clusters: [{ name: 'prod', distribution: 'kubeadm', from, apiEndpoint: 'https://10.0.0.1:6443', nodes: Object.keys(nodes).map((name, i) => ({ name, host: `10.0.0.${i + 2}`, role: i === 0 ? 'control-plane' : 'worker' })) }] },
      }))
      return buildExecutionPlan(parsed.plan!).stages[0]!.clusters[0]!
    }
    const ctx = (from: string, nodeFacts?: GateContext['nodeFacts']): GateContext => {
      const cluster = plan(from)
      return {
        cluster: 'prod', distribution: 'kubeadm', scope: 'cluster', now: () => new Date(), kubectl: {} as KubectlClient, ssh: transport,
        nodes: Object.keys(nodes).map((name, i) => ({ name, role: i === 0 ? 'control-plane' as const : 'worker' as const, target: { node: name, host: '127.0.0.1', port: 22, user: 'root' } as NodeTarget })),
        releaseFetches: () => releaseFetches(cluster), repoSwitches: () => repoSwitches(cluster), ...(nodeFacts ? { nodeFacts } : {}),
      }
    }
    const r = await releaseSourceGate.check(ctx('v1.29.8'), { timeout: '30s' })
    expect(r.status).toBe('fail')
    const problems = r.summary.split('; ')
    expect(problems).toEqual([
      'w-1: /etc/apt/sources.list.d/kubernetes.list points at the legacy Google-hosted Kubernetes repository (apt.kubernetes.io, yum.kubernetes.io, packages.cloud.google.com), frozen in 2023 and removed in 2024: move the node to pkgs.k8s.io (https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/change-package-repository/), then run again',
      'w-2: pkgs.k8s.io is configured in /etc/yum.repos.d/k8s.repo, and kupgrade switches the repository of each minor in /etc/yum.repos.d/kubernetes.repo (where the Kubernetes install docs put it): move the line there, then run again',
      'w-3: /etc/apt/sources.list.d/kubernetes.list does not exist, and kupgrade switches the pkgs.k8s.io repository of each minor there: add it (https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/change-package-repository/), then run again',
      'w-4: /etc/apt/sources.list.d/kubernetes.list names no pkgs.k8s.io repository (pkgs.k8s.io/core:/stable:/v1.NN/), the one kupgrade switches from minor to minor: point it at pkgs.k8s.io (https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/change-package-repository/), then run again',
    ])
    expect(r.evidence).toContainEqual({ source: 'node cp-1: the Kubernetes package repository, to be switched to v1.30', observed: '/etc/apt/sources.list.d/kubernetes.list: pkgs.k8s.io/core:/stable:/v1.29/', status: 'pass' })
    expect(r.hint).toMatch(/^point each node's `kubernetes.list` \(apt\) or `kubernetes.repo` \(dnf\) at its pkgs.k8s.io minor/)
    // The package manager the facts read wins over the OS family: a Debian host told to use dnf is read as dnf.
    const told = await releaseSourceGate.check({ ...ctx('v1.29.8'), scope: 'node', node: 'cp-1', nodeFacts: { 'cp-1': { packageManager: 'dnf' } as never } }, { timeout: '30s' })
    expect(told.summary).toBe('cp-1: /etc/yum.repos.d/kubernetes.repo does not exist, and kupgrade switches the pkgs.k8s.io repository of each minor there: add it (https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/change-package-repository/), then run again')
    // A patch upgrade switches nothing: nothing to check.
    expect(await releaseSourceGate.check(ctx('v1.30.1'), { timeout: '30s' })).toMatchObject({ status: 'pass', summary: 'no node fetches a release or switches its package repository: nothing to check' })
    // Fixed, it passes, naming what it found.
    await writeFile(join(root('w-1'), 'etc/apt/sources.list.d/kubernetes.list'), 'deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.29/deb/ /\n')
    const one = await releaseSourceGate.check({ ...ctx('v1.29.8'), scope: 'node', node: 'w-1' }, { timeout: '30s' })
    expect(one).toMatchObject({ status: 'pass', summary: "every node's Kubernetes package repository is a pkgs.k8s.io one kupgrade can switch to v1.30" })
  })
})
