import { spawn, type ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { Readable, Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'

/**
 * A command the lab started through its spawner process (spawner-process.mjs): the part of `ChildProcess` the lab uses,
 * with the same event order: `spawn` or `error`, `exit`, then `close` once stdout and stderr have ended. Unlike
 * child_process, a short command's events can all be emitted in one turn of the loop (its messages arrived in one read
 * of the channel), so listen for `close` before awaiting `spawn`.
 */
export class LabProcess extends EventEmitter<{ spawn: []; error: [Error]; exit: [number | null, NodeJS.Signals | null]; close: [number | null, NodeJS.Signals | null] }> {
  pid: number | undefined
  exitCode: number | null = null
  signalCode: NodeJS.Signals | null = null
  readonly stdout = new Readable({ read() {} })
  readonly stderr = new Readable({ read() {} })
  readonly stdin: Writable

  constructor(private readonly id: number, private readonly post: (m: object) => void) {
    super()
    this.stdin = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        post({ t: 'stdin', id, data: chunk })
        cb()
      },
      final: (cb) => {
        post({ t: 'stdin-end', id })
        cb()
      },
    })
  }

  /** Signals the command's whole process group (it runs detached, in its own group); a no-op once it has exited. */
  killGroup(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.exitCode !== null || this.signalCode !== null) return
    this.post({ t: 'kill', id: this.id, signal })
  }

  /** @internal a message from the spawner about this command. */
  receive(m: WorkerMessage): void {
    switch (m.t) {
      case 'spawned':
        this.pid = m.pid
        this.emit('spawn')
        return
      case 'out':
        ;(m.fd === 1 ? this.stdout : this.stderr).push(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength))
        return
      case 'error':
        this.emit('error', new Error(m.message))
        return
      case 'exit':
        this.exitCode = m.code
        this.signalCode = m.signal
        this.emit('exit', m.code, m.signal)
        return
      case 'close':
        this.closeAfterOutput(m.code, m.signal)
    }
  }

  /**
   * As child_process does: `close` waits until both streams have ended, and output nobody reads is drained. Nobody
   * reads a stream whose pipe destination went away (an SSH channel the client dropped): pipe() leaves it paused, not
   * unread, and without the drain its command would never close (and stay "running" for the lab's faults).
   */
  private closeAfterOutput(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exitCode === null && this.signalCode === null) {
      this.exitCode = code
      this.signalCode = signal
    }
    let open = 2
    const ended = () => {
      if (--open === 0) this.emit('close', code, signal)
    }
    for (const s of [this.stdout, this.stderr]) {
      s.once('end', ended)
      s.push(null)
      if (s.listenerCount('data') === 0) s.resume()
    }
  }
}

type WorkerMessage =
  | { t: 'spawned'; id: number; pid: number }
  | { t: 'out'; id: number; fd: 1 | 2; data: Uint8Array }
  | { t: 'error'; id: number; message: string }
  | { t: 'exit' | 'close'; id: number; code: number | null; signal: NodeJS.Signals | null }

export interface SpawnRequest {
  file: string
  args: readonly string[]
  cwd: string
  env: Record<string, string>
  /** Lower the priority of the command's session (its autogroup), where the kernel schedules by session. */
  niceness?: number
  /** Start it through the spawner's admission queue (a few per core at a time, in order; spawner-process.mjs). */
  admit?: boolean
}

const SCRIPT = fileURLToPath(new URL('./spawner-process.mjs', import.meta.url))

export interface SpawnerOptions {
  /** Commands starting or in their first moments at once (spawner-process.mjs's admission); default 4 per core. */
  slots?: number
  /** How long a running command keeps its place before it counts as long-running; default 3 s. */
  holdMs?: number
}

/** One spawner per lab process, started on first use; it keeps the lab process alive only while commands run. */
export class Spawner {
  private child: ChildProcess | undefined
  private readonly live = new Map<number, LabProcess>()
  private nextId = 1

  constructor(private readonly options: SpawnerOptions = {}) {}

  spawn(req: SpawnRequest): LabProcess {
    const child = this.ensureSpawner()
    const id = this.nextId++
    const proc = new LabProcess(id, (m) => this.post(child, m))
    this.live.set(id, proc)
    if (this.live.size === 1) child.channel?.ref()
    this.post(child, { t: 'spawn', id, ...req })
    return proc
  }

  private post(child: ChildProcess, m: object): void {
    // A message after the spawner went away has nobody to act on it; lost() already failed its commands.
    if (child.connected) child.send(m)
  }

  private ensureSpawner(): ChildProcess {
    if (this.child) return this.child
    // Its own session, so the scheduler weighs it beside the lab process rather than inside its share; stdout unused,
    // stderr shared so that a spawner that cannot start says why.
    const args = [SCRIPT, ...(this.options.slots ? ['--slots', String(this.options.slots)] : []), ...(this.options.holdMs ? ['--hold-ms', String(this.options.holdMs)] : [])]
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'advanced', detached: true, cwd: '/' })
    child.unref()
    child.channel?.unref()
    child.on('message', (m: WorkerMessage) => {
      const proc = this.live.get(m.id)
      if (!proc) return
      if (m.t === 'close') {
        this.live.delete(m.id)
        if (this.live.size === 0) child.channel?.unref()
      }
      proc.receive(m)
    })
    // The spawner failing is a lab bug; every command it held fails as a spawn error would, and the next command
    // starts a new spawner.
    child.on('error', (err) => this.lost(child, err))
    child.on('exit', (code, signal) => this.lost(child, new Error(`the lab's spawner process exited (${signal ?? `code ${code}`})`)))
    this.child = child
    return child
  }

  private lost(child: ChildProcess, err: Error): void {
    if (this.child !== child) return
    this.child = undefined
    const procs = [...this.live.values()]
    this.live.clear()
    for (const p of procs) {
      p.receive({ t: 'error', id: 0, message: err.message })
      p.receive({ t: 'close', id: 0, code: null, signal: 'SIGKILL' })
    }
  }
}

const spawner = new Spawner()

/** Starts a command from the lab's spawner process, off the event loop that serves the lab's API and SSH (see
 *  spawner-process.mjs for why). */
export function spawnOffLoop(req: SpawnRequest): LabProcess {
  return spawner.spawn(req)
}
