import { EventEmitter } from 'node:events'
import { Readable, Writable } from 'node:stream'
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * A command running on a lab node, forked by the lab's spawner process (node-spawner.mjs), not by the lab itself.
 *
 * Why: Linux shares the CPU between sessions first (autogroups). Spawned in sessions of their own, as before, every
 * running node command weighed as much as the whole lab process (its apiservers and sshds) and as the kupgrade run
 * under test: with a 50-node gate running (~100 node commands at once) the lab's main thread spent ~90 % of its time
 * waiting for a CPU, TLS handshakes with the lab's apiserver took over 10 s and kubectl gave up ("net/http: TLS
 * handshake timeout"), so a 50-node apply lost its run lock. Spawning on the lab's main thread instead blocked it
 * 40–130 ms per command (the fork waits for the child's exec). On a real fleet each node's commands run on that
 * node's CPUs and never slow the apiserver; here the fleet's commands all run in the spawner's one session, so the
 * fleet as a whole gets a fair share beside the lab, and the lab's thread is never the one that forks.
 *
 * The object behaves as the lab's callers used ChildProcess: stdin/stdout/stderr streams, `pid` (once forked),
 * `exitCode`/`signalCode`, 'error' and 'close' (after stdout and stderr ended, as ChildProcess does).
 */
export class NodeProcess extends EventEmitter {
  pid: number | undefined
  exitCode: number | null = null
  signalCode: NodeJS.Signals | null = null
  readonly stdout = new Readable({ read() {} })
  readonly stderr = new Readable({ read() {} })
  readonly stdin: Writable
  private done = false
  /** A signal asked for before the fork was confirmed: sent as soon as the pid is known. */
  private pendingSignal?: NodeJS.Signals

  constructor(private readonly post: (m: object) => void, readonly id: number) {
    super()
    this.stdin = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        if (!this.done) this.post({ op: 'stdin', id, data: chunk })
        cb()
      },
      final: (cb) => {
        if (!this.done) this.post({ op: 'stdin-end', id })
        cb()
      },
    })
    this.stdin.on('error', () => undefined)
  }

  /** Signals the command's whole process group (it leads one); nothing once it has exited. */
  killGroup(signal: NodeJS.Signals): void {
    if (this.done) return
    if (this.pid === undefined) return void (this.pendingSignal = signal)
    try {
      process.kill(-this.pid, signal)
    } catch {
      // No such group: the command has not made its own yet (it does so first thing) or has exited.
      try {
        process.kill(this.pid, signal)
      } catch {
        // already exited
      }
    }
  }

  /** @internal the pool's messages about this command. */
  receive(m: { op: string; pid?: number; fd?: number; data?: Uint8Array; message?: string; code?: number | string | null; signal?: NodeJS.Signals | null }): void {
    if (m.op === 'spawned') {
      this.pid = m.pid
      this.emit('spawn')
      if (this.pendingSignal) this.killGroup(this.pendingSignal)
    } else if (m.op === 'out') {
      ;(m.fd === 2 ? this.stderr : this.stdout).push(Buffer.from(m.data!.buffer, m.data!.byteOffset, m.data!.byteLength))
    } else if (m.op === 'error') {
      this.emit('error', Object.assign(new Error(m.message ?? 'spawn failed'), m.code ? { code: m.code } : {}))
    } else if (m.op === 'close') {
      this.finish(typeof m.code === 'number' ? m.code : null, m.signal ?? null)
    }
  }

  /** @internal exit: the streams end, then 'exit' and — once both streams ended — 'close'. */
  finish(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.done) return
    this.done = true
    this.exitCode = code
    this.signalCode = signal
    let open = 2
    const ended = () => {
      if (--open === 0) this.emit('close', code, signal)
    }
    for (const s of [this.stdout, this.stderr]) {
      s.once('end', ended)
      s.push(null)
      // Output nobody reads is dropped, as a closed pipe would drop it, so 'close' still comes.
      if (s.readableFlowing === null) s.resume()
    }
    this.emit('exit', code, signal)
  }
}

type ExitListener = (code: number | null, signal: NodeJS.Signals | null) => void
export interface NodeProcess {
  on(event: 'close' | 'exit', listener: ExitListener): this
  on(event: 'error', listener: (err: Error) => void): this
  on(event: 'spawn', listener: () => void): this
  once(event: 'close' | 'exit', listener: ExitListener): this
  once(event: 'error', listener: (err: Error) => void): this
  once(event: 'spawn', listener: () => void): this
}

/** The spawner process and the commands it runs for this lab process; a new spawner if one dies. */
class Spawner {
  private proc?: ChildProcess
  private readonly procs = new Map<number, NodeProcess>()
  private nextId = 1

  spawn(file: string, args: string[], cwd: string, env: Record<string, string>): NodeProcess {
    const proc = this.proc ?? this.start()
    const id = this.nextId++
    const p = new NodeProcess((m) => proc.connected && proc.send(m), id)
    this.procs.set(id, p)
    proc.send({ op: 'spawn', id, file, args, cwd, env })
    return p
  }

  private start(): ChildProcess {
    // detached: a session of its own (the point, see NodeProcess); advanced serialization carries Buffers as bytes.
    const proc = fork(SPAWNER, [], { detached: true, serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    this.proc = proc
    // The spawner never keeps the lab's process alive: the lab's servers (or their absence) decide that.
    proc.unref()
    ;(proc as unknown as { channel?: { unref(): void } }).channel?.unref()
    proc.on('message', (m: { op: string; id: number }) => {
      const p = this.procs.get(m.id)
      if (!p) return
      if (m.op === 'close') this.procs.delete(m.id)
      p.receive(m)
      // A command the lab stopped listening to (nothing reads it) still needs no reference: 'close' removes it.
    })
    proc.on('exit', () => {
      if (this.proc === proc) this.proc = undefined
      // Its commands went with it (it kills them when the lab leaves; a crash leaves them without their streams).
      const lost = [...this.procs.values()]
      this.procs.clear()
      for (const p of lost) {
        p.emit('error', new Error('kupgrade lab: the node-command spawner exited'))
        p.finish(null, null)
      }
    })
    return proc
  }
}

const SPAWNER = fileURLToPath(new URL('./node-spawner.mjs', import.meta.url))
let spawner: Spawner | undefined

/** Spawns `file args` through the spawner process; the command makes its own process group (exec.ts). */
export function spawnViaSpawner(file: string, args: string[], o: { cwd: string; env: Record<string, string> }): NodeProcess {
  spawner ??= new Spawner()
  return spawner.spawn(file, args, o.cwd, o.env)
}
