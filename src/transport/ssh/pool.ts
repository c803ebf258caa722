import type { Client } from 'ssh2'
import { KupgradeError, RemoteCommandError } from '../../errors.js'
import { backoffDelay, sleep } from '../backoff.js'
import { commandLine, withSudo, type RemoteCommand } from '../quote.js'
import { Semaphore } from '../semaphore.js'
import type { ExecOptions, ExecResult, NodeTarget, OutputLine, Transport } from '../types.js'
import { connect, isTransientConnectError } from './connect.js'
import { ChannelOpenError, CommandAbortedError, CommandTimeoutError, ConnectionLostError, runOnClient, type RawResult } from './exec.js'
import { defaultIdentityFiles, defaultPassphraseSource, IdentityStore, SshAuthError } from './identity.js'
import { loadSshConfig, parseJump, resolveTarget, type ResolvedTarget, type SshConfigSource } from './ssh-config.js'

export interface SshPoolOptions {
  /**
   * SSH handshakes in progress at once, across all nodes. Default 10: handshakes are what costs CPU here and what
   * sshd's MaxStartups (and a shared bastion's) throttles. Established connections are not limited by it, so a
   * command runs on every node at once and a fleet takes about as long as its slowest node.
   */
  concurrency?: number
  /**
   * Commands in flight at once, across all nodes (a bound on local sockets and buffers). Default 256. A default of 32
   * (k0sctl's 30 hosts) kept a 50-node lab apply's lock, but queued short gate probes behind long commands until the
   * api-vip gate judged the nodes unreachable (plan --live on the lab fleet): a bound must not starve probes.
   */
  maxInFlight?: number
  /** Channels open at once on one connection; OpenSSH's MaxSessions defaults to 10. Default 8. */
  channelsPerConnection?: number
  /** Record unknown host keys instead of refusing them (`--accept-new`). */
  acceptNew?: boolean
  /** ~/.ssh/config path; `null` disables reading one (tests). */
  sshConfigFile?: string | null
  home?: string
  env?: NodeJS.ProcessEnv
  identities?: IdentityStore
  connectAttempts?: number
  backoffBaseMs?: number
  backoffCapMs?: number
  /** Re-runs of a read after a dropped connection. */
  readRetries?: number
  defaultTimeoutMs?: number
  readyTimeoutMs?: number
  keepaliveIntervalMs?: number
  /** Every output line of every command, for the run log. */
  log?: (line: OutputLine) => void
  /** Connection-level events (retries, reconnects), for --verbose. */
  debug?: (message: string) => void
}

interface Conn {
  client: Client
  channels: Semaphore
  alive: boolean
}

/** The node could not be reached at all (after retries): nothing ran. */
export class SshConnectError extends KupgradeError {}

const SUDO_REFUSED = /^sudo: (a password is required|a terminal is required|.*is not in the sudoers file|.*is not allowed to (execute|run))/m

/**
 * The SSH transport: one pooled connection per node (and per bastion), commands multiplexed as channels over it.
 * Connects are retried with jittered backoff; reads are re-run after a dropped connection; mutations never are.
 */
export class SshPool implements Transport {
  private readonly conns = new Map<string, Promise<Conn>>()
  private readonly handshakes: Semaphore
  private readonly inFlight: Semaphore
  private readonly o: Required<Pick<SshPoolOptions, 'channelsPerConnection' | 'acceptNew' | 'connectAttempts' | 'backoffBaseMs' | 'backoffCapMs' | 'readRetries' | 'defaultTimeoutMs' | 'readyTimeoutMs' | 'keepaliveIntervalMs'>>
  private readonly sshConfig: SshConfigSource
  private readonly identities: IdentityStore
  private readonly agent?: string
  private closed = false

  constructor(private readonly opts: SshPoolOptions = {}) {
    const env = opts.env ?? process.env
    this.handshakes = new Semaphore(opts.concurrency ?? 10)
    this.inFlight = new Semaphore(opts.maxInFlight ?? 256)
    this.o = {
      channelsPerConnection: opts.channelsPerConnection ?? 8,
      acceptNew: opts.acceptNew ?? false,
      connectAttempts: opts.connectAttempts ?? 6,
      backoffBaseMs: opts.backoffBaseMs ?? 200,
      backoffCapMs: opts.backoffCapMs ?? 5_000,
      readRetries: opts.readRetries ?? 2,
      defaultTimeoutMs: opts.defaultTimeoutMs ?? 60_000,
      readyTimeoutMs: opts.readyTimeoutMs ?? 20_000,
      keepaliveIntervalMs: opts.keepaliveIntervalMs ?? 15_000,
    }
    this.sshConfig = opts.sshConfigFile === null ? { home: opts.home ?? env.HOME ?? '/' } : loadSshConfig(opts.sshConfigFile ?? undefined, opts.home)
    this.identities = opts.identities ?? new IdentityStore(defaultPassphraseSource(env))
    if (env.SSH_AUTH_SOCK) this.agent = env.SSH_AUTH_SOCK
  }

  resolve(t: NodeTarget): ResolvedTarget {
    return resolveTarget(t, this.sshConfig, () => defaultIdentityFiles(this.sshConfig.home))
  }

  read(node: NodeTarget, cmd: RemoteCommand, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.run(node, cmd, opts, { mutating: false })
  }

  mutate(node: NodeTarget, why: string, cmd: RemoteCommand, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.run(node, cmd, opts, { mutating: true, why })
  }

  private async run(node: NodeTarget, cmd: RemoteCommand, opts: ExecOptions, kind: { mutating: boolean; why?: string }): Promise<ExecResult> {
    if (this.closed) throw new Error('SSH pool is closed')
    const t = this.resolve(node)
    const privileged = opts.privileged ?? kind.mutating
    const line = t.sudo && privileged ? withSudo(cmd) : commandLine(cmd)
    const display = commandLine(cmd)
    const where = `${t.host}:${t.port}`
    const started = Date.now()
    return this.inFlight.run(async () => {
      for (let attempt = 0; ; attempt++) {
        let raw: RawResult
        try {
          raw = await this.execOnce(t, line, opts)
        } catch (err) {
          if (err instanceof ConnectionLostError || err instanceof ChannelOpenError) {
            const safe = err instanceof ChannelOpenError || !err.started || !kind.mutating
            if (safe && attempt < this.o.readRetries) {
              this.opts.debug?.(`${t.node}: ${err.message}; running again: ${display}`)
              await sleep(backoffDelay(attempt, { baseMs: this.o.backoffBaseMs, capMs: this.o.backoffCapMs }), opts.signal)
              continue
            }
            if (kind.mutating && !safe) {
              throw new RemoteCommandError({
                ...ids(t), command: display, exitCode: null, stderr: '',
                hint: `connection lost while running "${kind.why ?? display}" on ${t.node}; it may or may not have completed. kupgrade did not run it again: check the node before resuming`,
                cause: err, transient: true,
              })
            }
            throw new RemoteCommandError({ ...ids(t), command: display, exitCode: null, stderr: '', hint: `connection to ${where} lost (${err.message}) after ${attempt + 1} attempt(s)`, cause: err, transient: true })
          }
          if (err instanceof CommandTimeoutError || err instanceof CommandAbortedError) {
            const what = err instanceof CommandTimeoutError ? err.message : 'cancelled'
            throw new RemoteCommandError({
              ...ids(t), command: display, exitCode: null, stderr: '',
              hint: kind.mutating ? `${what}; the command may or may not have completed on ${t.node}` : what,
              cause: err,
            })
          }
          throw err
        }
        const result: ExecResult = { ...raw, retries: attempt, durationMs: Date.now() - started }
        const ok = opts.okExitCodes ?? [0]
        if (raw.exitCode !== null && ok.includes(raw.exitCode)) return result
        const sudoRefused = t.sudo && privileged && SUDO_REFUSED.test(raw.stderr)
        throw new RemoteCommandError({
          ...ids(t), command: t.sudo && privileged ? `sudo -n ${display}` : display, exitCode: raw.exitCode, stderr: raw.stderr,
          ...(sudoRefused ? { hint: `user ${t.user} may not run this through sudo without a password on ${t.node}: grant it NOPASSWD in sudoers, or log in as root` } : {}),
        })
      }
    })
  }

  private async execOnce(t: ResolvedTarget, line: string, opts: ExecOptions): Promise<RawResult> {
    const conn = await this.connection(t, opts.signal)
    return conn.channels.run(() =>
      runOnClient(conn.client, line, {
        node: t.node,
        timeoutMs: opts.timeoutMs ?? this.o.defaultTimeoutMs,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
        ...(opts.onOutput || this.opts.log ? { onOutput: (l: OutputLine) => { opts.onOutput?.(l); this.opts.log?.(l) } } : {}),
      }),
    )
  }

  /** The live connection for a target, opening it (through its bastions) on first use or after it dropped. */
  private async connection(t: ResolvedTarget, signal?: AbortSignal): Promise<Conn> {
    const key = `${t.user}@${t.host}:${t.port}|${t.jumps.join(',')}`
    const existing = this.conns.get(key)
    if (existing) {
      const c = await existing.catch(() => undefined)
      if (c?.alive) return c
      if (this.conns.get(key) === existing) this.conns.delete(key)
      else return this.connection(t, signal)
    }
    const opening = this.open(t, signal)
    this.conns.set(key, opening)
    opening.catch(() => {
      if (this.conns.get(key) === opening) this.conns.delete(key)
    })
    return opening
  }

  private async open(t: ResolvedTarget, signal?: AbortSignal): Promise<Conn> {
    for (let attempt = 0; ; attempt++) {
      try {
        const sock = t.jumps.length ? await this.tunnel(t, signal) : undefined
        const client = await this.handshakes.run(() => connect({
          target: t,
          acceptNew: this.o.acceptNew,
          identities: this.identities,
          ...(this.agent ? { agent: this.agent } : {}),
          ...(sock ? { sock } : {}),
          readyTimeoutMs: this.o.readyTimeoutMs,
          keepaliveIntervalMs: this.o.keepaliveIntervalMs,
          keepaliveCountMax: 3,
        }))
        client.setMaxListeners(0)
        const conn: Conn = { client, channels: new Semaphore(this.o.channelsPerConnection), alive: true }
        const dead = () => { conn.alive = false }
        client.on('close', dead)
        client.on('end', dead)
        // After 'ready' an error (keepalive timeout, reset) is followed by 'close'; the listener keeps it from throwing.
        client.on('error', (e) => { dead(); this.opts.debug?.(`${t.node}: ${e.message}`) })
        return conn
      } catch (err) {
        if ((err as { level?: string }).level === 'client-authentication') {
          const who = t.cluster ? `${t.cluster}/${t.node}` : t.node
          const tried = [...t.identityFiles, ...(this.agent ? ['ssh-agent'] : [])]
          throw new SshAuthError(`authentication as ${t.user} to ${who} (${t.host}:${t.port}) failed; tried: ${tried.join(', ') || 'nothing'}`, {
            hint: `check that one of these keys is in ${t.user}'s authorized_keys on ${t.node}`,
            cause: err,
          })
        }
        if (!isTransientConnectError(err) || attempt + 1 >= this.o.connectAttempts || this.closed) {
          if (isTransientConnectError(err)) {
            const who = t.cluster ? `${t.cluster}/${t.node}` : t.node
            throw new SshConnectError(`cannot connect to ${who} (${t.user}@${t.host}:${t.port}) after ${attempt + 1} attempts: ${(err as Error).message}`, {
              hint: 'check that the node is up and sshd listens there; kupgrade retries with backoff before giving up',
              cause: err,
            })
          }
          throw err
        }
        const delay = backoffDelay(attempt, { baseMs: this.o.backoffBaseMs, capMs: this.o.backoffCapMs })
        this.opts.debug?.(`${t.node}: connect failed (${(err as Error).message}); retrying in ${delay} ms`)
        await sleep(delay, signal)
      }
    }
  }

  /** A stream to the target through its ProxyJump chain: each bastion is itself a pooled, host-key-checked connection. */
  private async tunnel(t: ResolvedTarget, signal?: AbortSignal) {
    const jumps = t.jumps
    const j = parseJump(jumps[jumps.length - 1]!)
    const bastion = resolveTarget(
      { node: `bastion ${j.host}`, host: j.host, ...(j.user ? { user: j.user } : {}), ...(j.port ? { port: j.port } : {}), knownHosts: t.knownHosts, ...(t.cluster ? { cluster: t.cluster } : {}) },
      this.sshConfig,
      () => (t.identityExplicit ? t.identityFiles : defaultIdentityFiles(this.sshConfig.home)),
    )
    // The bastion's own ProxyJump (if any) comes from the chain, not from its ~/.ssh/config entry, as in OpenSSH.
    bastion.jumps = jumps.slice(0, -1)
    if (bastion.identityFiles.length === 0) bastion.identityFiles = t.identityFiles
    const conn = await this.connection(bastion, signal)
    return new Promise<import('node:stream').Duplex>((resolve, reject) => {
      conn.client.forwardOut('127.0.0.1', 0, t.host, t.port, (err, stream) => (err ? reject(Object.assign(err, { level: 'client-socket' })) : resolve(stream)))
    })
  }

  async close(): Promise<void> {
    this.closed = true
    const all = [...this.conns.values()]
    this.conns.clear()
    await Promise.all(all.map(async (p) => {
      const c = await p.catch(() => undefined)
      c?.client.end()
    }))
  }
}

const ids = (t: ResolvedTarget) => ({ ...(t.cluster ? { cluster: t.cluster } : {}), node: t.node, host: `${t.host}:${t.port}` })
