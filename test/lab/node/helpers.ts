import { afterAll } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import ssh2 from 'ssh2'
import { LabNode, generateEd25519KeyPair } from '../../../src/lab/node/index.js'
import type { LabNodeOptions } from '../../../src/lab/node/index.js'

const { Client } = ssh2

/** One client key pair for a whole test file. */
export const clientKey = generateEd25519KeyPair()

let nextAddress = 1 + Math.floor(Math.random() * 200)
/**
 * A fresh loopback address per node. Lab and e2e tests pin their own /24s under 127.0, so these live under 127.1+:
 * the second octet is the vitest worker (two files running at once never share a /24) and the third varies with the
 * file's process, so a node an earlier file left behind is unlikely to hold the next file's address.
 */
export function freshAddress(): string {
  const n = nextAddress++
  const worker = Number(process.env.VITEST_POOL_ID ?? 0)
  return `127.${1 + (worker % 250)}.${process.pid % 250}.${(n % 250) + 1}`
}

export interface TestNode {
  node: LabNode
  dir: string
  cleanup: () => Promise<void>
}

export async function startNode(over: Partial<LabNodeOptions> = {}): Promise<TestNode> {
  const dir = mkdtempSync(join(tmpdir(), 'kupgrade-labnode-'))
  const node = new LabNode({
    cluster: 'staging',
    name: 'cp-1',
    role: 'control-plane',
    distribution: 'k3s',
    address: freshAddress(),
    port: 2222,
    os: 'ubuntu-22.04',
    iptablesBackend: 'nf_tables',
    disk: { totalBytes: 40 * 2 ** 30, usedBytes: 10 * 2 ** 30 },
    rootDir: join(dir, 'root'),
    version: 'v1.29.2+k3s1',
    mirror: ['v1.29.2+k3s1', 'v1.30.4+k3s1'],
    timing: { serviceStartMs: 150, rebootMs: 400, kubeProxySyncMs: 100 },
    authorizedKeys: [Buffer.from(clientKey.public)],
    apiEndpoint: 'https://127.0.10.1:6443',
    ...over,
  })
  try {
    await node.start()
  } catch (err) {
    await node.stop()
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  return {
    node,
    dir,
    cleanup: async () => {
      await node.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface ExecResult {
  stdout: string
  stderr: string
  code: number | null
  signal?: string
}

/** Connects (bounded by readyTimeout), runs one command, closes. */
export function sshExec(node: LabNode, command: string, opts: { user?: string; stdin?: string; privateKey?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const c = new Client()
    const timer = setTimeout(() => {
      c.end()
      reject(new Error(`ssh exec timed out: ${command}`))
    }, opts.timeoutMs ?? 30_000)
    c.on('ready', () => {
      c.exec(command, (err, stream) => {
        if (err) return reject(err)
        let stdout = ''
        let stderr = ''
        let code: number | null = null
        let signal: string | undefined
        stream.on('data', (d: Buffer) => (stdout += d.toString()))
        stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
        stream.on('exit', (c1: number | null, s?: string) => {
          code = c1
          signal = s ?? undefined
        })
        stream.on('close', () => {
          clearTimeout(timer)
          c.end()
          resolve({ stdout, stderr, code, ...(signal ? { signal } : {}) })
        })
        if (opts.stdin !== undefined) stream.end(opts.stdin)
        else stream.end()
      })
    })
    c.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    c.connect({
      host: node.options.address,
      port: node.options.port,
      username: opts.user ?? 'root',
      privateKey: opts.privateKey ?? clientKey.private,
      readyTimeout: 10_000,
      hostVerifier: (key: Buffer) => `ssh-ed25519 ${key.toString('base64')}` === node.hostKeyPublic,
    })
    c.setNoDelay(true)
  })
}

/** Polls until `check` returns a value (not undefined/false), failing after `timeoutMs`: every wait is bounded. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** Collects a node's events so a test can wait for one (bounded) or assert none happened. */
export function recordEvents(node: LabNode): { list: { name: string; data: Record<string, unknown> }[]; next: (name: string, match?: (d: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>> } {
  const list: { name: string; data: Record<string, unknown> }[] = []
  for (const name of ['service', 'installed', 'reboot', 'upgrade-applied'] as const)
    node.on(name, (data: object) => list.push({ name, data: data as Record<string, unknown> }))
  // Each event is handed out once, oldest first, so a test reads events in the order they happened per name.
  const used = new Set<number>()
  return {
    list,
    next: (name, match = () => true) =>
      waitFor(`event ${name}`, () => {
        const i = list.findIndex((e, k) => !used.has(k) && e.name === name && match(e.data))
        if (i < 0) return undefined
        used.add(i)
        return list[i]!.data
      }),
  }
}

/** A `startNode` for one test file whose nodes are all cleaned up after the file's tests. */
export function nodesForThisFile(): (o?: Parameters<typeof startNode>[0]) => Promise<TestNode> {
  const started: TestNode[] = []
  afterAll(async () => {
    for (const t of started) await t.cleanup()
  })
  return async (o) => {
    const t = await startNode(o)
    started.push(t)
    return t
  }
}
