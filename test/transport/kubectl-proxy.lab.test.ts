import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { Node } from 'kubernetes-types/core/v1.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Lab } from '../../src/lab/lab.js'
import { normalizeTopology } from '../../src/lab/topology.js'
import { sharedProxy } from '../../src/transport/kubectl/api-proxy.js'
import { KubectlClient } from '../../src/transport/kubectl/client.js'
import { observeUntil } from '../../src/transport/kubectl/observe.js'
import { topology } from '../executor/helpers.js'
import { ensureBuilt } from '../helpers/built.js'
import { KUBECTL } from '../lab/helpers.js'

/**
 * Reads through one long-lived `kubectl proxy` (the real kubectl, against the lab's API server): they answer what a
 * kubectl process answers, a call the proxy cannot answer runs as kubectl and fails in kubectl's words, and the proxy
 * ends with the process that started it.
 */
describe('kubectl proxy for reads (real kubectl, lab API server)', () => {
  let lab: Lab
  let dir: string
  const calls = () => readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n').filter(Boolean).map((l) => l.replace(/^(--\S+ )+/, ''))
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kupgrade-proxy-'))
    lab = new Lab({ topology: normalizeTopology(topology('127.0.159', [{ name: 'c', distribution: 'k3s', controlPlanes: 1, workers: 2 }])), dir, nodes: false })
    await lab.start()
    // Logs every call, then execs kubectl: which calls became processes.
    writeFileSync(join(dir, 'wrapper.sh'), `#!/bin/bash\nprintf '%s\\n' "$*" >> ${JSON.stringify(join(dir, 'calls'))}\nexec ${JSON.stringify(KUBECTL)} "$@"\n`)
    chmodSync(join(dir, 'wrapper.sh'), 0o755)
    // A kubectl (or a wrapper) that cannot run a proxy.
    writeFileSync(join(dir, 'no-proxy.sh'), `#!/bin/bash\nfor a in "$@"; do [ "$a" = proxy ] && { echo 'error: unknown command "proxy" for "kubectl"' >&2; exit 1; }; done\nexec ${JSON.stringify(KUBECTL)} "$@"\n`)
    chmodSync(join(dir, 'no-proxy.sh'), 0o755)
  }, 60_000)
  afterAll(async () => {
    await lab?.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  const client = (binary: string, proxy: boolean, log?: string[]) => new KubectlClient({
    cluster: 'c', binary, kubeconfig: join(dir, 'kubeconfig'), context: 'c', cacheDir: join(dir, 'cache'), proxy, backoffBaseMs: 1, backoffCapMs: 5,
    ...(log ? { log: (m: string) => log.push(m) } : {}),
  })

  it('reads answer what kubectl prints, and no kubectl process runs for them', async () => {
    const plain = client(KUBECTL, false)
    const log: string[] = []
    const viaProxy = client(join(dir, 'wrapper.sh'), true, log)
    writeFileSync(join(dir, 'calls'), '')
    const node = (await plain.nodes()).items[1]!.metadata!.name!
    const names = (l: { items: { kind?: string; metadata?: { name?: string } }[] }) => l.items.map((i) => `${i.kind}/${i.metadata?.name}`).sort()
    const reads: [string[], (o: any) => unknown][] = [
      [['get', '--raw', '/version'], (o) => o],
      [['get', 'nodes', '-o', 'json'], (o) => [o.kind, o.apiVersion, names(o)]],
      [['get', 'node', node, '-o', 'json'], (o) => [o.kind, o.metadata.name, o.metadata.uid]],
      [['get', 'pods', '-n', 'kube-system', '-o', 'json'], (o) => names(o)],
      [['get', 'pods', '--all-namespaces', '--field-selector=status.phase=Running', '-o', 'json'], (o) => names(o)],
      [['get', 'service', 'kubernetes', '-n', 'default', '-o', 'json'], (o) => [o.kind, o.spec.clusterIP]],
      [['get', 'poddisruptionbudgets', '--all-namespaces', '-o', 'json'], (o) => names(o)],
    ]
    for (const [args, view] of reads) {
      const want = view(await plain.json(args))
      expect(view(await viaProxy.json(args)), args.join(' ')).toEqual(want)
    }
    expect(names(await plain.json(['get', 'nodes', '-o', 'json'])).length).toBe(3)
    expect(calls().map((c) => c.split(' ')[0])).toEqual(['proxy'])
    expect(log.filter((l) => l.endsWith('(through kubectl proxy)'))).toHaveLength(reads.length)
  }, 60_000)

  it('the proxy listens on a socket only its user can reach', async () => {
    const p = await sharedProxy({ binary: join(dir, 'wrapper.sh'), flags: [`--kubeconfig=${join(dir, 'kubeconfig')}`, '--context=c'], env: process.env })
    expect(p).toBeDefined()
    expect(statSync(dirname(p!.socketPath)).mode & 0o777).toBe(0o700)
    expect(statSync(p!.socketPath).isSocket()).toBe(true)
  })

  it('a read the API server refuses runs as kubectl, which fails in its own words', async () => {
    writeFileSync(join(dir, 'calls'), '')
    const log: string[] = []
    const err = await client(join(dir, 'wrapper.sh'), true, log).json(['get', 'node', 'no-such-node', '-o', 'json']).then(() => undefined, (e: unknown) => e as Error & { stderr?: string })
    expect(err?.message).toMatch(/nodes "no-such-node" not found/)
    expect(calls()).toEqual(['get node no-such-node -o json'])
    expect(log.some((l) => /HTTP 404 through kubectl proxy; running kubectl for it/.test(l))).toBe(true)
  })

  it('a kubectl that cannot run a proxy: every call runs as kubectl, and the reason is logged once', async () => {
    const log: string[] = []
    const k = client(join(dir, 'no-proxy.sh'), true, log)
    expect((await k.version()).gitVersion).toMatch(/^v1\.29\.6/)
    expect((await k.nodes()).items).toHaveLength(3)
    expect(log.filter((l) => l.includes('kubectl proxy did not start'))).toEqual([expect.stringContaining('unknown command "proxy"')])
  })

  it('probe pods are created and deleted through it, printing what kubectl prints', async () => {
    const k = client(KUBECTL, true)
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'proxy-probe', namespace: 'default' }, spec: { restartPolicy: 'Never', containers: [{ name: 'probe', image: 'busybox', command: ['sh', '-c', 'true'] }] } }
    expect(await k.run(['create', '-f', '-', '-o', 'name'], { stdin: JSON.stringify(pod) })).toBe('pod/proxy-probe\n')
    expect((await client(KUBECTL, false).json<{ metadata: { name: string } }>(['get', 'pod', 'proxy-probe', '-n', 'default', '-o', 'json'])).metadata.name).toBe('proxy-probe')
    const del = ['delete', 'pod', 'proxy-probe', '-n', 'default', '--ignore-not-found', '--wait=false']
    expect(await k.run(del)).toBe('pod "proxy-probe" deleted\n')
    // A second delete finds nothing: kubectl prints nothing and succeeds, and so does the proxy.
    expect(await client(KUBECTL, false).run(del)).toBe('')
    expect(await k.run(del)).toBe('')
  })

  it('a watch through it sees a cordon made by another client, and is stopped at once', async () => {
    writeFileSync(join(dir, 'calls'), '')
    const k = client(join(dir, 'wrapper.sh'), true)
    const node = (await k.nodes()).items[2]!.metadata!.name!
    const seen: boolean[] = []
    const waiting = observeUntil<Node, string>(k, ['node', node], (s) => {
      if (s.error) throw s.error
      seen.push(s.obj.spec?.unschedulable === true)
      return s.obj.spec?.unschedulable ? 'cordoned' : undefined
    }, { quietMs: 60_000, pollMs: 60_000 })
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 50))
    await client(KUBECTL, false).run(['cordon', node])
    expect(await waiting).toBe('cordoned')
    expect(seen[0]).toBe(false)
    expect(calls()).toEqual([])
    await client(KUBECTL, false).run(['uncordon', node])
  }, 30_000)

  it('cordon and uncordon go through it: what kubectl prints, the Node changed on the API server, no kubectl process', async () => {
    const plain = client(KUBECTL, false)
    const viaProxy = client(join(dir, 'wrapper.sh'), true)
    const node = (await plain.nodes()).items[1]!.metadata!.name!
    const cordoned = () => lab.status().clusters[0]!.nodes.find((n) => n.name === node)!.cordoned
    writeFileSync(join(dir, 'calls'), '')
    expect(await viaProxy.run(['cordon', node])).toBe(`node/${node} cordoned\n`)
    expect(cordoned()).toBe(true)
    // kubectl itself agrees it is done, and so does a second cordon through the proxy, which writes nothing.
    expect(await plain.run(['cordon', node])).toBe(`node/${node} already cordoned\n`)
    const mark = lab.recorder.mark()
    expect(await viaProxy.run(['cordon', node])).toBe(`node/${node} already cordoned\n`)
    expect(lab.recorder.mutations({ afterSeq: mark })).toEqual([])
    expect(await viaProxy.run(['uncordon', node])).toBe(`node/${node} uncordoned\n`)
    expect(cordoned()).toBe(false)
    expect(await plain.run(['uncordon', node])).toBe(`node/${node} already uncordoned\n`)
    expect(await viaProxy.run(['uncordon', node])).toBe(`node/${node} already uncordoned\n`)
    expect(calls().filter((c) => !c.startsWith('proxy '))).toEqual([])
    // A Node that does not exist: kubectl runs, and fails in its own words.
    const err = await viaProxy.run(['cordon', 'no-such-node']).then(() => undefined, (e: unknown) => e as Error)
    expect(err?.message).toMatch(/nodes "no-such-node" not found/)
    expect(calls().filter((c) => !c.startsWith('proxy '))).toEqual(['cordon no-such-node'])
  }, 60_000)

  it('the proxy refuses PUT: the Lease, the one object kupgrade replaces, is written by kubectl with its resourceVersion', async () => {
    const p = (await sharedProxy({ binary: join(dir, 'wrapper.sh'), flags: [`--kubeconfig=${join(dir, 'kubeconfig')}`, '--context=c'], env: process.env }))!
    const node = (await client(KUBECTL, false).nodes()).items[0]!
    const put = await p.request('PUT', `/api/v1/nodes/${node.metadata!.name}`, { body: JSON.stringify({ ...node, spec: { ...node.spec, unschedulable: true } }), timeoutMs: 5_000 })
    expect(put.status).toBe(403)
    expect(lab.status().clusters[0]!.nodes.find((n) => n.name === node.metadata!.name)!.cordoned).toBe(false)
  })

  it('a watch whose first object already answers ends at once, not at its request timeout', async () => {
    // A request timeout far beyond the test's own: a watch left streaming after the answer would outlive the test.
    const k = new KubectlClient({ cluster: 'c', binary: KUBECTL, kubeconfig: join(dir, 'kubeconfig'), context: 'c', cacheDir: join(dir, 'cache'), proxy: true, requestTimeout: '5m' })
    const node = (await k.nodes()).items[0]!.metadata!.name!
    for (let i = 0; i < 3; i++) {
      expect(await observeUntil<Node, string>(k, ['node', node], (s) => (s.obj ? `seen ${s.obj.metadata?.name}` : undefined), { quietMs: 60_000, pollMs: 60_000 })).toBe(`seen ${node}`)
    }
  }, 10_000)

  it('a watch on a Node that does not exist runs as kubectl, whose NotFound reaches decide', async () => {
    const errors: string[] = []
    const answer = await observeUntil<Node, string>(client(KUBECTL, true), ['node', 'no-such-node'], (s) => {
      if (s.error) errors.push(s.error.message)
      return errors.length >= 1 ? 'gave up' : undefined
    }, { quietMs: 1_000, pollMs: 100 })
    expect(answer).toBe('gave up')
    expect(errors[0]).toMatch(/not found/)
  }, 30_000)

  it('a proxy without requests for its idle time is closed, and the next call starts another', async () => {
    const target = { binary: KUBECTL, flags: [`--kubeconfig=${join(dir, 'kubeconfig')}`, '--context=c'], env: process.env, idleMs: 400 }
    const problems: string[] = []
    const first = (await sharedProxy(target, (m) => problems.push(m)))!
    expect(problems).toEqual([])
    expect((await first.request('GET', '/version', { timeoutMs: 5_000 })).status).toBe(200)
    const running = () => spawnSync('pgrep', ['-f', `unix-socket=${first.socketPath}`], { encoding: 'utf8' }).stdout.trim()
    expect(running()).not.toBe('')
    const until = Date.now() + 10_000
    while ((!first.closed || running() !== '') && Date.now() < until) await new Promise((r) => setTimeout(r, 50))
    expect(first.closed).toBe(true)
    expect(running()).toBe('')
    const second = (await sharedProxy(target, (m) => problems.push(m)))!
    expect(problems).toEqual([])
    expect(second).not.toBe(first)
    expect((await second.request('GET', '/version', { timeoutMs: 5_000 })).status).toBe(200)
    second.close()
  }, 30_000)

  it('a proxy slower to start than its idle time is not closed for idleness before it serves', async () => {
    writeFileSync(join(dir, 'slow.sh'), `#!/bin/bash\nsleep 1\nexec ${JSON.stringify(KUBECTL)} "$@"\n`)
    chmodSync(join(dir, 'slow.sh'), 0o755)
    const problems: string[] = []
    const p = await sharedProxy({ binary: join(dir, 'slow.sh'), flags: [`--kubeconfig=${join(dir, 'kubeconfig')}`, '--context=c'], env: process.env, idleMs: 200 }, (m) => problems.push(m))
    expect(problems).toEqual([])
    expect((await p!.request('GET', '/version', { timeoutMs: 5_000 })).status).toBe(200)
    p!.close()
  }, 30_000)

  for (const how of ['kubectl', 'a wrapper that runs kubectl as its child'] as const) it(`the proxy (${how}) ends with the process that started it, even when that process is killed with SIGKILL`, async () => {
    ensureBuilt()
    // A wrapper that does not exec: killing the wrapper alone would leave its kubectl proxy running.
    writeFileSync(join(dir, 'child.sh'), `#!/bin/bash\n${JSON.stringify(KUBECTL)} "$@"\necho "kubectl exited $?" >&2\n`)
    chmodSync(join(dir, 'child.sh'), 0o755)
    const binary = how === 'kubectl' ? KUBECTL : join(dir, 'child.sh')
    const proxyModule = join(import.meta.dirname, '..', '..', 'dist', 'transport', 'kubectl', 'api-proxy.js')
    const script = `const { sharedProxy } = await import(${JSON.stringify(proxyModule)}); const p = await sharedProxy({ binary: ${JSON.stringify(binary)}, flags: ['--kubeconfig=${join(dir, 'kubeconfig')}', '--context=c'], env: process.env }); console.log(p.socketPath); setInterval(() => {}, 1000)`
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    const sock = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())))
    const proxies = () => spawnSync('pgrep', ['-f', `unix-socket=${sock}`], { encoding: 'utf8' }).stdout.trim()
    expect(proxies()).not.toBe('')
    child.kill('SIGKILL')
    const until = Date.now() + 10_000
    while (proxies() !== '' && Date.now() < until) await new Promise((r) => setTimeout(r, 50))
    expect(proxies()).toBe('')
    // Its socket and directory go with it: kupgrade, killed, could not remove them.
    while (existsSync(dirname(sock)) && Date.now() < until) await new Promise((r) => setTimeout(r, 50))
    expect(existsSync(dirname(sock))).toBe(false)
  }, 30_000)
})
