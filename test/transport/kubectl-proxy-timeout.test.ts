import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KubectlClient } from '../../src/transport/kubectl/client.js'
import { KUBECTL } from '../lab/helpers.js'

/**
 * An API server that accepts requests and never answers, behind the real `kubectl proxy`: the proxy's try at a read
 * is one of the read's attempts (kubectl runs only the rest), and a write that got no answer is not sent again.
 */
describe('kubectl proxy and an API server that hangs', () => {
  let dir: string
  let server: Server
  const held: import('node:http').ServerResponse[] = []
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kupgrade-proxy-hang-'))
    server = createServer((_req, res) => void held.push(res))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as AddressInfo).port
    writeFileSync(join(dir, 'kubeconfig'), `apiVersion: v1\nkind: Config\nclusters:\n- name: h\n  cluster: {server: "http://127.0.0.1:${port}"}\ncontexts:\n- name: h\n  context: {cluster: h, user: h}\ncurrent-context: h\nusers:\n- name: h\n  user: {}\n`)
    writeFileSync(join(dir, 'wrapper.sh'), `#!/bin/bash\nprintf '%s\\n' "$*" >> ${JSON.stringify(join(dir, 'calls'))}\nexec ${JSON.stringify(KUBECTL)} "$@"\n`)
    chmodSync(join(dir, 'wrapper.sh'), 0o755)
  })
  afterAll(async () => {
    for (const r of held) r.destroy()
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
    rmSync(dir, { recursive: true, force: true })
  })
  const calls = () => readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n').filter(Boolean).map((l) => l.replace(/^(--\S+ )+/, ''))
  const client = (log: string[]) => new KubectlClient({
    cluster: 'h', binary: join(dir, 'wrapper.sh'), kubeconfig: join(dir, 'kubeconfig'), context: 'h', cacheDir: join(dir, 'cache'),
    requestTimeout: '1s', attempts: 2, backoffBaseMs: 1, backoffCapMs: 5, proxy: true, log: (m) => log.push(m),
  })

  it('a read: the proxy timing out is the first attempt, kubectl makes the second and last', async () => {
    writeFileSync(join(dir, 'calls'), '')
    const log: string[] = []
    const err = await client(log).json(['get', 'nodes', '-o', 'json']).then(() => undefined, (e: Error & { hint?: string }) => e)
    expect(err?.hint).toMatch(/did not answer in time after 2 attempts/)
    expect(calls().map((c) => c.split(' ')[0])).toEqual(['proxy', 'get'])
    expect(log.some((l) => /no answer through kubectl proxy in 1000 ms; running kubectl for the remaining attempts/.test(l))).toBe(true)
  }, 30_000)

  it('a write that got no answer is not sent again', async () => {
    writeFileSync(join(dir, 'calls'), '')
    const pod = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' }, spec: {} })
    const err = await client([]).run(['create', '-f', '-', '-o', 'name'], { stdin: pod }).then(() => undefined, (e: Error & { hint?: string; transient?: boolean }) => e)
    expect(err?.hint).toMatch(/did not answer in time/)
    // Lost, not refused: the executor verifies and tries the step again rather than failing it.
    expect(err?.transient).toBe(true)
    expect(calls().filter((c) => c.startsWith('create'))).toEqual([])
  }, 30_000)
})
