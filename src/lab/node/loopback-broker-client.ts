import { spawn, type ChildProcess } from 'node:child_process'
import { createConnection, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { KupgradeError } from '../../errors.js'
import { PROTOCOL } from './loopback-broker.mjs'

/**
 * A lab process's side of the loopback broker (loopback-broker.mjs): registering starts the broker where none runs
 * and returns once it holds every port, so a node's 127.0.0.1 ports work from the moment its start() resolves; the
 * registration is a connection the broker counts, kept until the process's last node stops (or the process dies).
 */
export class LoopbackBrokerError extends KupgradeError {}

export interface BrokerSpec {
  /** Abstract name of the broker's control socket: one broker per name and network namespace. */
  control: string
  ports: readonly number[]
  /** Where a node's root appears in its mount namespace (namespace.ts NS_ROOT). */
  nsRoot: string
  /** How long the broker stays after its last registration closed. */
  idleMs: number
  /** Bound on one registration: starting a broker, waiting out one that is exiting. */
  timeoutMs?: number
}

const SCRIPT = fileURLToPath(new URL('./loopback-broker.mjs', import.meta.url))

type Greeting =
  | { kind: 'ready'; socket: Socket; pid: number; ports: number[] }
  | { kind: 'error'; message: string }
  /** No broker listens. */
  | { kind: 'refused' }
  /** A broker took the connection and closed it unanswered: it is exiting. */
  | { kind: 'dropped' }

/** Connects to the control socket and reads the broker's one-line greeting. */
function greet(control: string): Promise<Greeting> {
  return new Promise((resolve) => {
    const s = createConnection({ path: `\0${control}` })
    let buf = ''
    let done = false
    const finish = (g: Greeting) => {
      if (done) return
      done = true
      if (g.kind !== 'ready') s.destroy()
      resolve(g)
    }
    s.on('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? { kind: 'refused' } : { kind: 'dropped' }))
    s.on('close', () => finish({ kind: 'dropped' }))
    s.on('data', (d: Buffer) => {
      if (done) return
      buf += d.toString('utf8')
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      const line = buf.slice(0, nl)
      const ready = new RegExp(`^${PROTOCOL} ready pid=(\\d+) ports=([\\d,]+)$`).exec(line)
      if (ready) return finish({ kind: 'ready', socket: s, pid: Number(ready[1]), ports: ready[2]!.split(',').map(Number) })
      const error = line.startsWith(`${PROTOCOL} error `) ? line.slice(PROTOCOL.length + 7) : undefined
      finish({ kind: 'error', message: error ?? `the process on the lab's broker socket @${control} answered ${JSON.stringify(line.slice(0, 80))}, not ${PROTOCOL} (a lab of another kupgrade version?)` })
    })
  })
}

function spawnBroker(spec: BrokerSpec): ChildProcess {
  const args = [SCRIPT, '--control', spec.control, '--ports', spec.ports.join(','), '--ns-root', spec.nsRoot, '--idle-ms', String(spec.idleMs)]
  // Its own session and no inherited output: it outlives this process, and must not hold a test runner's or a
  // terminal's pipes open. stderr is read only until the broker answers (a broker that cannot start says why).
  return spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'], cwd: '/', env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } })
}

/** Registers with the broker of this network namespace, starting one where none runs. */
export async function register(spec: BrokerSpec): Promise<{ socket: Socket; pid: number }> {
  const deadline = Date.now() + (spec.timeoutMs ?? 20_000)
  let child: ChildProcess | undefined
  let exit: { code: number | null; stderr: string } | undefined
  let delay = 5
  try {
    for (;;) {
      const g = await greet(spec.control)
      if (g.kind === 'ready') {
        const missing = spec.ports.filter((p) => !g.ports.includes(p))
        if (missing.length === 0) return { socket: g.socket, pid: g.pid }
        g.socket.destroy()
        throw new LoopbackBrokerError(`the lab's loopback broker (pid ${g.pid}) serves 127.0.0.1 ports ${g.ports.join(', ')} but not ${missing.join(', ')}: it was started by a lab of another kupgrade version`, {
          hint: 'stop the other lab (the broker leaves by itself once no lab uses it), then start this one',
        })
      }
      if (g.kind === 'error') throw new LoopbackBrokerError(g.message, { hint: 'the lab serves every node\'s own 127.0.0.1 ports there (kubelet healthz 10248, kube-proxy 10249/10256, etcd metrics 2381): stop that process, or run the lab in a network namespace of its own (unshare -n, then ip link set lo up)' })
      if (exit && exit.code !== 0) throw new LoopbackBrokerError(`the lab's loopback broker (${SCRIPT}) exited with code ${exit.code}${exit.stderr.trim() ? `: ${exit.stderr.trim()}` : ''}`)
      if (Date.now() > deadline) throw new LoopbackBrokerError(`the lab's loopback broker did not answer on @${spec.control} within ${spec.timeoutMs ?? 20_000} ms`)
      // None runs (or the one that ran is exiting): start one. A broker that loses the race for the control socket
      // to another exits at once (code 0); the next greeting reaches the winner.
      if (g.kind === 'refused' && (!child || exit)) {
        exit = undefined
        const c = (child = spawnBroker(spec))
        let stderr = ''
        c.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')))
        c.on('error', (err) => (exit = { code: -1, stderr: err.message }))
        c.on('exit', (code) => (exit = { code, stderr }))
      }
      await new Promise((r) => setTimeout(r, delay))
      delay = Math.min(delay * 2, 100)
    }
  } finally {
    // The broker lives on by itself; this process neither waits for it nor reads it any more.
    child?.stderr?.destroy()
    child?.unref()
  }
}

/**
 * One registration per process, shared by its nodes: acquired by each node's start, released by its stop; the
 * connection closes with the last. Should the broker die while nodes run (killed: it never leaves while a lab is
 * registered), another is started, so the nodes get their ports back.
 */
export class BrokerRegistration {
  private users = 0
  private current?: Promise<Socket>
  private retry?: NodeJS.Timeout
  /** The pid of the broker this process is registered with. */
  brokerPid?: number

  constructor(private readonly spec: BrokerSpec) {}

  async acquire(): Promise<void> {
    this.users++
    try {
      await this.connection()
    } catch (err) {
      this.release()
      throw err
    }
  }

  release(): void {
    if (this.users === 0 || --this.users > 0) return
    if (this.retry) clearTimeout(this.retry)
    this.retry = undefined
    const c = this.current
    this.current = undefined
    this.brokerPid = undefined
    void c?.then((s) => s.destroy(), () => {})
  }

  private connection(): Promise<Socket> {
    if (this.current) return this.current
    const p: Promise<Socket> = register(this.spec).then(({ socket, pid }) => {
      if (this.current !== p) {
        socket.destroy() // released while registering
        return socket
      }
      this.brokerPid = pid
      socket.unref() // a registration never keeps a process alive
      socket.on('error', () => socket.destroy())
      socket.on('close', () => {
        if (this.current !== p) return
        this.current = undefined
        this.reconnect()
      })
      return socket
    })
    this.current = p
    p.catch(() => {
      if (this.current === p) this.current = undefined
    })
    return p
  }

  private reconnect(): void {
    this.retry = undefined
    if (this.users === 0) return
    this.connection().catch(() => {
      if (this.users === 0) return
      this.retry = setTimeout(() => this.reconnect(), 1000)
      this.retry.unref()
    })
  }
}
