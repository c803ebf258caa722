import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SshPool, type SshPoolOptions } from '../../../src/transport/ssh/pool.js'
import { makeKey, startTestServer, type TestKey, type TestServer, type TestServerOptions } from './ssh-server.js'

/** A temp dir with a client key, a known_hosts file and a way to clean up everything a test started. */
export class Fixture {
  readonly dir = mkdtempSync(join(tmpdir(), 'kupgrade-ssh-test-'))
  readonly key: TestKey = makeKey()
  readonly keyFile = join(this.dir, 'id_ed25519')
  readonly knownHosts = join(this.dir, 'known_hosts')
  private readonly cleanups: (() => Promise<void>)[] = []

  constructor() {
    writeFileSync(this.keyFile, this.key.privatePem, { mode: 0o600 })
    writeFileSync(this.knownHosts, '')
  }

  async server(o: Partial<TestServerOptions> = {}): Promise<TestServer> {
    const s = await startTestServer({ authorized: [this.key], ...o })
    this.cleanups.push(() => s.close())
    return s
  }

  /** known_hosts line for a server, written as OpenSSH would for its port. */
  trust(s: TestServer, extra = ''): void {
    const token = s.port === 22 ? s.host : `[${s.host}]:${s.port}`
    writeFileSync(this.knownHosts, `${extra}${token} ssh-ed25519 ${s.hostKey.blob.toString('base64')}\n`, { flag: 'a' })
  }

  pool(o: SshPoolOptions = {}): SshPool {
    const p = new SshPool({ sshConfigFile: null, env: {}, home: this.dir, backoffBaseMs: 5, backoffCapMs: 20, ...o })
    this.cleanups.push(() => p.close())
    return p
  }

  target(s: TestServer, extra: Record<string, unknown> = {}) {
    return { cluster: 'c1', node: 'n1', host: s.host, port: s.port, user: 'root', identityFiles: [this.keyFile], knownHosts: this.knownHosts, ...extra }
  }

  async cleanup(): Promise<void> {
    for (const c of this.cleanups.reverse()) await c().catch(() => {})
    rmSync(this.dir, { recursive: true, force: true })
  }
}
