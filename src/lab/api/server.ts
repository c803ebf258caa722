import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { ClusterModel } from '../fleet/cluster.js'
import { issue, type CertAuthority, type IssuedCert } from '../pki/x509.js'
import { authenticateBootstrapToken } from '../fleet/bootstrap-tokens.js'
import { parseDuration } from '../../util/duration.js'
import { ControlPlaneBalancer } from './control-plane-balancer.js'
import { readBody, send, status } from './http.js'
import { route } from './routes.js'
import { serveWatch } from './watch.js'

/**
 * One cluster's kube-apiserver: HTTPS on the cluster's own loopback address with a certificate from the lab CA.
 * Authentication as the real one does it: a bearer token or a client certificate signed by the CA
 * (O=system:masters); a wrong credential is 401; no credential is `system:anonymous`, which may only read
 * /version and the health endpoints. Certificate faults re-issue the serving certificate on the running server.
 * The address is a load balancer in front of the control-plane nodes' apiservers: it refuses connections while no
 * control-plane node serves, and a node that stops serving takes its connections with it.
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
/** What kubeadm's RBAC lets a bootstrap token read while joining (kubeadm:get-nodes, the kubeadm-config, kubelet-config
 *  and kube-proxy ConfigMaps' Roles, cluster-info, kubeadm-certs), plus discovery. */
const BOOTSTRAP_READS = [
  /^\/(version|api|api\/v1|apis|openapi\/v[23].*)$/, /^\/apis\/[^/]+(\/[^/]+)?$/, /^\/api\/v1\/nodes(\/[^/]+)?$/,
  /^\/api\/v1\/namespaces\/kube-system\/configmaps\/(kubeadm-config|kubelet-config|kube-proxy)$/,
  /^\/api\/v1\/namespaces\/kube-public\/configmaps\/cluster-info$/,
  // kubeadm:kubeadm-certs, the Role `kubeadm init phase upload-certs` binds to the bootstrappers: a joining control
  // plane downloads the shared certificates with its token.
  /^\/api\/v1\/namespaces\/kube-system\/secrets\/kubeadm-certs$/,
]

export class ApiServer {
  private server?: Server
  private watches = new Set<ServerResponse>()
  private transition: Promise<void> = Promise.resolve()
  private readonly balancer: ControlPlaneBalancer
  private certState = ''
  serving?: IssuedCert

  constructor(readonly model: ClusterModel, readonly opts: ApiServerOptions) {
    this.balancer = new ControlPlaneBalancer(model)
  }

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
    this.server.on('connection', (s: Socket) => this.balancer.assign(s))
    // A fault may change the certificate's validity: re-issue it on the live server (new connections see it).
    this.model.on('faults', () => {
      const next = this.certKey()
      if (next !== this.certState && this.server) this.server.setSecureContext({ ...this.tlsOptions(), ca: this.opts.ca.certPem })
    })
    // The API address follows the control plane (api/control-plane-balancer.ts).
    this.model.on('apiservers', () => void this.followControlPlane())
    if (this.balancer.serving().length) await this.listen()
  }

  /** Listen while some control-plane node serves the API; refuse connections (nothing listens) while none does. */
  private followControlPlane(): Promise<void> {
    this.transition = this.transition.then(async () => {
      if (!this.server) return
      const serving = this.balancer.dropUnserved()
      if (!serving && this.server.listening) this.server.close()
      else if (serving && !this.server.listening) await this.listen().catch(() => undefined)
    })
    return this.transition
  }

  private listen(): Promise<void> {
    const server = this.server!
    return new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.model.info.apiPort, this.model.info.apiAddress, () => {
        server.off('error', reject)
        resolve()
      })
    })
  }

  /** Registers a watch stream (so stop() ends it); returns its removal. */
  private track(res: ServerResponse): () => void {
    this.watches.add(res)
    return () => this.watches.delete(res)
  }

  async stop(): Promise<void> {
    for (const w of this.watches) w.end()
    this.watches.clear()
    const s = this.server
    if (!s) return
    this.server = undefined
    await this.transition
    this.balancer.dropAll()
    await new Promise<void>((resolve) => {
      s.close(() => resolve())
      s.closeAllConnections()
    })
  }

  private certKey(): string {
    return this.model.servingCertFault('cert-expired') ? 'expired' : this.model.servingCertFault('cert-expiring') ? 'expiring' : 'ok'
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

  private authenticate(req: IncomingMessage): 'user' | 'anonymous' | 'invalid' | { bootstrap: string } {
    const auth = req.headers.authorization
    if (auth === `Bearer ${this.opts.token}`) return 'user'
    if (auth) {
      // The bootstrap-token authenticator (kubeadm and k0s join with one): user system:bootstrap:<id>.
      const id = auth.startsWith('Bearer ') ? authenticateBootstrapToken(this.model, auth.slice('Bearer '.length)) : undefined
      return id ? { bootstrap: id } : 'invalid'
    }
    const socket = req.socket as TLSSocket
    const cert = socket.getPeerCertificate?.()
    if (cert && Object.keys(cert).length) {
      const groups = ([] as string[]).concat(cert.subject?.O ?? [])
      return socket.authorized && groups.includes('system:masters') ? 'user' : 'invalid'
    }
    return 'anonymous'
  }

  /**
   * The fault of this kind that names the request (`method`, `path` prefix; every request when neither), if any. With
   * `requests` it names the next N such requests only (a blip in the middle of one chosen write), else all of them
   * while it is on.
   */
  private faultFor(fault: 'apiserver-unavailable' | 'apiserver-slow', method: string, path: string): { params?: Record<string, unknown> } | undefined {
    for (const f of this.model.faults.values()) {
      if (f.fault !== fault) continue
      const p = f.params ?? {}
      if (typeof p['method'] === 'string' && p['method'].toUpperCase() !== method) continue
      if (typeof p['path'] === 'string' && !path.startsWith(p['path'])) continue
      if (p['requests'] === undefined) return f
      const left = Number(p['requests'])
      if (!(left > 0)) continue
      f.params = { ...p, requests: left - 1 }
      return f
    }
    return undefined
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.opts.onRequest?.(req, res)
    const url = new URL(req.url ?? '/', 'https://lab')
    // In front of everything, as a load balancer with no healthy apiserver behind it answers. No Retry-After header,
    // so client-go does not retry it by itself.
    if (this.faultFor('apiserver-unavailable', req.method ?? 'GET', url.pathname)) return send(res, status(503, 'ServiceUnavailable', 'the server is currently unable to handle the request'))
    const who = this.authenticate(req)
    if (who === 'invalid') return send(res, status(401, 'Unauthorized', 'Unauthorized'))
    // kubeadm's RBAC lets anyone read kube-public/cluster-info (how `kubeadm join` discovers the cluster).
    const clusterInfo = this.model.distribution === 'kubeadm' && req.method === 'GET' && url.pathname === '/api/v1/namespaces/kube-public/configmaps/cluster-info'
    if (who === 'anonymous' && !PUBLIC.test(url.pathname) && !clusterInfo) {
      return send(res, status(403, 'Forbidden', `forbidden: User "system:anonymous" cannot ${req.method?.toLowerCase()} path "${url.pathname}"`))
    }
    // A bootstrap token reads what joining needs (kubeadm's bootstrap RBAC: nodes, kubeadm-config, kubelet-config);
    // it changes nothing (its CSR, the one write it may make, is the TLS bootstrap the lab does not simulate).
    if (typeof who === 'object' && (req.method !== 'GET' || !BOOTSTRAP_READS.some((r) => r.test(url.pathname)))) {
      return send(res, status(403, 'Forbidden', `forbidden: User "system:bootstrap:${who.bootstrap}" cannot ${req.method?.toLowerCase()} path "${url.pathname}"`))
    }
    const slow = this.faultFor('apiserver-slow', req.method ?? 'GET', url.pathname)
    // answer: timeout: the request is carried out, and only its answer is late, as when it outlives kube-apiserver's
    // request deadline while storage goes on (the finisher's `apierrors.NewTimeoutError(…, 0)`: 504, no Retry-After).
    const timesOut = slow?.params?.['answer'] === 'timeout'
    if (slow && !timesOut) await sleep(delayOf(slow.params))
    const reply = await route(this.model, {
      method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, accept: req.headers.accept,
      contentType: req.headers['content-type'], body: () => readBody(req),
    })
    if ('watch' in reply) return serveWatch(this.model, req, res, reply.watch, url.searchParams, (r) => this.track(r))
    if (timesOut) {
      await sleep(delayOf(slow.params))
      return send(res, status(504, 'Timeout', 'Timeout: request did not complete within requested timeout - context deadline exceeded', {}))
    }
    send(res, reply)
  }

}

export function delayOf(params: Record<string, unknown> | undefined): number {
  const d = params?.delay
  if (typeof d === 'number') return d
  if (typeof d === 'string') return parseDuration(d) ?? 2000
  return 2000
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
