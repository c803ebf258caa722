import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { execa } from 'execa'
import type { Lease } from 'kubernetes-types/coordination/v1.js'
import type { Node, Pod } from 'kubernetes-types/core/v1.js'
import { RemoteCommandError } from '../../errors.js'
import { checkRegularFile, FileReadError, MiB } from '../../util/read-file.js'
import { backoffDelay, sleep } from '../backoff.js'
import { classifyKubectlFailure, isRetryable, isTransportFailure, NO_SUCH_CONTEXT, type FailureKind } from './classify.js'
import { JsonObjectStream } from './json-stream.js'
import { collapseKlogRepeats } from './klog.js'
import { apiRequestFor, watchPaths, type ApiRequest } from './api-request.js'
import { ProxyTimeout, sharedProxy, type ApiProxy } from './api-proxy.js'
import { parseDuration } from '../../util/duration.js'
import { redact, redactArgv } from './redact.js'
import { raiseListenerLimit } from '../../util/signal.js'

/** `/version` (apimachinery version.Info). Parse gitVersion, never `minor` ("20+" on managed distributions). */
export interface VersionInfo {
  major: string
  minor: string
  gitVersion: string
  gitCommit?: string
  platform?: string
}

export interface List<T> {
  items: T[]
}

export interface KubectlOptions {
  cluster: string
  binary: string
  kubeconfig?: string
  context?: string
  /** kubectl's own discovery cache, one per cluster: a shared one goes stale across clusters and lab restarts. */
  cacheDir: string
  /** Passed as --request-timeout: bounds each HTTP request kubectl makes. Default 20s. */
  requestTimeout?: string
  /** Hard limit per kubectl process (kills it). Default 60 s. */
  processTimeoutMs?: number
  attempts?: number
  backoffBaseMs?: number
  backoffCapMs?: number
  env?: NodeJS.ProcessEnv
  /** Each invocation and retry, redacted, for --verbose. */
  log?: (message: string) => void
  /** Cancels every call of this client (a cluster's deadline); a call's own signal wins. */
  signal?: AbortSignal
  /**
   * Send the reads, the probe pods' create and delete, and cordon and uncordon through one `kubectl proxy` per
   * cluster instead of a kubectl process each (api-proxy.ts). A call the proxy cannot answer with success runs as
   * kubectl, so failures keep kubectl's own words, classification and retries.
   */
  proxy?: boolean
}

export interface KubectlCallOptions {
  /** Only idempotent calls are retried. Default true for get/version, false otherwise. */
  retry?: boolean
  signal?: AbortSignal
  stdin?: string
  processTimeoutMs?: number
}

/**
 * `kubectl cordon` and `uncordon` exit 0 when their PATCH fails, printing `error: unable to cordon node "x": …`
 * (kubernetes/kubernetes#89008): their stderr, not their exit code, says whether they worked.
 */
const failedQuietly = (args: readonly string[], stderr: string): boolean =>
  (args[0] === 'cordon' || args[0] === 'uncordon') && /^error: unable to (un)?cordon node/m.test(stderr)

/** A kubeconfig with a few hundred contexts is well under 1 MiB. */
const MAX_KUBECONFIG_BYTES = 16 * MiB

/** Which kubectl to run: KUPGRADE_KUBECTL, else the cluster's, else the plan's, else `kubectl` on PATH. */
export const chooseKubectl = (env: NodeJS.ProcessEnv, clusterKubectl?: string, planKubectl?: string): string =>
  env.KUPGRADE_KUBECTL || clusterKubectl || planKubectl || 'kubectl'

/**
 * The user's kubectl, run with this cluster's kubeconfig/context, a request timeout and its own cache dir.
 * Retries timeouts, 429 and 5xx with jittered backoff; 4xx fails at once. Output is parsed JSON, typed with
 * kubernetes-types; secrets never reach errors or logs.
 */
export class KubectlClient {
  constructor(private readonly o: KubectlOptions) {}

  private identityArgs(): string[] {
    return [
      ...(this.o.kubeconfig ? [`--kubeconfig=${this.o.kubeconfig}`] : []),
      ...(this.o.context ? [`--context=${this.o.context}`] : []),
    ]
  }

  private baseArgs(): string[] {
    return [...this.identityArgs(), `--request-timeout=${this.o.requestTimeout ?? '20s'}`, `--cache-dir=${this.o.cacheDir}`]
  }

  private requestTimeoutMs(): number {
    return parseDuration(this.o.requestTimeout ?? '20s') ?? 20_000
  }

  private proxied(shown: string): Promise<ApiProxy | undefined> {
    this.checkKubeconfig(shown)
    return sharedProxy({ binary: this.o.binary, flags: this.identityArgs(), env: this.o.env ?? process.env }, this.o.log)
  }

  /**
   * The call's answer through the proxy, or what the kubectl run that takes over needs to know: whether the proxy's
   * try timed out (it counts as one of the call's attempts, so a hung API server is not waited on once more). A
   * write that got no answer in time is not sent again: it may have been made.
   */
  private async viaProxy(api: ApiRequest, shown: string, call: KubectlCallOptions): Promise<{ out: string } | { timedOut?: string }> {
    const proxy = await this.proxied(shown)
    if (!proxy) return {}
    this.o.log?.(`${this.o.cluster}: ${shown} (through kubectl proxy)`)
    let why: string
    const timeoutMs = Math.min(this.requestTimeoutMs(), call.processTimeoutMs ?? Infinity)
    // The first request that changes something: from then on a request without an answer may have been made.
    let wrote = false
    try {
      for (let req: ApiRequest = api; ;) {
        wrote ||= req.method !== 'GET'
        const r = await proxy.request(req.method, req.path, {
          ...(req.body !== undefined ? { body: req.body } : {}), ...(req.contentType ? { contentType: req.contentType } : {}), timeoutMs, ...(call.signal ? { signal: call.signal } : {}),
        })
        if (r.status >= 200 && r.status < 300) {
          if (!req.then) return { out: req.output(r.body) }
          const next = req.then(r.body)
          if (!('method' in next)) return { out: next.output }
          req = next
          continue
        }
        if (r.status === req.okStatus) return { out: req.okOutput ?? '' }
        why = `HTTP ${r.status}`
        break
      }
    } catch (err) {
      if (call.signal?.aborted) throw this.error(shown, null, 'cancelled', 'cancelled')
      why = (err as Error).message
      if (err instanceof ProxyTimeout) {
        // Transient, as kubectl's own request timeout is: the executor verifies before it tries the step again.
        if (wrote) throw this.error(shown, null, why, describe('timeout', this.o), true)
        this.o.log?.(`${this.o.cluster}: ${shown}: ${why}; running kubectl for the remaining attempts`)
        return { timedOut: why }
      }
    }
    this.o.log?.(`${this.o.cluster}: ${shown}: ${redact(why)} through kubectl proxy; running kubectl for it`)
    return {}
  }

  /** Reads in flight, and the one queued behind each, by argv (see `shared`). */
  private readonly reads = new Map<string, { running?: Promise<string>; queued?: Promise<string> }>()

  async run(args: string[], call: KubectlCallOptions = {}): Promise<string> {
    if (args[0] === 'get' && call.stdin === undefined && call.processTimeoutMs === undefined && call.retry !== false && (call.signal === undefined || call.signal === this.o.signal)) {
      return this.shared(args, () => this.runNow(args, call))
    }
    return this.runNow(args, call)
  }

  /**
   * One process for identical reads asked for at the same time: when a batch's gates start together, ten nodes' checks
   * each reading all Nodes, /version and kube-system's pods would otherwise start dozens of kubectl processes at once,
   * which on a small runner take longer than the waits they judge. A caller is never handed a read that began before
   * its call (read-your-writes: whatever it changed before asking is in what it gets): it joins the read queued behind
   * the one in flight, which starts when that one ends.
   */
  private shared(args: string[], read: () => Promise<string>): Promise<string> {
    const key = args.join('\0')
    let e = this.reads.get(key)
    if (!e) this.reads.set(key, (e = {}))
    const entry = e
    const start = (): Promise<string> => {
      const p = read().finally(() => {
        if (entry.running === p) entry.running = undefined
        if (!entry.running && !entry.queued) this.reads.delete(key)
      })
      entry.running = p
      return p
    }
    if (!entry.running) return start()
    entry.queued ??= entry.running.then(() => undefined, () => undefined).then(() => {
      entry.queued = undefined
      return start()
    })
    return entry.queued
  }

  private async runNow(args: string[], call: KubectlCallOptions): Promise<string> {
    if (call.signal === undefined && this.o.signal) call = { ...call, signal: this.o.signal }
    // One run's signal cancels every kubectl in flight: a 10-node batch with its gates has dozens at once, each a
    // listener, which is by design and not the leak Node warns about past 10 (on stderr, in the middle of a run).
    if (call.signal) raiseListenerLimit(call.signal)
    const argv = [...this.baseArgs(), ...args]
    const shown = `${this.o.binary} ${redactArgv(args)}`
    const retry = call.retry ?? (args[0] === 'get' || args[0] === 'version')
    const attempts = retry ? (this.o.attempts ?? 4) : 1
    let last: { kind: FailureKind; stderr: string; exitCode: number | null; timedOut: boolean } | undefined
    let first = 0
    const api = this.o.proxy ? apiRequestFor(args, call.stdin) : undefined
    if (api) {
      const r = await this.viaProxy(api, shown, call)
      if ('out' in r) return r.out
      if (r.timedOut && attempts > 1) {
        first = 1
        last = { kind: 'timeout', stderr: r.timedOut, exitCode: null, timedOut: false }
      }
    }
    mkdirSync(this.o.cacheDir, { recursive: true })
    this.checkKubeconfig(shown)
    for (let attempt = first; attempt < attempts; attempt++) {
      if (attempt > 0) {
        const delay = backoffDelay(attempt - 1, { baseMs: this.o.backoffBaseMs ?? 500, capMs: this.o.backoffCapMs ?? 8_000 })
        this.o.log?.(`${this.o.cluster}: ${shown}: ${last!.kind} (${redact(last!.stderr.trim().split('\n').at(-1) ?? '')}); retry ${attempt}/${attempts - 1} in ${delay} ms`)
        await sleep(delay, call.signal)
      }
      this.o.log?.(`${this.o.cluster}: ${shown}`)
      const r = await execa(this.o.binary, argv, {
        reject: false,
        timeout: call.processTimeoutMs ?? this.o.processTimeoutMs ?? 60_000,
        ...(call.signal ? { cancelSignal: call.signal } : {}),
        ...(call.stdin !== undefined ? { input: call.stdin } : { stdin: 'ignore' }),
        env: this.o.env ?? process.env,
        extendEnv: false,
        stripFinalNewline: false,
      })
      const stderr = String(r.stderr ?? '')
      if (!r.failed && !failedQuietly(args, stderr)) return String(r.stdout)
      if (r.isCanceled) throw this.error(shown, null, 'cancelled', 'cancelled')
      if ((r as { code?: string }).code === 'ENOENT') throw this.binaryMissing(shown)
      const kind: FailureKind = r.timedOut ? 'timeout' : classifyKubectlFailure(stderr)
      last = { kind, stderr: r.timedOut ? `${stderr}\nkubectl killed after ${call.processTimeoutMs ?? this.o.processTimeoutMs ?? 60_000} ms` : stderr, exitCode: r.exitCode ?? null, timedOut: Boolean(r.timedOut) }
      const unusable = this.unusableKubeconfig(stderr)
      if (unusable) throw this.error(shown, last.exitCode, stderr, unusable)
      if (!isRetryable(kind)) break
    }
    const tries = retry && isRetryable(last!.kind) ? ` after ${attempts} attempts` : ''
    // A kubectl we killed for its process timeout hung; that is not a lost request.
    const transient = !last!.timedOut && isTransportFailure(last!.stderr)
    throw this.error(shown, last!.exitCode, last!.stderr, `${describe(last!.kind, this.o)}${tries}`, transient)
  }

  /**
   * `kubectl get TARGET --watch -o json`: every object kubectl prints (the current one first, then one per change) is
   * handed to `onObject` as it comes. Ends when kubectl exits — its --request-timeout ends a watch cleanly, exit 0 —
   * or when `signal` stops it (`stopped`). Never retried here: the caller decides what an ended watch means.
   */
  async watch(target: string[], onObject: (o: unknown) => void, signal: AbortSignal): Promise<{ exitCode: number | null; stderr: string; stopped: boolean }> {
    raiseListenerLimit(signal)
    const shown = `${this.o.binary} ${redactArgv(['get', ...target, '--watch'])}`
    const paths = this.o.proxy ? watchPaths(target) : undefined
    if (paths) {
      const w = await this.watchViaProxy(paths, shown, onObject, signal)
      if (w) return w
    }
    this.checkKubeconfig(shown)
    mkdirSync(this.o.cacheDir, { recursive: true })
    this.o.log?.(`${this.o.cluster}: ${shown}`)
    const sub = execa(this.o.binary, [...this.baseArgs(), 'get', ...target, '--watch', '-o', 'json'], {
      reject: false, cancelSignal: signal, stdin: 'ignore', buffer: { stdout: false }, env: this.o.env ?? process.env, extendEnv: false,
    })
    // A kubectl behind a wrapper that does not exec it outlives the wrapper's kill and keeps the pipes open until its
    // watch ends: once stopped, the pipes are closed on our side so the call returns now.
    const hangUp = () => {
      sub.stdout.destroy()
      sub.stderr.destroy()
    }
    signal.addEventListener('abort', hangUp, { once: true })
    const objects = new JsonObjectStream()
    let bad: unknown
    sub.stdout.setEncoding('utf8')
    sub.stdout.on('data', (chunk: string) => {
      if (bad !== undefined) return
      try {
        for (const o of objects.push(chunk)) onObject(o)
      } catch (err) {
        bad = err
        sub.kill()
        hangUp()
      }
    })
    const r = await sub.finally(() => signal.removeEventListener('abort', hangUp))
    if (bad !== undefined) throw bad instanceof SyntaxError ? this.error(shown, 0, '', 'kubectl printed something that is not JSON') : bad
    if ((r as { code?: string }).code === 'ENOENT') throw this.binaryMissing(shown)
    return { exitCode: r.exitCode ?? null, stderr: redact(String(r.stderr ?? '')), stopped: Boolean(r.isCanceled) }
  }

  /**
   * What `kubectl get NAME --watch` does, through the proxy: the object as it is, then a watch on it from that
   * resourceVersion, until the request timeout ends it (exit 0, as kubectl's --request-timeout ends its watch). An
   * ERROR event ends it as kubectl ends (exit 1, the Status's words). Undefined where the first read does not succeed:
   * then kubectl runs the watch and says what went wrong in its own words.
   */
  private async watchViaProxy(paths: NonNullable<ReturnType<typeof watchPaths>>, shown: string, onObject: (o: unknown) => void, signal: AbortSignal): Promise<{ exitCode: number | null; stderr: string; stopped: boolean } | undefined> {
    const proxy = await this.proxied(shown)
    if (!proxy) return undefined
    this.o.log?.(`${this.o.cluster}: ${shown} (through kubectl proxy)`)
    const timeoutMs = this.requestTimeoutMs()
    let first
    try {
      first = await proxy.request('GET', paths.object, { timeoutMs, signal })
    } catch (err) {
      if (signal.aborted) return { exitCode: null, stderr: '', stopped: true }
      this.o.log?.(`${this.o.cluster}: ${shown}: ${redact((err as Error).message)} through kubectl proxy; running kubectl for it`)
      return undefined
    }
    let obj: { metadata?: { resourceVersion?: string } }
    try {
      if (first.status !== 200) return undefined
      obj = JSON.parse(first.body) as typeof obj
    } catch {
      return undefined
    }
    onObject(obj)
    // The object as it is may already be the answer: the caller stopped the watch before it began.
    if (signal.aborted) return { exitCode: null, stderr: '', stopped: true }
    const q = new URLSearchParams({ fieldSelector: `metadata.name=${paths.name}`, resourceVersion: obj.metadata?.resourceVersion ?? '', watch: 'true', timeoutSeconds: String(Math.max(1, Math.round(timeoutMs / 1000))) })
    const stop = new AbortController()
    const forward = () => stop.abort()
    signal.addEventListener('abort', forward, { once: true })
    const events = new JsonObjectStream()
    let bad: unknown
    let failed: string | undefined
    try {
      const r = await proxy.stream(`${paths.collection}?${q}`, (chunk) => {
        if (bad !== undefined || failed !== undefined) return
        try {
          for (const e of events.push(chunk) as { type?: string; object?: { reason?: string; message?: string } }[]) {
            if (e.type === 'ERROR') {
              failed = `Error from server (${e.object?.reason ?? 'Unknown'}): ${e.object?.message ?? 'watch failed'}`
              stop.abort()
              return
            }
            if (e.type === 'ADDED' || e.type === 'MODIFIED' || e.type === 'DELETED') onObject(e.object)
          }
        } catch (err) {
          bad = err
          stop.abort()
        }
      }, { signal: stop.signal, idleMs: timeoutMs + 10_000 })
      if (bad !== undefined) throw bad instanceof SyntaxError ? this.error(shown, 0, '', 'kubectl proxy sent something that is not JSON') : bad
      if (failed !== undefined) return { exitCode: 1, stderr: redact(failed), stopped: false }
      if (r.stopped) return { exitCode: null, stderr: '', stopped: true }
      if (r.status !== 200) return { exitCode: 1, stderr: redact(statusText(r.status, r.body)), stopped: false }
      return { exitCode: 0, stderr: '', stopped: false }
    } catch (err) {
      if (err instanceof RemoteCommandError || bad !== undefined) throw err
      if (signal.aborted) return { exitCode: null, stderr: '', stopped: true }
      return { exitCode: 1, stderr: redact((err as Error).message), stopped: false }
    } finally {
      signal.removeEventListener('abort', forward)
    }
  }

  /** The kubeconfig files kubectl reads: the plan's, else KUBECONFIG's list (`listed`). */
  private kubeconfigFiles(): { files: string[]; listed: boolean } {
    if (this.o.kubeconfig) return { files: [this.o.kubeconfig], listed: false }
    const files = (this.o.env ?? process.env).KUBECONFIG?.split(':').filter(Boolean) ?? []
    return { files, listed: files.length > 0 }
  }

  /**
   * kubectl would read a FIFO kubeconfig forever and /dev/zero until memory runs out; refuse anything but a regular
   * file of sane size, by path. A missing file is left to kubectl, and explained after it failed (unusableKubeconfig).
   */
  private checkKubeconfig(command: string): void {
    for (const file of this.kubeconfigFiles().files) {
      try {
        checkRegularFile(file, { maxBytes: MAX_KUBECONFIG_BYTES })
      } catch (err) {
        if (err instanceof FileReadError && err.code !== 'ENOENT') {
          throw new RemoteCommandError({ cluster: this.o.cluster, node: 'kubectl', host: 'local', command, exitCode: null, stderr: '', hint: `cannot use kubeconfig ${file} (${err.reason}): point kubeconfig (or KUBECONFIG) at a kubeconfig file` })
        }
      }
    }
  }

  /**
   * A kubectl failure that is a kubeconfig missing, said as that (never retried: no attempt can find it):
   * - the plan names a file that is not there: kubectl says only `stat FILE: no such file or directory`;
   * - no kubeconfig at all (none given, KUBECONFIG unset or naming only missing files, no ~/.kube/config): kubectl
   *   falls back to client-go's built-in server, http://localhost:8080, and reports it refused, which reads like an
   *   apiserver that is down; or, with a context named, says that context does not exist.
   */
  private unusableKubeconfig(stderr: string): string | undefined {
    const { files, listed } = this.kubeconfigFiles()
    const plan = this.o.kubeconfig
    if (plan) {
      return stderr.includes(`${plan}: no such file or directory`) && !existsSync(plan)
        ? `the kubeconfig ${plan} that the plan gives cluster ${this.o.cluster} does not exist: fix \`kubeconfig:\` for ${this.o.cluster} in the plan (a relative path is read from the plan's folder)`
        : undefined
    }
    const fellBack = /\blocalhost:8080\b/.test(stderr)
    const noContext = Boolean(this.o.context) && NO_SUCH_CONTEXT.test(stderr)
    if (!fellBack && !noContext) return undefined
    const home = (this.o.env ?? process.env).HOME
    const looked = listed ? files : home ? [join(home, '.kube', 'config')] : []
    if (looked.some((f) => existsSync(f))) return undefined
    const why = listed ? `KUBECONFIG names only files that do not exist (${files.join(', ')})` : `KUBECONFIG is unset and ${looked[0] ?? '~/.kube/config (HOME is unset)'} does not exist`
    const found = fellBack ? 'kubectl found no kubeconfig and fell back to its built-in http://localhost:8080' : `kubectl found no kubeconfig, so no context ${this.o.context} either`
    return `${found}: the plan gives cluster ${this.o.cluster} no kubeconfig, ${why}; set \`kubeconfig:\` (and \`context:\`) for ${this.o.cluster} in the plan, or KUBECONFIG (not retried)`
  }

  private binaryMissing(command: string): RemoteCommandError {
    return new RemoteCommandError({ cluster: this.o.cluster, node: 'kubectl', host: 'local', command, exitCode: null, stderr: '', hint: `kubectl binary "${this.o.binary}" not found: set KUPGRADE_KUBECTL or spec.kubectl` })
  }

  private error(command: string, exitCode: number | null, stderr: string, hint: string, transient = false): RemoteCommandError {
    return new RemoteCommandError({ cluster: this.o.cluster, node: 'kubectl', host: this.o.context ?? this.o.kubeconfig ?? 'default context', command, exitCode, stderr: redact(collapseKlogRepeats(stderr)), hint, transient })
  }

  async json<T>(args: string[], call?: KubectlCallOptions): Promise<T> {
    const out = await this.run(args, call)
    try {
      return JSON.parse(out) as T
    } catch {
      throw this.error(`${this.o.binary} ${redactArgv(args)}`, 0, redact(out.slice(0, 500)), 'kubectl printed something that is not JSON')
    }
  }

  version(): Promise<VersionInfo> {
    return this.json<VersionInfo>(['get', '--raw', '/version'])
  }

  /** All nodes in one call: never one call per node (each kubectl start costs ~100 ms). */
  nodes(): Promise<List<Node>> {
    return this.json<List<Node>>(['get', 'nodes', '-o', 'json'])
  }

  pods(namespace: string, selector?: string): Promise<List<Pod>> {
    return this.json<List<Pod>>(['get', 'pods', '-n', namespace, ...(selector ? ['-l', selector] : []), '-o', 'json'])
  }

  leases(namespace: string): Promise<List<Lease>> {
    return this.json<List<Lease>>(['get', 'leases', '-n', namespace, '-o', 'json'])
  }
}

/** A failed answer in kubectl's words: `Error from server (Reason): message` for a Status, else the status code. */
function statusText(status: number, body: string): string {
  try {
    const s = JSON.parse(body) as { kind?: string; reason?: string; message?: string }
    if (s.kind === 'Status' && s.message) return `Error from server (${s.reason ?? 'Unknown'}): ${s.message}`
  } catch {
    // not a Status: the code says enough
  }
  return `the server answered HTTP ${status}${body.trim() ? `: ${body.trim().split('\n')[0]}` : ''}`
}

const describe = (k: FailureKind | string, o: KubectlOptions): string =>
  k === 'unreachable' ? 'the API server could not be reached (nothing listening, or no route to it)'
    : k === 'timeout' ? 'the API server did not answer in time'
      : k === 'throttled' ? 'the API server kept throttling requests (429)'
        : k === 'server' ? 'the API server kept failing (5xx)'
          : k === 'client' ? 'the API server refused the request'
            : k === 'tls' ? `TLS trust problem: the API server's certificate is not trusted with ${o.kubeconfig ? `the kubeconfig ${o.kubeconfig}` : 'the kubeconfig'} (check certificate-authority-data and the server address; not retried)`
              : k === 'config' ? `the kubeconfig cannot be used as given: ${o.context ? `is there a context named ${o.context} in ${o.kubeconfig ?? 'it'}? (kubectl config get-contexts)` : 'check it with kubectl config view'}`
                : 'kubectl failed; its message is above'
