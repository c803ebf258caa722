import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Fixture } from './helpers/fixture.js'
import { makeKey } from './helpers/ssh-server.js'
import { available } from '../helpers/required.js'

const hasAgent = available(existsSync('/usr/bin/ssh-agent') && existsSync('/usr/bin/ssh-add'), 'ssh-agent and ssh-add', 'apt-get install -y openssh-client')

describe.skipIf(!hasAgent)('transport/ssh with ssh-agent (SSH_AUTH_SOCK)', () => {
  let fx: Fixture
  let agent: ChildProcess
  let sock: string
  beforeEach(async () => {
    fx = new Fixture()
    sock = join(fx.dir, 'agent.sock')
    agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' })
    for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20))
    if (!existsSync(sock)) throw new Error('ssh-agent did not create its socket within 2 s')
    execFileSync('ssh-add', ['-q', fx.keyFile], { env: { SSH_AUTH_SOCK: sock } })
  })
  afterEach(async () => {
    agent.kill()
    await fx.cleanup()
  })

  it('authenticates with the agent’s key when no identity file is configured', async () => {
    const s = await fx.server()
    fx.trust(s)
    const pool = fx.pool({ env: { SSH_AUTH_SOCK: sock } })
    const r = await pool.read(fx.target(s, { identityFiles: undefined }), ['echo', 'agent'])
    expect(r.stdout).toBe('agent\n')
  })

  it('falls back to the agent when a configured identity file is unusable (encrypted, no passphrase)', async () => {
    const s = await fx.server()
    fx.trust(s)
    const enc = join(fx.dir, 'id_enc')
    execFileSync('sh', ['-c', `cat > ${enc}`], { input: makeKey('secret').privatePem })
    const pool = fx.pool({ env: { SSH_AUTH_SOCK: sock } })
    const r = await pool.read(fx.target(s, { identityFiles: [enc] }), ['echo', 'fallback'])
    expect(r.stdout).toBe('fallback\n')
  })
})
