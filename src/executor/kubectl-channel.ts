import type { KubectlClient } from '../transport/kubectl/client.js'
import { observeUntil, type ObserveOptions, type Seen } from '../transport/kubectl/observe.js'
import { redactArgv } from '../transport/kubectl/redact.js'

/**
 * The executor's kubectl seam, split like `Transport`: `read` runs for real in every mode (a dry-run rests on real
 * facts), `mutate` changes the cluster and says why. A dry-run's RecordingKubectl records the writes (cordon, drain,
 * uncordon, the Lease) instead of running them, so its record can be compared one for one with what a real run wrote.
 */
export interface KubectlCall {
  stdin?: string
  timeoutMs?: number
  signal?: AbortSignal
}

export interface KubectlChannel {
  readonly cluster: string
  read(args: readonly string[], call?: KubectlCall): Promise<string>
  mutate(why: string, args: readonly string[], call?: KubectlCall): Promise<string>
  /** Follows one object (`['node', NAME]`) until `decide` answers: a read, so real in every mode (observe.ts). */
  observe<T, R>(target: string[], decide: (seen: Seen<T>) => R | undefined, o: ObserveOptions): Promise<R>
  /** The client gates read through (they are read-only by contract). */
  readonly client: KubectlClient
}

export class LiveKubectl implements KubectlChannel {
  constructor(readonly cluster: string, readonly client: KubectlClient) {}
  read(args: readonly string[], call: KubectlCall = {}): Promise<string> {
    return this.client.run([...args], { retry: true, ...opts(call) })
  }
  mutate(_why: string, args: readonly string[], call: KubectlCall = {}): Promise<string> {
    // A write is never silently repeated: kubectl's own request retries aside, one attempt.
    return this.client.run([...args], { retry: false, ...opts(call) })
  }
  observe<T, R>(target: string[], decide: (seen: Seen<T>) => R | undefined, o: ObserveOptions): Promise<R> {
    return observeUntil(this.client, target, decide, o)
  }
}

const opts = (c: KubectlCall) => ({
  ...(c.stdin !== undefined ? { stdin: c.stdin } : {}),
  ...(c.timeoutMs !== undefined ? { processTimeoutMs: c.timeoutMs } : {}),
  ...(c.signal ? { signal: c.signal } : {}),
})

export interface RecordedKubectl {
  cluster: string
  why: string
  /** `kubectl ARGS` as run (secrets redacted), without the client's kubeconfig/context flags. */
  command: string
  args: string[]
  stdin?: string
}

export class RecordingKubectl implements KubectlChannel {
  readonly recorded: RecordedKubectl[] = []
  constructor(private readonly inner: KubectlChannel) {}
  get cluster(): string {
    return this.inner.cluster
  }
  get client(): KubectlClient {
    return this.inner.client
  }
  read(args: readonly string[], call?: KubectlCall): Promise<string> {
    return this.inner.read(args, call)
  }
  observe<T, R>(target: string[], decide: (seen: Seen<T>) => R | undefined, o: ObserveOptions): Promise<R> {
    return this.inner.observe(target, decide, o)
  }
  async mutate(why: string, args: readonly string[], call: KubectlCall = {}): Promise<string> {
    this.recorded.push({ cluster: this.cluster, why, command: `kubectl ${redactArgv([...args])}`, args: [...args], ...(call.stdin !== undefined ? { stdin: call.stdin } : {}) })
    return ''
  }
}
