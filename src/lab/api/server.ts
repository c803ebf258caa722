import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { ClusterModel } from '../fleet/cluster.js'
import { issue, type CertAuthority, type IssuedCert } from '../pki/x509.js'
import { parseDuration } from '../../util/duration.js'
import type { Collection, Item } from './collections.js'
import { wantsTable } from './discovery.js'
import { readBody, send, status } from './http.js'
import { route, type WatchReply } from './routes.js'

/**
 * One cluster's kube-apiserver: HTTPS on the cluster's own loopback address with a certificate from the lab CA.
 * Authentication as the real one does it: a bearer token or a client certificate signed by the CA
 * (O=system:masters); a wrong credential is 401; no credential is `system:anonymous`, which may only read
 * /version and the health endpoints. Certificate faults re-issue the serving certificate on the running server.
 */
export interface ApiServerOptions {
  ca: CertAuthority
  token: string
  /** Normal serving-certificate lifetime (topology certificates.validity). */
  certValidityMs: number
  /** Told of every request before it is handled (the lab's recorder watches the writes' responses). */
  onRequest?: (req: IncomingMessage, res: ServerResponse) => void
}

const PUBLIC = /^\/(version|healthz|livez|readyz)(\/|$)/

export class ApiServer {
  private server?: Server
  private watches = new Set<ServerResponse>()
  private certState = ''
  serving?: IssuedCert

  constructor(readonly model: ClusterModel, readonly opts: ApiServerOptions) {}

  get url(): string {
    return `https://${this.model.info.apiAddress}:${this.model.info.apiPort}`
  }

  async start(): Promise<void> {
    const tls = this.tlsOptions()
    this.server = createServer({ ...tls, requestCert: true, rejectUnauthorized: false, ca: this.opts.ca.certPem }, (req, res) => {
      this.handle(req, res).catch((err: Error) => {
        if (!res.headersSent) send(res, status(500, 'InternalError', `lab apiserver: ${err.message}`))
        else res.destroy()
      })
    })
    this.server.on('secureConnection', (s) => s.setNoDelay(true))
    // A fault may change the certificate's validity: re-issue it on the live server (new connections see it).
    this.model.on('faults', () => {
      const next = this.certKey()
      if (next !== this.certState && this.server) this.server.setSecureContext({ ...this.tlsOptions(), ca: this.opts.ca.certPem })
    })
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject)
      this.server!.listen(this.model.info.apiPort, this.model.info.apiAddress, () => {
        this.server!.off('error', reject)
        resolve()
      })
    })
  }

  async stop(): Promise<void> {
    for (const w of this.watches) w.end()
    this.watches.clear()
    const s = this.server
    if (!s) return
    this.server = undefined
    await new Promise<void>((resolve) => {
      s.close(() => resolve())
      s.closeAllConnections()
    })
  }

  private certKey(): string {
    return this.model.hasFault('cert-expired') ? 'expired' : this.model.hasFault('cert-expiring') ? 'expiring' : 'ok'
  }

  private tlsOptions(): { key: string; cert: string } {
    this.certState = this.certKey()
    const now = Date.now()
    const day = 86400_000
    let notBefore = new Date(now - 3600_000)
    let notAfter = new Date(now + this.opts.certValidityMs)
    if (this.certState === 'expired') [notBefore, notAfter] = [new Date(now - 366 * day), new Date(now - day)]
    if (this.certState === 'expiring') notAfter = new Date(now + 10 * day)
    const { apiAddress } = this.model.info
    const clusterIp = this.model.distribution === 'k3s' ? '10.43.0.1' : '10.96.0.1'
    this.serving = issue(this.opts.ca, {
      commonName: 'kube-apiserver', usage: 'server', notBefore, notAfter,
      altNames: [apiAddress, clusterIp, '127.0.0.1', 'localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
    })
    return { key: this.serving.keyPem, cert: this.serving.certPem }
  }

  private authenticate(req: IncomingMessage): 'user' | 'anonymous' | 'invalid' {
    const auth = req.headers.authorization
    if (auth) return auth === `Bearer ${this.opts.token}` ? 'user' : 'invalid'
    const socket = req.socket as TLSSocket
    const cert = socket.getPeerCertificate?.()
    if (cert && Object.keys(cert).length) {
      const groups = ([] as string[]).concat(cert.subject?.O ?? [])
      return socket.authorized && groups.includes('system:masters') ? 'user' : 'invalid'
    }
    return 'anonymous'
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.opts.onRequest?.(req, res)
    const url = new URL(req.url ?? '/', 'https://lab')
    const who = this.authenticate(req)
    if (who === 'invalid') return send(res, status(401, 'Unauthorized', 'Unauthorized'))
    if (who === 'anonymous' && !PUBLIC.test(url.pathname)) {
      return send(res, status(403, 'Forbidden', `forbidden: User "system:anonymous" cannot ${req.method?.toLowerCase()} path "${url.pathname}"`))
    }
    const slow = [...this.model.faults.values()].find((f) => f.fault === 'apiserver-slow')
    if (slow) await sleep(delayOf(slow.params))
    const reply = await route(this.model, {
      method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, accept: req.headers.accept,
      contentType: req.headers['content-type'], body: () => readBody(req),
    })
    if ('watch' in reply) return this.stream(req, res, reply, url.searchParams)
    send(res, reply)
  }

  /** Watches: poll the model and send ADDED / MODIFIED / DELETED for what changed, until timeoutSeconds or close. */
  private stream(req: IncomingMessage, res: ServerResponse, w: WatchReply, q: URLSearchParams): void {
    const { collection, ns, name, select } = w.watch
    const table = wantsTable(req.headers.accept)
    const snapshot = () => {
      const map = new Map<string, { item: Item; json: string }>()
      for (const i of collection.items(collection.namespaced ? ns : undefined)) {
        if ((name && i.name !== name) || !select(i)) continue
        map.set(`${i.namespace ?? ''}/${i.name}`, { item: i, json: JSON.stringify(stable(i.object)) })
      }
      return map
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' })
    this.watches.add(res)
    const emit = (type: string, c: Collection, i: Item) => res.write(`${JSON.stringify({ type, object: table ? c.table([i]) : i.object })}\n`)
    // From the list's resourceVersion on, the client has the current state; otherwise start with ADDED for everything.
    const rv = q.get('resourceVersion')
    let last = snapshot()
    if (!rv || rv === '0' || Number(rv) < this.model.resourceVersion) for (const { item } of last.values()) emit('ADDED', collection, item)
    const timer = setInterval(() => {
      const now = snapshot()
      for (const [k, v] of now) {
        const before = last.get(k)
        if (!before) emit('ADDED', collection, v.item)
        else if (before.json !== v.json) emit('MODIFIED', collection, v.item)
      }
      for (const [k, v] of last) if (!now.has(k)) emit('DELETED', collection, v.item)
      last = now
    }, 200)
    const timeout = Number(q.get('timeoutSeconds')) || 1800
    const end = setTimeout(() => res.end(), timeout * 1000)
    const cleanup = () => {
      clearInterval(timer)
      clearTimeout(end)
      this.watches.delete(res)
    }
    res.on('close', cleanup)
    res.on('finish', cleanup)
  }
}

/** Timestamps that tick on every read (heartbeats) must not count as changes for watches. */
function stable(o: unknown): unknown {
  return JSON.parse(JSON.stringify(o, (k, v) => (k === 'lastHeartbeatTime' || k === 'renewTime' || k === 'resourceVersion' || k === 'finishedAt' ? undefined : v)))
}

export function delayOf(params: Record<string, unknown> | undefined): number {
  const d = params?.delay
  if (typeof d === 'number') return d
  if (typeof d === 'string') return parseDuration(d) ?? 2000
  return 2000
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
