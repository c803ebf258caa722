// @ts-check
/**
 * The lab's loopback broker: the one process of a network namespace that listens on 127.0.0.1:PORT for the ports
 * every node has of its own (kubelet healthz 10248, kube-proxy 10249/10256, etcd metrics 2381; see local-ports.ts).
 *
 * It belongs to no lab process, so no lab's start or stop ever leaves those ports unserved:
 *  - whichever lab process needs it first starts it (detached, in its own session) and every lab process registers
 *    by holding a connection to its control socket, the abstract unix socket `\0NAME`. Abstract names are per network
 *    namespace and vanish with their process, so binding it is the lock that lets exactly one broker run (a broker
 *    that loses the bind exits at once) and never goes stale;
 *  - it exits IDLE_MS after its last registration closed (a lab stopped, or died: the kernel closes its socket), and
 *    only then: the exit closes the control socket first, in the same turn of the event loop that found no
 *    registration, so a lab that connects at that moment is refused or dropped before the broker's greeting and
 *    starts the next broker; a lab whose greeting it read is never left without one;
 *  - for each TCP connection it finds the client process from the kernel's socket table (/proc/net/tcp → socket
 *    inode → /proc/PID/fd), reads that process's node through its mount namespace (/proc/PID/root NS_ROOT/lab/ports)
 *    and splices the connection to that node's abstract socket `\0kupgrade-lab/<id>/<port>`, served by whichever lab
 *    process runs the node. A client in no node (the host) is reset, and so is one whose node's server is down.
 *
 * Plain JavaScript with no imports but Node's, because it runs as its own process both from the build (dist/) and
 * from the sources under test (vitest), where no TypeScript loader is available to a child process.
 *
 * Usage: node loopback-broker.mjs --control NAME --ports 10248,10249 --ns-root /mnt --idle-ms 3000
 * Greeting on the control socket, one line: `PROTOCOL ready pid=PID ports=P,P` or `PROTOCOL error MESSAGE`.
 */
import { createConnection, createServer } from 'node:net'
import { readFileSync, readdirSync, readlinkSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

export const PROTOCOL = 'kupgrade-lab-broker/1'

/** The abstract socket on which a node serves PORT (the broker splices to it). @param {string} id @param {number} port */
export const nodeSocketName = (id, port) => `\0kupgrade-lab/${id}/${port}`

/** How long a new broker waits for its first registration (whoever started it polls for it) before leaving. */
const STARTUP_GRACE_MS = 2000

/** How long a port held by an exiting broker (or a process this user cannot see) is waited for. */
const BIND_PATIENCE_MS = 5000

// ---------------------------------------------------------------- who is who, from /proc

/** @param {number} p */
const hexPort = (p) => p.toString(16).toUpperCase().padStart(4, '0')
const LOOPBACK_HEX = '0100007F'

/** The rows of /proc/net/tcp (and tcp6) as split fields. @param {string} file @returns {string[][]} */
function socketTable(file) {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((f) => f.length > 9)
  } catch {
    return []
  }
}

/** The inode of the client's socket: the row whose local end is the peer and remote end the port.
 *  @param {number} peerPort @param {number} port */
function peerInode(peerPort, port) {
  const local = `${LOOPBACK_HEX}:${hexPort(peerPort)}`
  const remote = `${LOOPBACK_HEX}:${hexPort(port)}`
  return socketTable('/proc/net/tcp').find((f) => f[1] === local && f[2] === remote)?.[9]
}

/** The process holding a socket inode; newest processes first (a client has just connected). @param {string} inode */
function pidOfInode(inode) {
  const link = `socket:[${inode}]`
  const pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).sort((a, b) => b - a)
  for (const pid of pids) {
    /** @type {string[]} */
    let fds
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

/** The node a process runs in: its mount namespace shows the node root at nsRoot. @param {number} pid @param {string} nsRoot */
function nodeIdOf(pid, nsRoot) {
  try {
    return readFileSync(`/proc/${pid}/root${nsRoot}/lab/ports`, 'utf8').trim() || undefined
  } catch {
    return undefined
  }
}

/** @param {number} pid */
function commandOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ')
  } catch {
    return ''
  }
}

/** Who listens where 127.0.0.1:PORT would: 127.0.0.1, 0.0.0.0 or [::] (dual-stack).
 *  @param {number} port @returns {{ pid?: number, command: string } | undefined} */
export function portHolder(port) {
  const ends = new Set([`${LOOPBACK_HEX}:${hexPort(port)}`, `00000000:${hexPort(port)}`, `${'0'.repeat(32)}:${hexPort(port)}`])
  const row = [...socketTable('/proc/net/tcp'), ...socketTable('/proc/net/tcp6')].find((f) => f[3] === '0A' && ends.has(f[1] ?? ''))
  if (!row) return undefined
  const pid = pidOfInode(row[9] ?? '')
  return pid === undefined ? { command: '' } : { pid, command: commandOf(pid) }
}

const isBroker = (/** @type {string} */ command) => /loopback-broker\.mjs/.test(command)

// ---------------------------------------------------------------- the broker

/** @param {import('node:net').Socket} client @param {number} port @param {string} nsRoot */
function relay(client, port, nsRoot) {
  client.on('error', () => client.destroy())
  const inode = client.remotePort !== undefined ? peerInode(client.remotePort, port) : undefined
  const pid = inode ? pidOfInode(inode) : undefined
  const id = pid !== undefined ? nodeIdOf(pid, nsRoot) : undefined
  if (!id) return void client.resetAndDestroy()
  const upstream = createConnection({ path: nodeSocketName(id, port) })
  upstream.on('error', () => client.resetAndDestroy())
  client.on('close', () => upstream.destroy())
  // A node whose server is down closes the connection unanswered: the client is reset, as far as a broker that has
  // accepted already can refuse it.
  let answered = false
  upstream.once('data', () => (answered = true))
  upstream.on('close', (hadError) => (hadError || !answered ? client.resetAndDestroy() : client.end()))
  client.pipe(upstream)
  // Not ended by the pipe: when the node's side closes, the handler above decides between reset and end. A pipe
  // that ends the client first sends its FIN ahead of the reset, and an unanswered client then sees an empty reply
  // (curl 52) instead of a reset connection (56), depending on which went out first.
  upstream.pipe(client, { end: false })
}

/** @param {{ control: string, ports: number[], nsRoot: string, idleMs: number }} o */
function run(o) {
  /** @type {{ kind: 'binding' } | { kind: 'ready' } | { kind: 'failed', message: string }} */
  let state = { kind: 'binding' }
  /** @type {Set<import('node:net').Socket>} */
  const registrations = new Set()
  /** @type {NodeJS.Timeout | undefined} */
  let idle

  const greet = (/** @type {import('node:net').Socket} */ s) => {
    if (state.kind === 'ready') s.write(`${PROTOCOL} ready pid=${process.pid} ports=${o.ports.join(',')}\n`)
    else if (state.kind === 'failed') s.end(`${PROTOCOL} error ${state.message.replace(/\n/g, ' ')}\n`)
  }
  // No registration for idleMs: leave. Closing the control socket first, in this same turn, is what makes the
  // hand-over to a next broker safe (see the header).
  const armIdle = (ms = o.idleMs) => {
    if (idle) clearTimeout(idle)
    idle = setTimeout(() => {
      if (registrations.size > 0) return
      control.close()
      process.exit(0)
    }, ms)
  }

  const control = createServer((s) => {
    registrations.add(s)
    if (idle) clearTimeout(idle)
    idle = undefined
    s.on('error', () => s.destroy())
    s.on('data', () => {}) // registrations say nothing; keep the stream flowing
    s.on('close', () => {
      registrations.delete(s)
      if (registrations.size === 0) armIdle()
    })
    greet(s)
  })
  control.on('error', (err) => {
    // Another broker holds the name: it serves this network namespace; this one is not needed.
    if (/** @type {NodeJS.ErrnoException} */ (err).code === 'EADDRINUSE') process.exit(0)
    process.stderr.write(`lab loopback broker: cannot listen on its control socket: ${err.message}\n`)
    process.exit(1)
  })
  control.listen({ path: `\0${o.control}` }, () => {
    // The lab that started this broker connects only once it sees the socket: give it time to.
    armIdle(Math.max(o.idleMs, STARTUP_GRACE_MS))
    bindPorts(o, (message) => {
      state = message === undefined ? { kind: 'ready' } : { kind: 'failed', message }
      for (const s of registrations) greet(s)
    })
  })
}

/** Listens on 127.0.0.1:PORT for every port, waiting out a broker that is exiting; fails at once where the holder
 *  is something else. @param {{ ports: number[], nsRoot: string }} o @param {(error?: string) => void} done */
function bindPorts(o, done) {
  const deadline = Date.now() + BIND_PATIENCE_MS
  let pending = o.ports.length
  let failed = false
  const one = (/** @type {number} */ port) => {
    const server = createServer((c) => relay(c, port, o.nsRoot))
    server.once('error', (err) => {
      if (failed) return
      const code = /** @type {NodeJS.ErrnoException} */ (err).code
      const holder = code === 'EADDRINUSE' ? portHolder(port) : undefined
      const foreign = holder?.pid !== undefined && !isBroker(holder.command)
      if (code === 'EADDRINUSE' && !foreign && Date.now() < deadline) return void setTimeout(() => one(port), 25)
      failed = true
      done(code !== 'EADDRINUSE'
        ? `cannot listen on 127.0.0.1:${port}: ${err.message}`
        : `127.0.0.1:${port} is in use by ${holder?.pid !== undefined ? `pid ${holder.pid} (${holder.command || '?'})` : 'a process this user cannot see'}, not by a kupgrade lab's loopback broker`)
    })
    server.listen({ host: '127.0.0.1', port }, () => {
      if (--pending === 0 && !failed) done()
    })
  }
  for (const port of o.ports) one(port)
}

// Run as a program (not when local-ports.ts imports the names above).
if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  // The lab process that started this one may be gone: nothing to print to, nothing to die of.
  process.stderr.on('error', () => {})
  const { values } = parseArgs({ options: { control: { type: 'string' }, ports: { type: 'string' }, 'ns-root': { type: 'string' }, 'idle-ms': { type: 'string' } } })
  const ports = (values.ports ?? '').split(',').filter(Boolean).map(Number)
  if (!values.control || ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535) || !values['ns-root']) {
    process.stderr.write('usage: loopback-broker.mjs --control NAME --ports P,P --ns-root DIR [--idle-ms MS]\n')
    process.exit(2)
  }
  run({ control: values.control, ports, nsRoot: values['ns-root'], idleMs: Number(values['idle-ms'] ?? 3000) })
}
