import { connect, createServer, isIPv4, type Server as NetServer, type Socket } from 'node:net'
import ssh2, { type ParsedKey, type ServerChannel } from 'ssh2'
import { sshClient, sshFingerprint } from '../recorder/identity.js'
import { checkPublicKey } from './auth.js'
import type { ExecUser } from './exec.js'

const { Server } = ssh2

/** One exec (or shell) request as the node sees it. */
export interface SessionRequest {
  connectionId: number
  user: ExecUser
  /** undefined for a `shell` request: bash reads the commands from stdin. */
  command: string | undefined
  env: Record<string, string>
  channel: ServerChannel
  /** Handlers for `signal` requests the client sends while the command runs. */
  onSignal: (handler: (name: string) => void) => void
}

export interface SshServerOptions {
  hostKey: string
  authorizedKeys: ParsedKey[]
  users: ExecUser[]
  onSession: (req: SessionRequest) => void
  /** The host's OpenSSH sftp-server binary, when installed; without it sftp requests are refused. */
  sftpServer?: string
  /** Told of every TCP forward a client asks for (the node as a bastion). */
  onForward?: (e: { host: string; port: number; accepted: boolean }) => void
}

/**
 * The node's sshd: ssh2's protocol on top of our own net.Server, so every accepted socket gets setNoDelay(true)
 * (without it each round trip stalls ~40 ms, lab-findings) and can be torn down hard, as a reboot or the `ssh-drop`
 * fault does to a real connection.
 */
export class NodeSshServer {
  private readonly ssh: InstanceType<typeof Server>
  private net?: NetServer
  private readonly sockets = new Map<number, Socket>()
  private nextId = 1

  constructor(o: SshServerOptions) {
    this.ssh = new Server({ hostKeys: [o.hostKey], ident: 'OpenSSH_9.2p1 Debian-2+deb12u3' }, (client, info) => {
      const connectionId = [...this.sockets].find(([, s]) => s.remotePort === info.port)?.[0] ?? 0
      let user: ExecUser | undefined
      client.on('authentication', (ctx) => {
        const u = ctx.username === 'root' ? { name: 'root', sudo: true } : o.users.find((x) => x.name === ctx.username)
        if (u && checkPublicKey(ctx, o.authorizedKeys) === 'accept') {
          if (ctx.method === 'publickey' && !ctx.signature) return ctx.accept()
          user = { ...u, client: ctx.method === 'publickey' ? sshClient(u.name, sshFingerprint(ctx.key.data)) : `ssh:${u.name}` }
          return ctx.accept()
        }
        ctx.reject(['publickey'])
      })
      client.on('ready', () => {
        // A node can be a bastion (ProxyJump / `ssh -J`), as a real sshd with AllowTcpForwarding is; the lab only
        // ever forwards to loopback, where its other nodes and API servers live.
        client.on('tcpip', (accept, reject, info) => {
          const tell = (accepted: boolean) => o.onForward?.({ host: info.destIP, port: info.destPort, accepted })
          if (!isLoopback(info.destIP)) {
            tell(false)
            return reject()
          }
          const upstream = connect({ host: info.destIP, port: info.destPort })
          upstream.setNoDelay(true)
          let channel: ServerChannel | undefined
          // Refused before the channel opens (as sshd answers "connect failed"); after, the channel just closes.
          upstream.on('error', () => {
            if (channel) return channel.close()
            tell(false)
            reject()
          })
          upstream.once('connect', () => {
            tell(true)
            channel = accept()
            channel.pipe(upstream).pipe(channel)
            channel.on('close', () => upstream.destroy())
            upstream.on('close', () => channel?.close())
          })
        })
        client.on('session', (accept) => {
          const session = accept()
          const env: Record<string, string> = {}
          let signalHandler: ((name: string) => void) | undefined
          // As sshd with the AcceptEnv of Debian's sshd_config (LANG LC_*): anything else (LD_PRELOAD, BASH_ENV, PATH)
          // would reach the node's root bash and run code the client chose; sshd refuses it, and so does the lab.
          session.on('env', (acc, rej, i) => {
            if (!isAcceptedEnv(i.key)) return rej?.()
            env[i.key] = i.val
            acc?.()
          })
          session.on('pty', (acc) => acc?.())
          session.on('window-change', (acc) => acc?.())
          session.on('signal', (acc, _rej, i) => {
            acc?.()
            signalHandler?.(i.name)
          })
          const start = (command: string | undefined) => (channel: ServerChannel) =>
            o.onSession({ connectionId, user: user!, command, env, channel, onSignal: (h) => (signalHandler = h) })
          session.on('exec', (acc, _rej, i) => start(i.command)(acc()))
          session.on('shell', (acc) => start(undefined)(acc()))
          // sftp as sshd runs it: the real sftp-server, inside the node's namespace, so paths mean what they mean there.
          session.on('subsystem', (acc, rej, i) => (i.name === 'sftp' && o.sftpServer ? start(`exec ${o.sftpServer}`)(acc()) : rej()))
        })
      })
      // A client that vanishes (reboot, drop) surfaces as a socket error here; it is expected in the lab.
      client.on('error', () => undefined)
    })
  }

  listen(address: string, port: number): Promise<void> {
    const net = createServer((socket) => {
      socket.setNoDelay(true)
      const id = this.nextId++
      this.sockets.set(id, socket)
      socket.on('close', () => this.sockets.delete(id))
      socket.on('error', () => undefined)
      this.ssh.injectSocket(socket)
    })
    this.net = net
    return new Promise((resolve, reject) => {
      net.once('error', reject)
      net.listen(port, address, () => {
        net.off('error', reject)
        resolve()
      })
    })
  }

  /** Drops one connection the way a dead host does: no SSH disconnect message, the TCP socket just goes. */
  drop(connectionId: number): void {
    this.sockets.get(connectionId)?.destroy()
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    for (const s of this.sockets.values()) s.destroy()
    this.sockets.clear()
    const net = this.net
    this.net = undefined
    if (net) await new Promise<void>((resolve) => net.close(() => resolve()))
  }
}

/** OpenSSH matches AcceptEnv patterns against the whole name: `LANG`, or `LC_` followed by anything. */
export const isAcceptedEnv = (name: string): boolean => name === 'LANG' || /^LC_[A-Za-z0-9_]*$/.test(name)

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.'))
