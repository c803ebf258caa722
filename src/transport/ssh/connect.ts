import type { Readable } from 'node:stream'
import ssh2 from 'ssh2'
import type { AuthMethod, Client, ParsedKey } from 'ssh2'
import { checkHostKey, HostKeyError, knownKeyTypes } from './host-key.js'
import { SshAuthError, type IdentityStore } from './identity.js'
import type { ResolvedTarget } from './ssh-config.js'

const HOST_KEY_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']
const ALGOS_FOR_TYPE: Record<string, string[]> = { 'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] }

/** Ask for host key types we already know first, so a host with several keys presents the one we can check. */
export function hostKeyOrder(known: string[]): string[] {
  const first = known.flatMap((t) => ALGOS_FOR_TYPE[t] ?? [t]).filter((a) => HOST_KEY_ALGORITHMS.includes(a))
  return [...new Set([...first, ...HOST_KEY_ALGORITHMS])]
}

export interface ConnectOptions {
  target: ResolvedTarget
  acceptNew: boolean
  identities: IdentityStore
  /** ssh-agent socket (SSH_AUTH_SOCK). */
  agent?: string
  /** An already-open stream to the target (ProxyJump through a bastion's forwardOut). */
  sock?: Readable
  readyTimeoutMs: number
  keepaliveIntervalMs: number
  keepaliveCountMax: number
}

/** Failures worth another connection attempt: the server was busy (MaxStartups), restarting, or the network blinked. */
export function isTransientConnectError(err: unknown): boolean {
  if (err instanceof HostKeyError || err instanceof SshAuthError) return false
  const e = err as { level?: string; code?: string; message?: string }
  if (e.level === 'client-authentication') return false
  if (e.code && ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH'].includes(e.code)) return true
  return e.level === 'client-socket' || e.level === 'client-timeout' || /lost before handshake|timed out while waiting for handshake|socket hang up|Connection lost/i.test(e.message ?? '')
}

async function authMethods(o: ConnectOptions): Promise<AuthMethod[]> {
  const { target } = o
  const methods: AuthMethod[] = []
  const failures: Error[] = []
  for (const file of target.identityFiles) {
    try {
      const key: ParsedKey = await o.identities.load(file)
      methods.push({ type: 'publickey', username: target.user, key } as AuthMethod)
    } catch (err) {
      // With an agent available, an unusable key file is not fatal: `ssh` would just move on to the agent's keys.
      if (!o.agent) throw err
      failures.push(err as Error)
    }
  }
  if (o.agent) methods.push({ type: 'agent', username: target.user, agent: o.agent } as AuthMethod)
  if (methods.length === 0) {
    throw failures[0] ?? new SshAuthError(`no SSH credentials for ${target.user}@${target.host}: no identity file and no ssh-agent`, {
      hint: 'set ssh.identityFile in the plan, IdentityFile in ~/.ssh/config, or start ssh-agent (SSH_AUTH_SOCK)',
    })
  }
  return methods
}

/**
 * One authenticated ssh2 connection with the host key checked against known_hosts. TCP_NODELAY is set at once:
 * without it every exec round trip stalls ~40 ms on delayed ACKs (lab findings).
 */
export async function connect(o: ConnectOptions): Promise<Client> {
  const { target } = o
  const who = target.cluster ? `${target.cluster}/${target.node}` : target.node
  const methods = await authMethods(o)
  const known = knownKeyTypes(target.knownHosts, target.host, target.port)
  return new Promise<Client>((resolve, reject) => {
    const client = new ssh2.Client()
    let hostKeyError: Error | undefined
    let settled = false
    const fail = (err: Error) => {
      if (settled) return
      settled = true
      client.end()
      reject(hostKeyError ?? err)
    }
    client.once('ready', () => {
      if (settled) return
      settled = true
      resolve(client)
    })
    // Kept for the connection's life (a no-op once settled): ssh2 can emit several errors for one failure, and an
    // 'error' without a listener would crash the process.
    client.on('error', fail)
    client.once('close', () => fail(new Error(`connection to ${target.host}:${target.port} closed during handshake`)))
    client.connect({
      host: target.host,
      port: target.port,
      username: target.user,
      ...(o.sock ? { sock: o.sock } : {}),
      readyTimeout: o.readyTimeoutMs,
      keepaliveInterval: o.keepaliveIntervalMs,
      keepaliveCountMax: o.keepaliveCountMax,
      algorithms: { serverHostKey: hostKeyOrder(known) as never },
      authHandler: methods as never,
      hostVerifier: (key: Buffer) => {
        try {
          checkHostKey({ knownHosts: target.knownHosts, acceptNew: o.acceptNew }, who, target.host, target.port, key)
          return true
        } catch (err) {
          hostKeyError = err as Error
          return false
        }
      },
    })
    // Only a TCP socket has Nagle to disable; a forwarded channel rides on the bastion's socket, which has it off.
    if (!o.sock) client.setNoDelay(true)
  })
}
