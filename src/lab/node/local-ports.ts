import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createHash } from 'node:crypto'
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NS_ROOT } from './namespace.js'

/**
 * Real sockets for the servers a node runs on well-known ports — kubelet healthz 10248, kube-proxy metrics 10249 and
 * healthz 10256, etcd metrics 2381 — so that any client on the node (real curl, wget, bash /dev/tcp) reaches them, not only a stand-in.
 *
 * Every node shares the host's network namespace, but each node's 127.0.0.1:10249 must be its own. So:
 *  - each node serves its ports on Linux abstract unix sockets (`\0kupgrade-lab/<id>/<port>`, per network namespace,
 *    reachable from any lab process) and names them in its root (lab/ports);
 *  - one process-wide broker listens on 127.0.0.1:PORT; for each connection it finds the client process from the
 *    kernel's socket table (/proc/net/tcp → socket inode → /proc/PID/fd), reads that process's node through its own
 *    mount namespace (/proc/PID/root/mnt/lab/ports) and splices the connection to that node's socket. A client
 *    that is in no node (the host) is reset. If another lab process holds the port, this one retries until it frees;
 *  - ports a distribution binds on 0.0.0.0 are also real TCP listeners on the node's own address.
 * Where a server is down (kube-proxy not running) a connection is reset (curl exit 56, where a real node refuses it
 * with exit 7): the broker has accepted it already. Clients should treat both as "down".
 */
export const LOCAL_PORTS = [10248, 10249, 10256, 2381] as const
export type LocalPort = (typeof LOCAL_PORTS)[number]

export type PortHandler = (port: LocalPort, req: IncomingMessage, res: ServerResponse) => void

const abstractName = (id: string, port: number): string => `\0kupgrade-lab/${id}/${port}`

/** The servers of one node: abstract sockets for the broker, TCP on the node address for 0.0.0.0 binds. */
export class NodePorts {
  private readonly servers: Server[] = []
  private readonly id: string

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
      await listen(http, { path: abstractName(this.id, port) })
      this.servers.push(http)
      if (this.opts.publicPorts.includes(port)) {
        await listen(http, { host: this.opts.address, port }).catch((err: Error) => {
          throw new Error(`lab node at ${this.opts.address}: cannot listen on ${this.opts.address}:${port} (${err.message}); is another node using this address?`)
        })
      }
    }
    broker.register()
  }

  async stop(): Promise<void> {
    broker.unregister()
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

// ---------------------------------------------------------------- the process-wide broker on 127.0.0.1

const hexPort = (p: number): string => p.toString(16).toUpperCase().padStart(4, '0')
const LOOPBACK_HEX = '0100007F'

/** The inode of the client's socket: the /proc/net/tcp row whose local end is the peer and remote end the port. */
function peerInode(peerPort: number, port: number): string | undefined {
  const want = `${LOOPBACK_HEX}:${hexPort(peerPort)} ${LOOPBACK_HEX}:${hexPort(port)}`
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/)
    if (`${f[1]} ${f[2]}` === want) return f[9]
  }
  return undefined
}

/** The process holding a socket inode; newest processes first (the client has just connected). */
function pidOfInode(inode: string): number | undefined {
  const link = `socket:[${inode}]`
  const pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).sort((a, b) => b - a)
  for (const pid of pids) {
    let fds: string[]
    try {
      fds = readdirSync(`/proc/${pid}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === link) return pid
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined
}

/** The node a process runs in: its mount namespace shows the node root at NS_ROOT. */
function nodeIdOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/root${NS_ROOT}/lab/ports`, 'utf8').trim() || undefined
  } catch {
    return undefined
  }
}

class LoopbackBroker {
  private users = 0
  private readonly held = new Map<number, Server>()
  private retry?: NodeJS.Timeout

  register(): void {
    if (this.users++ === 0) this.bindAll()
  }

  unregister(): void {
    if (--this.users > 0) return
    this.users = 0
    if (this.retry) clearTimeout(this.retry)
    this.retry = undefined
    for (const s of this.held.values()) s.close()
    this.held.clear()
  }

  private bindAll(): void {
    this.retry = undefined
    if (this.users === 0) return
    let missing = false
    for (const port of LOCAL_PORTS) {
      if (this.held.has(port)) continue
      missing = true
      const s = createServer((c) => this.relay(port, c))
      s.on('error', () => {
        this.held.delete(port)
        this.later()
      })
      s.listen({ host: '127.0.0.1', port }, () => {
        if (this.users === 0) return void s.close()
        this.held.set(port, s)
      })
      this.held.set(port, s)
    }
    if (missing) this.later()
  }

  /** Another lab process (or anything else) may hold a port: keep trying, so the port is served once it frees. */
  private later(): void {
    if (this.retry || this.users === 0) return
    this.retry = setTimeout(() => this.bindAll(), 250)
    this.retry.unref()
  }

  private relay(port: number, client: Socket): void {
    client.on('error', () => client.destroy())
    const pid = client.remotePort !== undefined ? (() => {
      const inode = peerInode(client.remotePort!, port)
      return inode ? pidOfInode(inode) : undefined
    })() : undefined
    const id = pid !== undefined ? nodeIdOf(pid) : undefined
    if (!id) return void client.resetAndDestroy()
    const upstream = createConnection({ path: abstractName(id, port) })
    upstream.on('error', () => client.resetAndDestroy())
    client.on('close', () => upstream.destroy())
    let answered = false
    upstream.once('data', () => (answered = true))
    upstream.on('close', (hadError) => (hadError || !answered ? client.resetAndDestroy() : client.end()))
    client.pipe(upstream)
    upstream.pipe(client)
  }
}

const broker = new LoopbackBroker()
