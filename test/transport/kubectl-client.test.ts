import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeEach, describe, expect, it } from 'vitest'
import { RemoteCommandError } from '../../src/errors.js'
import { classifyKubectlFailure, isTransportFailure } from '../../src/transport/kubectl/classify.js'
import { chooseKubectl, KubectlClient } from '../../src/transport/kubectl/client.js'
import { collapseKlogRepeats } from '../../src/transport/kubectl/klog.js'
import { redact, redactArgv } from '../../src/transport/kubectl/redact.js'
import { KUBECTL } from '../lab/helpers.js'

const FAKE = join(import.meta.dirname, 'fixtures', 'fake-kubectl.sh')
let state: string
const logs: string[] = []

function client(fails: string[], extra: Partial<ConstructorParameters<typeof KubectlClient>[0]> = {}) {
  writeFileSync(join(state, 'out.json'), JSON.stringify({ major: '1', minor: '30', gitVersion: 'v1.30.4+k3s1' }))
  return new KubectlClient({
    cluster: 'staging',
    binary: FAKE,
    kubeconfig: '/tmp/kc',
    context: 'ctx-a',
    cacheDir: join(state, 'cache'),
    backoffBaseMs: 1,
    backoffCapMs: 5,
    env: { ...process.env, FAKE_STATE: state, FAKE_FAILS: fails.join(','), FAKE_OUT: join(state, 'out.json') },
    log: (m) => logs.push(m),
    ...extra,
  })
}
const calls = () => Number(readFileSync(join(state, 'count'), 'utf8'))
const rejection = (p: Promise<unknown>) => p.then(() => { throw new Error('expected rejection') }, (e: unknown) => e as RemoteCommandError)

beforeEach(() => {
  state = mkdtempSync(join(tmpdir(), 'fake-kubectl-'))
  logs.length = 0
})

describe('transport/kubectl client', () => {
  it('many calls in flight on one run signal: no MaxListenersExceededWarning on stderr mid-run', async () => {
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(w.name)
    process.on('warning', onWarning)
    try {
      const signal = new AbortController().signal
      const c = client([], { signal })
      // Sixteen different reads: identical ones would share one process (below).
      const all = await Promise.all(Array.from({ length: 16 }, (_, i) => c.json<{ gitVersion: string }>(['get', '--raw', `/version?n=${i}`])))
      expect(all.every((v) => v.gitVersion === 'v1.30.4+k3s1')).toBe(true)
      expect(calls()).toBe(16)
      await new Promise((r) => setImmediate(r))
      expect(warnings.filter((w) => w === 'MaxListenersExceededWarning')).toEqual([])
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('passes kubeconfig, context, request timeout and its own cache dir, and parses JSON', async () => {
    const v = await client([]).version()
    expect(v.gitVersion).toBe('v1.30.4+k3s1')
    const argv = readFileSync(join(state, 'argv'), 'utf8').trim()
    expect(argv).toBe(`--kubeconfig=/tmp/kc --context=ctx-a --request-timeout=20s --cache-dir=${join(state, 'cache')} get --raw /version`)
  })

  it('identical reads asked for together share a process, and none is handed a read that began before it asked', async () => {
    const c = client([])
    const env = (c as unknown as { o: { env: NodeJS.ProcessEnv } }).o.env
    Object.assign(env, { FAKE_ECHO_CALL: '1', FAKE_SLEEP: '0.3' })
    const first = c.json<{ call: number }>(['get', 'nodes', '-o', 'json'])
    await new Promise((r) => setTimeout(r, 100))
    // Asked while the first read runs: they wait for the next one, which starts after all of them asked.
    const later = await Promise.all(Array.from({ length: 8 }, () => c.json<{ call: number }>(['get', 'nodes', '-o', 'json'])))
    expect((await first).call).toBe(1)
    expect(later.map((r) => r.call)).toEqual(Array(8).fill(2))
    expect(calls()).toBe(2)
    // A different read, a write and a read with its own options each run as asked.
    await Promise.all([
      c.json(['get', 'pods', '-n', 'kube-system', '-o', 'json']),
      c.run(['cordon', 'n1']),
      c.run(['get', 'nodes', '-o', 'json'], { stdin: '' }),
      c.run(['get', 'nodes', '-o', 'json'], { signal: new AbortController().signal }),
    ])
    expect(calls()).toBe(6)
    // Nothing in flight: the next read runs at once, on its own.
    expect((await c.json<{ call: number }>(['get', 'nodes', '-o', 'json'])).call).toBe(7)
  })

  it('a shared read that fails fails every caller that joined it', async () => {
    const c = client(['403', '403'])
    const env = (c as unknown as { o: { env: NodeJS.ProcessEnv } }).o.env
    Object.assign(env, { FAKE_SLEEP: '0.2' })
    const first = rejection(c.nodes())
    await new Promise((r) => setTimeout(r, 50))
    const joined = await Promise.all([rejection(c.nodes()), rejection(c.nodes())])
    expect((await first).message).toMatch(/Forbidden/)
    for (const e of joined) expect(e.message).toMatch(/Forbidden/)
    expect(calls()).toBe(2)
  })

  it('retries timeouts, 429 and 5xx, then succeeds', async () => {
    const v = await client(['timeout', '429', '503']).version()
    expect(v.gitVersion).toBe('v1.30.4+k3s1')
    expect(calls()).toBe(4)
    expect(logs.filter((l) => l.includes('retry'))).toHaveLength(3)
  })

  it('gives up with a clear error after the attempts are used', async () => {
    const err = await rejection(client(['timeout', 'timeout', '500', 'timeout', 'timeout']).version())
    expect(err).toBeInstanceOf(RemoteCommandError)
    expect(calls()).toBe(4)
    expect(err.message).toContain('staging/kubectl')
    expect(err.message).toContain('get --raw /version')
    expect(err.hint).toBe('the API server did not answer in time after 4 attempts')
  })

  it('does not retry 4xx answers', async () => {
    const err = await rejection(client(['403', 'timeout']).nodes())
    expect(calls()).toBe(1)
    expect(err.message).toContain('Forbidden')
    expect(err.hint).toBe('the API server refused the request')
    rmSync(join(state, 'count'))
    expect((await rejection(client(['404', 'timeout']).nodes())).message).toContain('NotFound')
    expect(calls()).toBe(1)
  })

  it('does not retry mutating verbs unless asked, and marks an unanswered one transient for the executor', async () => {
    const err = await rejection(client(['503', '503']).run(['cordon', 'n1']))
    expect(calls()).toBe(1)
    expect((err as RemoteCommandError).transient).toBe(true)
    rmSync(join(state, 'count'))
    expect(((await rejection(client(['x509']).run(['cordon', 'n1']))) as RemoteCommandError).transient).toBe(false)
    rmSync(join(state, 'count'))
    expect(((await rejection(client(['403']).run(['cordon', 'n1']))) as RemoteCommandError).transient).toBe(false)
  })

  it('a cordon that printed "error: unable to cordon node" failed, though kubectl exits 0 (kubernetes/kubernetes#89008)', async () => {
    const err = await rejection(client(['quietcordon']).run(['cordon', 'n1']))
    expect(err).toBeInstanceOf(RemoteCommandError)
    expect(err.message).toContain('unable to cordon node "n1"')
    expect(err.transient).toBe(true)
  })

  it('the real kubectl against a port nothing listens on: retried, then "could not be reached", transient for the executor', async () => {
    // A port that was just free: connecting to it is refused, as to an apiserver that is restarting.
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port
        srv.close(() => resolve(p))
      })
    })
    const kubeconfig = join(state, 'refused.kubeconfig')
    writeFileSync(kubeconfig, `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n`)
    const c = new KubectlClient({ cluster: 'c', binary: KUBECTL, kubeconfig, cacheDir: join(state, 'cache'), backoffBaseMs: 1, backoffCapMs: 2, log: (m) => logs.push(m) })
    // kubectl says it in one line of its own when it needs no discovery first (here `get --raw /version`).
    const err = await rejection(c.version())
    expect(err.message).toMatch(/The connection to the server 127\.0\.0\.1:\d+ was refused - did you specify the right host or port\?/)
    expect(err.hint).toBe('the API server could not be reached (nothing listening, or no route to it) after 4 attempts')
    expect(err.transient).toBe(true)
    expect(logs.filter((l) => / unreachable \(The connection to the server .* was refused.*\); retry \d\/3/.test(l))).toHaveLength(3)
    expect(classifyKubectlFailure('E1204 memcache.go:265] "Unhandled Error" err="couldn\'t get current server API group list: Get \\"https://127.0.0.1:1/api?timeout=2s\\": dial tcp 127.0.0.1:1: connect: connection refused"')).toBe('unreachable')
  })

  it('the real kubectl with no kubeconfig to read: said as a missing kubeconfig, once, not retried as an apiserver down', async () => {
    // kubectl itself falls back to http://localhost:8080 and calls that refused: a cluster down, by its words.
    const home = join(state, 'home')
    const c = (env: NodeJS.ProcessEnv) => new KubectlClient({ cluster: 'prod', binary: KUBECTL, cacheDir: join(state, 'cache'), requestTimeout: '2s', backoffBaseMs: 1, backoffCapMs: 2, env, log: (m) => logs.push(m) })
    const base = { PATH: process.env.PATH, HOME: home }
    const unset = await rejection(c(base).json(['get', 'nodes', '-o', 'json']))
    expect(unset.message).toMatch(/localhost:8080/)
    // kubectl's one klog line per discovery attempt is shown once, counted, above its verdict.
    expect(unset.message.match(/memcache\.go/g)).toHaveLength(1)
    expect(unset.message).toMatch(/couldn't get current server API group list: .* \(\d+ times\)\n.*The connection to the server localhost:8080 was refused/)
    expect(unset.hint).toBe(`kubectl found no kubeconfig and fell back to its built-in http://localhost:8080: the plan gives cluster prod no kubeconfig, KUBECONFIG is unset and ${home}/.kube/config does not exist; set \`kubeconfig:\` (and \`context:\`) for prod in the plan, or KUBECONFIG (not retried)`)
    expect(unset.transient).toBe(false)
    expect(logs.filter((l) => l.includes('retry'))).toEqual([])
    // With a context named, kubectl says that context does not exist, in its two wordings: the same missing kubeconfig.
    const withContext = (env: NodeJS.ProcessEnv) => new KubectlClient({ cluster: 'prod', binary: KUBECTL, context: 'prod-ctx', cacheDir: join(state, 'cache'), env, log: (m) => logs.push(m) })
    const wordings: [() => Promise<unknown>, RegExp][] = [
      [() => withContext(base).version(), /error: context "prod-ctx" does not exist/],
      [() => withContext(base).json(['get', 'nodes', '-o', 'json']), /context was not found for specified context: prod-ctx/],
    ]
    for (const [call, said] of wordings) {
      const err = await rejection(call())
      expect(err.message).toMatch(said)
      expect(err.hint).toBe(`kubectl found no kubeconfig, so no context prod-ctx either: the plan gives cluster prod no kubeconfig, KUBECONFIG is unset and ${home}/.kube/config does not exist; set \`kubeconfig:\` (and \`context:\`) for prod in the plan, or KUBECONFIG (not retried)`)
    }
    const missing = await rejection(c({ ...base, KUBECONFIG: `${join(state, 'a')}:${join(state, 'b')}` }).version())
    expect(missing.hint).toMatch(new RegExp(`KUBECONFIG names only files that do not exist \\(${join(state, 'a')}, ${join(state, 'b')}\\); set`))
    // With ~/.kube/config in place the same refusal is a server down, and retried as one.
    mkdirSync(join(home, '.kube'), { recursive: true })
    writeFileSync(join(home, '.kube', 'config'), 'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "http://localhost:8080"}}]\ncontexts: [{name: c, context: {cluster: c}}]\ncurrent-context: c\n')
    const configured = await rejection(c(base).version())
    expect(configured.hint).toBe('the API server could not be reached (nothing listening, or no route to it) after 4 attempts')
    // A kubeconfig the plan names that is not there: kubectl's `stat FILE: no such file or directory`, and which setting.
    const named = join(state, 'gone.kubeconfig')
    const gone = await rejection(new KubectlClient({ cluster: 'prod', binary: KUBECTL, kubeconfig: named, cacheDir: join(state, 'cache'), env: base }).version())
    expect(gone.message).toContain(`error: stat ${named}: no such file or directory`)
    expect(gone.hint).toBe(`the kubeconfig ${named} that the plan gives cluster prod does not exist: fix \`kubeconfig:\` for prod in the plan (a relative path is read from the plan's folder)`)
  })

  it('the real kubectl given a context its kubeconfig lacks: said as the kubeconfig, whichever command met it first', async () => {
    const kubeconfig = join(state, 'other-context.kubeconfig')
    writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: other, context: {cluster: c, user: u}}]\ncurrent-context: other\n')
    const c = new KubectlClient({ cluster: 'prod', binary: KUBECTL, kubeconfig, context: 'prod', cacheDir: join(state, 'cache'), backoffBaseMs: 1, backoffCapMs: 2, env: { PATH: process.env.PATH, HOME: state }, log: (m) => logs.push(m) })
    // kubectl words it two ways: `error: context "prod" does not exist` (get --raw) and "context was not found for
    // specified context: prod" (get); both are the kubeconfig, never retried.
    const raw = await rejection(c.version())
    expect(raw.message).toContain('error: context "prod" does not exist')
    const get = await rejection(c.json(['get', 'nodes', '-o', 'json']))
    expect(get.message).toContain('context was not found for specified context: prod')
    for (const err of [raw, get]) expect(err.hint).toBe(`the kubeconfig cannot be used as given: is there a context named prod in ${kubeconfig}? (kubectl config get-contexts)`)
    expect(logs.filter((l) => l.includes('retry'))).toEqual([])
  })

  it('kills a hung kubectl at the process timeout and retries', async () => {
    const err = await rejection(client(['hang', 'hang'], { attempts: 2, processTimeoutMs: 300 }).version())
    expect(calls()).toBe(2)
    expect(err.hint).toMatch(/did not answer in time after 2 attempts/)
  })

  it('never prints tokens or key data in errors or logs', async () => {
    const c = client(['leak', 'leak', 'leak', 'leak'])
    const err = await rejection(c.run(['get', 'nodes', '--token=sekrit-token-0123456789', '--token', 'other-secret-value']))
    const everything = `${err.message}\n${err.hint}\n${logs.join('\n')}`
    expect(everything).toContain('connection refused')
    for (const secret of ['sekrit-token-0123456789', 'other-secret-value', 'LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCnNlY3JldA==']) {
      expect(everything).not.toContain(secret)
    }
    expect(everything).toContain('[REDACTED]')
  })

  it('reports a missing binary with the setting to fix', async () => {
    const err = await rejection(client([], { binary: join(state, 'nope') }).version())
    expect(err.hint).toMatch(/KUPGRADE_KUBECTL/)
  })
})

describe('transport/kubectl helpers', () => {
  it('keeps a klog line kubectl repeated once, counted; other lines and lone repeats as they were', () => {
    const line = (t: string, msg = '"Unhandled Error" err="couldn\'t get current server API group list"') => `E1204 23:04:33.${t}   30809 memcache.go:265] ${msg}`
    const stderr = [line('348208'), line('356816'), line('360396'), 'The connection to the server localhost:8080 was refused', line('1'), 'x', 'x', ''].join('\n')
    expect(collapseKlogRepeats(stderr)).toBe([`${line('348208')} (3 times)`, 'The connection to the server localhost:8080 was refused', line('1'), 'x', 'x', ''].join('\n'))
    expect(collapseKlogRepeats(`${line('1')}\n${line('2', 'other')}`)).toBe(`${line('1')}\n${line('2', 'other')}`)
  })


  it('chooses env, then cluster, then plan, then PATH', () => {
    expect(chooseKubectl({ KUPGRADE_KUBECTL: '/e' }, '/c', '/p')).toBe('/e')
    expect(chooseKubectl({}, '/c', '/p')).toBe('/c')
    expect(chooseKubectl({}, undefined, '/p')).toBe('/p')
    expect(chooseKubectl({})).toBe('kubectl')
  })

  it('classifies kubectl failures', () => {
    expect(classifyKubectlFailure('Error from server (Forbidden): pods is forbidden')).toBe('client')
    expect(classifyKubectlFailure('error: You must be logged in to the server (the server has asked for the client to provide credentials)')).toBe('client')
    expect(classifyKubectlFailure('Error from server (TooManyRequests): please try again later')).toBe('throttled')
    expect(classifyKubectlFailure('Error from server (ServiceUnavailable): the server is currently unable to handle the request')).toBe('server')
    expect(classifyKubectlFailure('Error from server: etcdserver: request timed out')).toBe('server')
    expect(classifyKubectlFailure('Unable to connect to the server: dial tcp 10.0.0.1:6443: i/o timeout')).toBe('timeout')
    expect(classifyKubectlFailure('something else')).toBe('unknown')
  })

  it('tells a request the API never answered (transient) from an answer kubectl got about the cluster', () => {
    for (const lost of [
      'Unable to connect to the server: net/http: TLS handshake timeout',
      'Unable to connect to the server: dial tcp 10.0.0.1:6443: connect: connection refused',
      'The connection to the server 10.0.0.1:6443 was refused - did you specify the right host or port?',
      'Unable to connect to the server: dial tcp: lookup api.example.internal on 10.0.0.2:53: no such host',
      'Error from server (ServiceUnavailable): the server is currently unable to handle the request',
      'Error from server: etcdserver: leader changed',
      'error: error when replacing "STDIN": Put "https://127.0.100.1:6443/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kupgrade-lock": net/http: TLS handshake timeout',
    ]) expect(isTransportFailure(lost), lost).toBe(true)
    for (const answered of [
      'Unable to connect to the server: tls: failed to verify certificate: x509: certificate signed by unknown authority',
      'Error from server (Forbidden): nodes "w1" is forbidden: User "dev" cannot patch resource "nodes"',
      'error: unable to drain node "w-1" due to error: [error when waiting for pod "web-0" in namespace "default" to terminate: global timeout reached: 20s], continuing command...',
      'error: timed out waiting for the condition on nodes/w-1',
    ]) expect(isTransportFailure(answered), answered).toBe(false)
  })

  it('redacts flags, headers, kubeconfig fields and PEM keys', () => {
    expect(redactArgv(['get', '--token', 'abcdefgh123', '--password=hunter2'])).toBe('get --token [REDACTED] --password=[REDACTED]')
    expect(redact('Authorization: Bearer eyJhbGciOi.xyz')).toBe('Authorization: Bearer [REDACTED]')
    expect(redact('    token: abc.def')).toBe('    token: [REDACTED]')
    expect(redact('"client-key-data": "QUJD"')).toBe('"client-key-data": "[REDACTED]"')
    expect(redact('-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----')).not.toContain('MHc')
  })
})
