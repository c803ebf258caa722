import { createServer, type Server, type Socket } from 'node:net'
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NS_ROOT } from './namespace.js'
import { BrokerRegistration } from './loopback-broker-client.js'
import { nodeSocketName } from './loopback-broker.mjs'

/**
 * Real sockets for the servers a node runs on well-known ports — kubelet healthz 10248, kube-proxy metrics 10249 and
 * healthz 10256, etcd metrics 2381 — so that any client on the node (real curl, wget, bash /dev/tcp) reaches them, not only a stand-in.
 *
 * Every node shares the host's network namespace, but each node's 127.0.0.1:10249 must be its own. So:
 *  - each node serves its ports on Linux abstract unix sockets (`\0kupgrade-lab/<id>/<port>`, per network namespace,
 *    reachable from any process) and names them in its root (lab/ports);
 *  - one broker per network namespace (loopback-broker.mjs, a process of its own that belongs to no lab) listens on
 *    127.0.0.1:PORT; for each connection it finds the client process from the kernel's socket table, reads that
 *    process's node through its mount namespace and splices the connection to that node's socket. A client that is
 *    in no node (the host) is reset. The first lab process that needs the broker starts it; every lab process
 *    registers while it has nodes (loopback-broker-client.ts), and the broker leaves a few seconds after the last
 *    registration closed — never while one is open, so several labs (test files in parallel, a `kupgrade lab` and a
 *    test) start and stop in any order without a moment in which a node's ports are unserved. A port held by
 *    anything else fails the node's start with the holder's pid and command;
 *  - ports a distribution binds on 0.0.0.0 are also real TCP listeners on the node's own address.
 * Where a server is down (kube-proxy not running) a connection is reset (curl exit 56, where a real node refuses it
 * with exit 7): the broker has accepted it already. Clients should treat both as "down".
 */
export const LOCAL_PORTS = [10248, 10249, 10256, 2381] as const
export type LocalPort = (typeof LOCAL_PORTS)[number]

export type PortHandler = (port: LocalPort, req: IncomingMessage, res: ServerResponse) => void

/** The broker of this network namespace, shared by every lab process (and their versions: the control name is the
 *  contract). It stays 3 s after the last lab left, so consecutive test files reuse it. */
const registration = new BrokerRegistration({ control: 'kupgrade-lab/loopback-broker', ports: LOCAL_PORTS, nsRoot: NS_ROOT, idleMs: 3000 })

/** The servers of one node: abstract sockets for the broker, TCP on the node address for 0.0.0.0 binds. */
export class NodePorts {
  private readonly servers: Server[] = []
  private readonly id: string
  private registered = false

  constructor(
    private readonly opts: {
      root: string
      labDir: string
      address: string
      /** Ports this node's servers bind on 0.0.0.0 (reachable at the node address too). */
      publicPorts: LocalPort[]
      /** Whether the server behind PORT runs now; a connection to a server that does not is reset. */
      up: (port: LocalPort) => boolean
      handle: PortHandler
    },
  ) {
    this.id = createHash('sha256').update(opts.root).digest('hex').slice(0, 20)
  }

  async start(): Promise<void> {
    writeFileSync(join(this.opts.labDir, 'ports'), `${this.id}\n`)
    for (const port of LOCAL_PORTS) {
      const http = createHttpServer((req, res) => this.opts.handle(port, req, res))
      http.keepAliveTimeout = 1000
      http.on('connection', (s: Socket) => {
        // A TCP client (node address) gets a reset; the broker's unix connection is closed unanswered, and the
        // broker resets its client for it.
        if (!this.opts.up(port)) (s.remotePort !== undefined ? s.resetAndDestroy() : s.destroy())
      })
      await listen(http, { path: nodeSocketName(this.id, port) })
      this.servers.push(http)
      if (this.opts.publicPorts.includes(port)) {
        await listen(http, { host: this.opts.address, port }).catch((err: Error) => {
          throw new Error(`lab node at ${this.opts.address}: cannot listen on ${this.opts.address}:${port} (${err.message}); is another node using this address?`)
        })
      }
    }
    await registration.acquire().catch((err: Error) => {
      throw Object.assign(err, { message: `lab node at ${this.opts.address}: cannot serve its 127.0.0.1 ports: ${err.message}` })
    })
    this.registered = true
  }

  async stop(): Promise<void> {
    if (this.registered) registration.release()
    this.registered = false
    await Promise.all(this.servers.splice(0).map((s) => new Promise((r) => s.close(r))))
  }
}

/** `listen` on one more address: an http server listens once, so a further address is a plain TCP server handing
 *  its connections to it (the documented way: emit 'connection'), closed along with it. */
function listen(http: Server, where: { path: string } | { host: string; port: number }): Promise<void> {
  const target = http.listening ? createServer((s) => http.emit('connection', s)) : http
  if (target !== http) http.once('close', () => target.close())
  return new Promise((resolve, reject) => {
    target.once('error', reject)
    target.listen(where, () => {
      target.off('error', reject)
      resolve()
    })
  })
}
