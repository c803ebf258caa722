import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import ssh2 from 'ssh2'
import type { ParsedKey } from 'ssh2'

/** A key pair in the forms tests need: files for the client, parsed public key for the server's authorized list. */
export interface TestKey {
  privatePem: string
  publicLine: string
  parsedPublic: ParsedKey
  blob: Buffer
}

export function makeKey(passphrase?: string): TestKey {
  // ssh2's generateKeyPairSync drops a leading zero byte of the ed25519 public key about once in 170 keys, which
  // yields a "Malformed OpenSSH public key": generate again rather than make tests flaky.
  for (;;) {
    const kp = ssh2.utils.generateKeyPairSync('ed25519', passphrase ? { passphrase, cipher: 'aes256-cbc', rounds: 16 } : {})
    const parsedPublic = ssh2.utils.parseKey(kp.public)
    if (parsedPublic instanceof Error || Array.isArray(parsedPublic)) continue
    return { privatePem: kp.private, publicLine: kp.public, parsedPublic, blob: parsedPublic.getPublicSSH() }
  }
}

export interface ExecHookContext {
  command: string
  /** 1-based count of execs of this exact command on this server. */
  nth: number
}

export interface TestServerOptions {
  host?: string
  port?: number
  hostKey?: TestKey
  authorized: TestKey[]
  /** Return 'drop' to run the command, then cut the connection before sending its exit status. */
  onExec?: (ctx: ExecHookContext) => 'drop' | undefined
  env?: Record<string, string>
  /** A directory of stand-in binaries (k3s, systemctl …) put first on PATH. */
  pathPrefix?: string
  /** Counts handshakes in progress (TCP accepted, not yet authenticated), shared across servers. */
  handshakes?: { current: number; max: number }
  /** Counts commands running now (exec'd, not yet exited), shared across servers. */
  execs?: { current: number; max: number }
  /** Allow direct-tcpip forwarding (this server as a bastion). */
  forwarding?: boolean
}

export interface TestServer {
  host: string
  port: number
  hostKey: TestKey
  /** Commands the server ran, in order. */
  commands: string[]
  /** Successful authentications (one per connection). */
  logins: { user: string }[]
  forwards: { destIP: string; destPort: number }[]
  close(): Promise<void>
}

/** A fake `sudo` implementing just `sudo -n [--] cmd…`: refuses like real sudo when FAKE_SUDO_DENY is set. */
function fakeBin(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kupgrade-fakebin-'))
  writeFileSync(join(dir, 'sudo'), `#!/bin/bash
if [ "$1" != "-n" ]; then echo "sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper" >&2; exit 1; fi
shift; if [ "$1" = "--" ]; then shift; fi
if [ -n "$FAKE_SUDO_DENY" ]; then echo "sudo: a password is required" >&2; exit 1; fi
exec "$@"
`)
  chmodSync(join(dir, 'sudo'), 0o755)
  return dir
}

/** An ssh2 SSH server on loopback that runs exec requests in real bash: the node side of transport tests. */
export async function startTestServer(o: TestServerOptions): Promise<TestServer> {
  const hostKey = o.hostKey ?? makeKey()
  const bin = fakeBin()
  const commands: string[] = []
  const logins: { user: string }[] = []
  const forwards: { destIP: string; destPort: number }[] = []
  const counts = new Map<string, number>()
  const clients = new Set<ssh2.Connection>()
  const server = new ssh2.Server({ hostKeys: [hostKey.privatePem] }, (client) => {
    clients.add(client)
    const hs = o.handshakes
    let shaking = false
    if (hs) {
      shaking = true
      hs.current++
      hs.max = Math.max(hs.max, hs.current)
    }
    const doneShaking = () => {
      if (shaking && hs) hs.current--
      shaking = false
    }
    client.on('ready', doneShaking)
    client.on('close', () => {
      doneShaking()
      clients.delete(client)
    })
    client.on('error', () => {})
    let user = ''
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey'])
      const match = o.authorized.find((k) => k.parsedPublic.type === ctx.key.algo && k.blob.equals(ctx.key.data))
      if (!match) return ctx.reject(['publickey'])
      if (ctx.signature && ctx.blob && !match.parsedPublic.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) return ctx.reject(['publickey'])
      user = ctx.username
      if (ctx.signature) logins.push({ user })
      ctx.accept()
    })
    client.on('ready', () => {
      client.on('tcpip', (accept, reject, info) => {
        if (!o.forwarding) return reject()
        forwards.push({ destIP: info.destIP, destPort: info.destPort })
        const ch = accept()
        const sock = net.connect(info.destPort, info.destIP)
        sock.setNoDelay(true)
        sock.on('error', () => ch.close())
        ch.on('error', () => sock.destroy())
        ch.pipe(sock).pipe(ch)
      })
      client.on('session', (accept) => {
        const session = accept()
        session.on('exec', (acceptExec, _reject, info) => {
          const stream = acceptExec()
          const nth = (counts.get(info.command) ?? 0) + 1
          counts.set(info.command, nth)
          commands.push(info.command)
          const action = o.onExec?.({ command: info.command, nth })
          if (o.execs) o.execs.max = Math.max(o.execs.max, ++o.execs.current)
          const child = spawn('/bin/bash', ['-c', info.command], {
            env: { ...process.env, ...o.env, PATH: `${o.pathPrefix ? `${o.pathPrefix}:` : ''}${bin}:${process.env.PATH}`, USER: user, LOGNAME: user },
            stdio: ['pipe', 'pipe', 'pipe'],
          })
          child.stdout.on('data', (d) => stream.write(d))
          child.stderr.on('data', (d) => stream.stderr.write(d))
          stream.on('data', (d: Buffer) => child.stdin.write(d))
          stream.on('end', () => child.stdin.end())
          child.stdin.on('error', () => {})
          stream.on('signal', () => child.kill('SIGKILL'))
          stream.on('close', () => child.kill('SIGKILL'))
          child.on('close', (code, signal) => {
            if (o.execs) o.execs.current--
            if (action === 'drop') {
              // Abruptly cut the TCP connection: the client sees the output but never the exit status.
              ;(client as unknown as { _sock: net.Socket })._sock.destroy()
              return
            }
            try {
              if (signal) stream.exit(signal)
              else stream.exit(code ?? 255)
              stream.end()
            } catch {
              /* client already gone */
            }
          })
        })
      })
    })
  })
  const srv = (server as unknown as { _srv: net.Server })._srv
  srv.on('connection', (s: net.Socket) => s.setNoDelay(true))
  const host = o.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port ?? 0, host, () => resolve())
  })
  const port = (server.address() as net.AddressInfo).port
  return {
    host,
    port,
    hostKey,
    commands,
    logins,
    forwards,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of clients) c.end()
        rmSync(bin, { recursive: true, force: true })
        server.close(() => resolve())
      }),
  }
}
