import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { request, type RequestOptions } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { raiseListenerLimit } from '../../util/signal.js'
import { redact } from './redact.js'

export interface ProxyAnswer {
  status: number
  body: string
}

export interface ProxyTarget {
  binary: string
  /** kubectl's --kubeconfig / --context flags: the proxy authenticates exactly as each kubectl call would. */
  flags: string[]
  env: NodeJS.ProcessEnv
  /** How long without a request before the proxy is closed. Default IDLE_MS. */
  idleMs?: number
}

/** kubectl starts in ~0.2 s; ten is a machine under real load, not a proxy that will come up later. */
const START_TIMEOUT_MS = 10_000
const SOCKET = 'api.sock'
const IDLE_MS = 30_000
/** kubectl proxy passes it on: the API server's audit log names kupgrade, not an anonymous client. */
const USER_AGENT = 'kupgrade (through kubectl proxy)'

/**
 * Runs `"$0" "$@"` (kubectl proxy) and a reader of the shell's stdin on fd 3 (an asynchronous list's stdin would be
 * /dev/null): when the pipe closes, the reader signals the shell's whole process group, its own (the shell is started
 * as a group leader): kubectl, and a kubectl that a wrapper script runs as its child rather than exec'ing it. The shell
 * exits when kubectl does, so a kubectl that cannot run a proxy is seen at once, and takes the reader with it. On its
 * way out, by either path, it removes the socket and its directory ($KUPGRADE_API_SOCKET), which kupgrade cannot do
 * when it was killed. Once kubectl has the stderr pipe, the shell's own goes to /dev/null: its word on the killed
 * kubectl, written to a pipe nobody reads, would end it (SIGPIPE) before it cleans up.
 */
const WATCHDOG = [
  'gone() { rm -f "$KUPGRADE_API_SOCKET"; rmdir "${KUPGRADE_API_SOCKET%/*}" 2>/dev/null; }',
  "trap 'gone; exit 143' TERM",
  'exec 3<&0; "$0" "$@" </dev/null 3<&- & p=$!; (read _ <&3; kill 0) & r=$!; exec 3<&- 2>/dev/null; wait $p; s=$?; kill $r 2>/dev/null',
  'gone; exit $s',
].join('\n')

/**
 * One `kubectl proxy --unix-socket` per cluster for the life of the process, so the reads a run makes (hundreds: every
 * gate, every wait) cost an HTTP request each instead of a kubectl process each, whose start alone is ~0.1 s of CPU.
 * kubectl still does all the authentication (exec plugins, client certificates, token refresh), from the same
 * kubeconfig and context as every other call.
 *
 * The socket lives in a fresh 0700 directory: the proxy forwards with the user's credentials, so only the user may
 * reach it. The proxy runs under `sh`, which kills it when its stdin — a pipe only this process holds — closes: it
 * ends with kupgrade, however kupgrade ends, even by SIGKILL.
 */
export class ApiProxy {
  /** Its socket refused a connection: the proxy is gone, and the next call starts another. */
  dead = false
  /** Closed after IDLE_MS without a request; the next call starts another. */
  closed = false
  private inFlight = 0
  private lastUsed = Date.now()
  private idle?: NodeJS.Timeout

  private constructor(private readonly child: ChildProcess, private readonly dir: string) {}

  /**
   * From when it serves: a process that reads now and then (a long soak, a test worker running many labs) does not
   * keep a kubectl (~50 MB) per cluster it once read. Not before: a slow start is not idleness.
   */
  private closeWhenIdle(idleMs: number): void {
    this.lastUsed = Date.now()
    this.idle = setInterval(() => {
      if (this.inFlight === 0 && Date.now() - this.lastUsed >= idleMs) this.close()
    }, idleMs / 4).unref()
  }

  /** Counts a request in flight until it settles: the proxy is not closed for idleness under it. */
  private use<T>(p: Promise<T>): Promise<T> {
    this.inFlight++
    return p.finally(() => {
      this.inFlight--
      this.lastUsed = Date.now()
    })
  }

  get socketPath(): string {
    return join(this.dir, SOCKET)
  }

  /** A running proxy, or why there is none (an old or wrapped kubectl without `proxy --unix-socket`). */
  static async start(t: ProxyTarget): Promise<ApiProxy | { problem: string }> {
    const dir = mkdtempSync(join(tmpdir(), 'kupgrade-api-'))
    const sock = join(dir, SOCKET)
    // PUT is refused by the proxy itself: the one object kupgrade replaces, its Lease, is written by kubectl with its
    // resourceVersion (optimistic concurrency). What goes through the proxy is what api-request.ts maps: reads, the
    // probe pods' create and delete, and cordon's and uncordon's PATCH, each still a write the executor recorded.
    const argv = [...t.flags, 'proxy', `--unix-socket=${sock}`, '--api-prefix=/', '--reject-methods=^PUT$']
    // A process group of its own (detached), so that the watchdog's signal reaches everything under it, and a Ctrl-C
    // at the terminal, which kupgrade answers by finishing its step safely, does not take the proxy from under it.
    const child = spawn('sh', ['-c', WATCHDOG, t.binary, ...argv], {
      stdio: ['pipe', 'ignore', 'pipe'], env: { ...t.env, KUPGRADE_API_SOCKET: sock }, detached: true,
    })
    let stderr = ''
    child.stderr!.setEncoding('utf8')
    child.stderr!.on('data', (c: string) => {
      if (stderr.length < 4096) stderr += c
    })
    let exited = false
    child.once('exit', () => (exited = true))
    child.once('error', () => (exited = true))
    const proxy = new ApiProxy(child, dir)
    live.add(proxy)
    const started = Date.now()
    while (!(await accepts(sock))) {
      if (exited || Date.now() - started > START_TIMEOUT_MS) {
        proxy.close()
        const why = redact(stderr.trim().split('\n').at(-1) ?? '') || (exited ? 'it exited' : `no socket after ${START_TIMEOUT_MS / 1000}s`)
        return { problem: `kubectl proxy did not start: ${why}` }
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    proxy.closeWhenIdle(t.idleMs ?? IDLE_MS)
    // Neither the proxy nor its pipes keep kupgrade alive; the exit hook below ends it.
    child.unref()
    ;(child.stdin as unknown as { unref?: () => void }).unref?.()
    ;(child.stderr as unknown as { unref?: () => void }).unref?.()
    return proxy
  }

  /** What every request to the proxy carries: its socket, a timeout, and the headers kubectl would send. */
  private options(method: string, path: string, timeoutMs: number, body?: { text: string; type: string }): RequestOptions {
    return {
      socketPath: this.socketPath, method, path, timeout: timeoutMs,
      headers: { host: 'localhost', accept: 'application/json', 'user-agent': USER_AGENT, ...(body ? { 'content-type': body.type, 'content-length': Buffer.byteLength(body.text) } : {}) },
    }
  }

  /** One request; rejects when no answer came (the proxy gone, the timeout, the signal). */
  request(method: string, path: string, o: { body?: string; contentType?: string; timeoutMs: number; signal?: AbortSignal }): Promise<ProxyAnswer> {
    return this.use(new Promise((resolve, reject) => {
      if (o.signal) raiseListenerLimit(o.signal)
      const body = o.body !== undefined ? { text: o.body, type: o.contentType ?? 'application/json' } : undefined
      const req = request({ ...this.options(method, path, o.timeoutMs, body), ...(o.signal ? { signal: o.signal } : {}) }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', reject)
      })
      req.on('timeout', () => req.destroy(new ProxyTimeout(`no answer through kubectl proxy in ${o.timeoutMs} ms`)))
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') {
          this.dead = true
          reject(new ProxyUnreachable(`kubectl proxy is gone (${err.code})`))
        } else reject(err)
      })
      req.end(o.body)
    }))
  }

  /**
   * A streaming GET (a watch): `onData` gets the body as it comes. Resolves with the status when the stream ends,
   * also when `signal` stops it.
   */
  stream(path: string, onData: (chunk: string) => void, o: { signal: AbortSignal; idleMs: number }): Promise<{ status: number; body: string; stopped: boolean }> {
    return this.use(new Promise((resolve, reject) => {
      raiseListenerLimit(o.signal)
      if (o.signal.aborted) return resolve({ status: 0, body: '', stopped: true })
      let status = 0
      let body = ''
      const req = request(this.options('GET', path, o.idleMs), (res) => {
        status = res.statusCode ?? 0
        res.setEncoding('utf8')
        res.on('data', (c: string) => (status === 200 ? onData(c) : (body += c)))
        res.on('end', () => done())
        res.on('error', () => done())
        res.on('close', () => done())
      })
      const stop = () => req.destroy()
      const done = () => {
        o.signal.removeEventListener('abort', stop)
        resolve({ status, body, stopped: o.signal.aborted })
      }
      o.signal.addEventListener('abort', stop, { once: true })
      req.on('timeout', () => req.destroy(new Error(`the watch through kubectl proxy was silent for ${o.idleMs} ms`)))
      req.on('error', (err) => {
        o.signal.removeEventListener('abort', stop)
        if (o.signal.aborted) resolve({ status, body, stopped: true })
        else reject(err)
      })
      req.end()
    }))
  }

  close(): void {
    this.closed = true
    clearInterval(this.idle)
    live.delete(this)
    // The pipe closing is what ends the proxy (see the class comment). Killing the shell instead would leave kubectl.
    this.child.stdin?.destroy()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** The request never reached the proxy: nothing was sent to the API server. */
export class ProxyUnreachable extends Error {}
/** The proxy gave no answer in time: the request may have reached the API server. */
export class ProxyTimeout extends Error {}

const accepts = (path: string): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect(path)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })

const live = new Set<ApiProxy>()
process.once('exit', () => {
  for (const p of live) p.close()
})

const started = new Map<string, { proxy: Promise<ApiProxy | undefined>; ready?: ApiProxy }>()

/**
 * The process's proxy for this kubectl, kubeconfig and context, started on first use; undefined where kubectl cannot
 * run one (said once through `log`), and the caller runs kubectl as before.
 */
export function sharedProxy(t: ProxyTarget, log?: (m: string) => void): Promise<ApiProxy | undefined> {
  const key = JSON.stringify([t.binary, t.flags, t.env.KUBECONFIG ?? '', t.env.HOME ?? '', t.idleMs])
  let e = started.get(key)
  if (!e || e.ready?.dead || e.ready?.closed) {
    if (e?.ready?.dead) log?.('kubectl proxy is gone: starting another')
    const entry: { proxy: Promise<ApiProxy | undefined>; ready?: ApiProxy } = {
      proxy: ApiProxy.start(t).then((r) => {
        if (r instanceof ApiProxy) return (entry.ready = r)
        log?.(`${r.problem}: running kubectl for every call instead`)
        return undefined
      }),
    }
    started.set(key, (e = entry))
  }
  return e.proxy
}
