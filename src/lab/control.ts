import { createServer, request, type Server } from 'node:http'
import { rm } from 'node:fs/promises'
import { KupgradeError } from '../errors.js'
import { isFaultName, type FaultSpec } from './faults.js'
import type { Lab, LabStatus } from './lab.js'
import type { LabEvent } from './recorder/types.js'

/**
 * The running lab's control endpoint: HTTP on a Unix socket in the lab directory (only its owner can reach it, and it
 * needs no port). `lab status`, `lab events`, `lab fault add|clear|list` and `lab down` talk to it; lab.json records its path.
 */
export interface FaultRequest {
  action: 'add' | 'clear'
  fault: string
  cluster: string
  node?: string
  params?: Record<string, unknown>
}

export async function serveControl(lab: Lab, socketPath: string, onShutdown: () => void): Promise<Server> {
  await rm(socketPath, { force: true })
  const server = createServer((req, res) => {
    const reply = (code: number, body: unknown) => {
      res.writeHead(code, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      try {
        if (req.method === 'GET' && req.url === '/status') return reply(200, lab.status())
        if (req.method === 'GET' && req.url?.startsWith('/events')) return reply(200, eventsReply(lab, new URL(req.url, 'http://lab').searchParams))
        if (req.method === 'POST' && req.url === '/shutdown') {
          reply(200, { ok: true })
          return setImmediate(onShutdown)
        }
        if (req.method === 'POST' && req.url === '/faults') {
          const r = JSON.parse(Buffer.concat(chunks).toString('utf8')) as FaultRequest
          if (!isFaultName(r.fault)) return reply(400, { error: `unknown fault ${JSON.stringify(r.fault)}` })
          const spec: FaultSpec = { fault: r.fault, cluster: r.cluster, ...(r.node ? { node: r.node } : {}), ...(r.params ? { params: r.params } : {}) }
          if (r.action === 'add') {
            lab.setFault(spec, true)
            return reply(200, { ok: true, changed: true })
          }
          return reply(200, { ok: true, changed: lab.clearFault(spec) })
        }
        reply(404, { error: `no such control request: ${req.method} ${req.url}` })
      } catch (err) {
        reply(400, { error: (err as Error).message })
      }
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(socketPath, () => resolve())
  })
  return server
}

/** `GET /events?since=ISO&cluster=NAME&afterSeq=N`: the recorder's events, oldest first. */
function eventsReply(lab: Lab, q: URLSearchParams): { events: LabEvent[]; dropped: number } {
  const since = q.get('since')
  const afterSeq = q.get('afterSeq')
  const cluster = q.get('cluster')
  if (since && Number.isNaN(Date.parse(since))) throw new Error(`since must be a time, not ${JSON.stringify(since)}`)
  return {
    events: lab.recorder.events({ ...(since ? { since: new Date(since) } : {}), ...(afterSeq ? { afterSeq: Number(afterSeq) } : {}), ...(cluster ? { cluster } : {}) }),
    dropped: lab.recorder.dropped,
  }
}

/** One request to a running lab; a missing or dead socket becomes a KupgradeError that says how to start one. */
export function controlRequest<T>(socketPath: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body)
    const req = request({ socketPath, method, path, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {}, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as T & { error?: string }
        if ((res.statusCode ?? 500) >= 400) reject(new KupgradeError(parsed.error ?? `lab control request failed (${res.statusCode})`))
        else resolve(parsed)
      })
    })
    req.on('timeout', () => req.destroy(new Error('timed out after 10s')))
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(new KupgradeError(`cannot reach the lab at ${socketPath}: ${err.code ?? err.message}`, { hint: 'is it running? start it with `kupgrade lab up --dir DIR --detach`' }))
    })
    if (data) req.write(data)
    req.end()
  })
}

export type { LabStatus }
