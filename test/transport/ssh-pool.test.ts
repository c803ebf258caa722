import { readFileSync, writeFileSync } from 'node:fs'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { RemoteCommandError } from '../../src/errors.js'
import { HostKeyError } from '../../src/transport/ssh/host-key.js'
import { SshAuthError } from '../../src/transport/ssh/identity.js'
import { SshConnectError } from '../../src/transport/ssh/pool.js'
import type { OutputLine } from '../../src/transport/types.js'
import { Fixture } from './helpers/fixture.js'
import { HOSTILE } from './helpers/hostile.js'
import { makeKey } from './helpers/ssh-server.js'

let fx: Fixture
beforeEach(() => {
  fx = new Fixture()
})
afterEach(() => fx.cleanup())

const rejection = async (p: Promise<unknown>): Promise<Error> => {
  try {
    await p
  } catch (e) {
    return e as Error
  }
  throw new Error('expected a rejection')
}

describe('transport/ssh/pool against an ssh2 test server', () => {
  it('runs commands over one connection with stdout, stderr and exit codes', async () => {
    const s = await fx.server()
    fx.trust(s)
    const pool = fx.pool()
    const t = fx.target(s)
    const r = await pool.read(t, { script: 'echo out; echo err >&2; exit 0' })
    expect(r).toMatchObject({ stdout: 'out\n', stderr: 'err\n', exitCode: 0, retries: 0 })
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.read(t, ['echo', String(i)])))
    expect(results.map((x) => x.stdout)).toEqual(Array.from({ length: 20 }, (_, i) => `${i}\n`))
    expect(s.logins).toHaveLength(1)
    const okAnyway = await pool.read(t, { script: 'exit 3' }, { okExitCodes: [0, 3] })
    expect(okAnyway.exitCode).toBe(3)
  })

  it('fails a non-zero exit with cluster/node, host, command, exit code and stderr tail', async () => {
    const s = await fx.server()
    fx.trust(s)
    const err = await rejection(fx.pool().read(fx.target(s), ['sh', '-c', 'echo boom >&2; exit 7']))
    expect(err).toBeInstanceOf(RemoteCommandError)
    expect(err.message).toContain('c1/n1')
    expect(err.message).toContain(`${s.host}:${s.port}`)
    expect(err.message).toContain('exit code 7')
    expect(err.message).toContain(`sh -c 'echo boom >&2; exit 7'`)
    expect(err.message).toContain('boom')
  })

  it('passes hostile arguments through as single literal arguments', async () => {
    const s = await fx.server()
    fx.trust(s)
    const r = await fx.pool().read(fx.target(s), ['printf', '%s\\0', ...HOSTILE])
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(HOSTILE)
  })

  it('feeds stdin to the remote command', async () => {
    const s = await fx.server()
    fx.trust(s)
    const r = await fx.pool().read(fx.target(s), ['cat'], { stdin: 'line one\nline two\n' })
    expect(r.stdout).toBe('line one\nline two\n')
  })

  it('says a timed-out mutation may or may not have completed', async () => {
    const s = await fx.server()
    fx.trust(s)
    const err = (await rejection(fx.pool().mutate(fx.target(s), 'slow', ['sleep', '30'], { timeoutMs: 150 }))) as RemoteCommandError
    expect(err.hint).toBe('timed out after 150 ms; the command may or may not have completed on n1')
  })

  it('streams output lines while the command runs', async () => {
    const s = await fx.server()
    fx.trust(s)
    const seen: OutputLine[] = []
    await fx.pool().read(fx.target(s), { script: 'echo a; echo b >&2; printf c' }, { onOutput: (l) => seen.push(l) })
    expect(seen).toEqual(expect.arrayContaining([
      { node: 'n1', stream: 'stdout', line: 'a' },
      { node: 'n1', stream: 'stderr', line: 'b' },
      { node: 'n1', stream: 'stdout', line: 'c' },
    ]))
  })

  it('times out and cancels a command, naming the node', async () => {
    const s = await fx.server()
    fx.trust(s)
    const pool = fx.pool()
    const t = fx.target(s)
    const timedOut = await rejection(pool.read(t, ['sleep', '30'], { timeoutMs: 200 }))
    expect(timedOut).toBeInstanceOf(RemoteCommandError)
    expect((timedOut as RemoteCommandError).hint).toMatch(/timed out after 200 ms/)
    const ac = new AbortController()
    const p = pool.mutate(t, 'wait', ['sleep', '30'])
    const p2 = pool.read(t, ['sleep', '30'], { signal: ac.signal })
    ac.abort()
    expect((await rejection(p2) as RemoteCommandError).hint).toMatch(/cancelled/)
    // The connection is still usable after a cancelled channel.
    expect((await pool.read(t, ['echo', 'still'])).stdout).toBe('still\n')
    void p.catch(() => {})
  })

  it('shares one signal among many commands in flight without Node warning of a listener leak', async () => {
    // Three nodes: one connection runs only a few channels at once, a fleet's reads run on many.
    const servers = await Promise.all([fx.server(), fx.server(), fx.server()])
    for (const s of servers) fx.trust(s)
    const pool = fx.pool()
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(w.name)
    process.on('warning', onWarning)
    try {
      const ac = new AbortController()
      const results = await Promise.all(Array.from({ length: 16 }, (_, i) => pool.read(fx.target(servers[i % 3]!), ['sh', '-c', `sleep 0.2; echo ${i}`], { signal: ac.signal })))
      expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 16 }, (_, i) => `${i}\n`))
      // Warnings are emitted on the next tick.
      await new Promise((r) => setImmediate(r))
    } finally {
      process.off('warning', onWarning)
    }
    expect(warnings).not.toContain('MaxListenersExceededWarning')
  })

  it('refuses an unknown host, then records it with acceptNew', async () => {
    const s = await fx.server()
    const err = await rejection(fx.pool().read(fx.target(s), ['true']))
    expect(err).toBeInstanceOf(HostKeyError)
    expect(err.message).toMatch(/unknown/)
    expect(s.commands).toEqual([])
    await fx.pool({ acceptNew: true }).read(fx.target(s), ['true'])
    expect(readFileSync(fx.knownHosts, 'utf8')).toBe(`[${s.host}]:${s.port} ssh-ed25519 ${s.hostKey.blob.toString('base64')}\n`)
    await fx.pool().read(fx.target(s), ['true'])
  })

  it('refuses a changed host key with the file and line of the old key, even with acceptNew', async () => {
    const s = await fx.server()
    const other = makeKey()
    const token = `[${s.host}]:${s.port}`
    writeText(fx.knownHosts, `# header\n${token} ssh-ed25519 ${other.blob.toString('base64')}\n`)
    const err = await rejection(fx.pool({ acceptNew: true }).read(fx.target(s), ['true']))
    expect(err).toBeInstanceOf(HostKeyError)
    expect(err.message).toContain(`${fx.knownHosts}:2`)
    expect(err.message).toMatch(/CHANGED/)
    expect(s.commands).toEqual([])
  })

  it('refuses a key marked @revoked', async () => {
    const s = await fx.server()
    fx.trust(s)
    writeText(fx.knownHosts, `@revoked * ssh-ed25519 ${s.hostKey.blob.toString('base64')}\n`, 'a')
    const err = await rejection(fx.pool().read(fx.target(s), ['true']))
    expect(err.message).toMatch(/revoked/)
    expect(err.message).toContain(`${fx.knownHosts}:2`)
  })

  it('authenticates with an encrypted key using KUPGRADE_SSH_PASSPHRASE, and fails clearly without it', async () => {
    const enc = makeKey('s3cret-pass')
    const s = await fx.server({ authorized: [enc] })
    fx.trust(s)
    const file = `${fx.dir}/id_enc`
    writeText(file, enc.privatePem)
    const t = fx.target(s, { identityFiles: [file] })
    const err = await rejection(fx.pool().read(t, ['true']))
    expect(err.message).toMatch(/encrypted/)
    expect(err.message).not.toContain('s3cret-pass')
    const r = await fx.pool({ env: { KUPGRADE_SSH_PASSPHRASE: 's3cret-pass' } }).read(t, ['echo', 'ok'])
    expect(r.stdout).toBe('ok\n')
    const wrong = await rejection(fx.pool({ env: { KUPGRADE_SSH_PASSPHRASE: 'nope' } }).read(t, ['true']))
    expect(wrong.message).toMatch(/cannot decrypt/)
    expect(wrong.message).not.toContain('nope')
  })

  it('names user, node and the keys it tried when authentication fails', async () => {
    const s = await fx.server({ authorized: [makeKey()] })
    fx.trust(s)
    const err = await rejection(fx.pool({ connectAttempts: 3 }).read(fx.target(s), ['true']))
    expect(err).toBeInstanceOf(SshAuthError)
    expect(err.message).toBe(`authentication as root to c1/n1 (${s.host}:${s.port}) failed; tried: ${fx.keyFile}`)
    expect(s.commands).toEqual([])
  })

  it('runs privileged commands through sudo -n for non-root users, reads without it', async () => {
    const s = await fx.server()
    fx.trust(s)
    const pool = fx.pool()
    const t = fx.target(s, { user: 'ubuntu', sudo: true })
    await pool.mutate(t, 'restart', ['echo', 'hi there'])
    await pool.read(t, ['echo', 'read'])
    expect(s.commands).toEqual([`sudo -n -- echo 'hi there'`, 'echo read'])
    // root never needs sudo
    await pool.mutate(fx.target(s, { user: 'root', sudo: true }), 'x', ['true'])
    expect(s.commands.at(-1)).toBe('true')
  })

  it('reports a missing sudo right naming node and command', async () => {
    const s = await fx.server({ env: { FAKE_SUDO_DENY: '1' } })
    fx.trust(s)
    const err = (await rejection(fx.pool().mutate(fx.target(s, { user: 'ubuntu', sudo: true }), 'restart k3s', ['systemctl', 'restart', 'k3s']))) as RemoteCommandError
    expect(err).toBeInstanceOf(RemoteCommandError)
    expect(err.message).toContain('c1/n1')
    expect(err.message).toContain('systemctl restart k3s')
    expect(err.message).toContain('sudo: a password is required')
    expect(err.hint).toMatch(/ubuntu may not run this through sudo without a password on n1/)
  })

  it('re-runs a read after the connection drops mid-command', async () => {
    const s = await fx.server({ onExec: ({ command, nth }) => (command.startsWith('echo') && nth === 1 ? 'drop' : undefined) })
    fx.trust(s)
    const r = await fx.pool().read(fx.target(s), ['echo', 'facts'])
    expect(r.stdout).toBe('facts\n')
    expect(r.retries).toBe(1)
    expect(s.commands.filter((c) => c === 'echo facts')).toHaveLength(2)
    expect(s.logins).toHaveLength(2)
  })

  it('never silently repeats a mutation after the connection drops mid-command', async () => {
    const marker = `${fx.dir}/ran`
    const s = await fx.server({ onExec: ({ command }) => (command.includes('ran') ? 'drop' : undefined) })
    fx.trust(s)
    const pool = fx.pool()
    const err = (await rejection(pool.mutate(fx.target(s), 'replace k3s binary', ['sh', '-c', `echo x >> ${marker}`]))) as RemoteCommandError
    expect(err).toBeInstanceOf(RemoteCommandError)
    expect(err.hint).toMatch(/connection lost while running "replace k3s binary" on n1; it may or may not have completed/)
    // The executor's cue to verify the step and try it again (run-program.ts), not the pool's to repeat it.
    expect(err.transient).toBe(true)
    expect(readFileSync(marker, 'utf8')).toBe('x\n')
    expect(s.commands.filter((c) => c.includes('ran'))).toHaveLength(1)
    // The pool reconnects for the next command.
    expect((await pool.read(fx.target(s), ['echo', 'back'])).stdout).toBe('back\n')
  })

  it('retries connects while the server is not accepting, then reports the node', async () => {
    const s = await fx.server()
    fx.trust(s)
    const { host, port } = s
    await s.close()
    const err = await rejection(fx.pool({ connectAttempts: 3 }).read(fx.target({ ...s, host, port }), ['true']))
    expect(err).toBeInstanceOf(SshConnectError)
    expect(err.message).toBe(`cannot connect to c1/n1 (root@${host}:${port}) after 3 attempts: connect ECONNREFUSED ${host}:${port}`)
  })

  it('bounds simultaneous handshakes, not commands: every node runs its command at once', async () => {
    const handshakes = { current: 0, max: 0 }
    const servers = await Promise.all(Array.from({ length: 12 }, () => fx.server({ handshakes })))
    servers.forEach((s) => fx.trust(s))
    const pool = fx.pool({ concurrency: 3 })
    // Each command waits until all 12 have started (a barrier through files): it only finishes if none is held back.
    const barrier = `${fx.dir}/barrier`
    const cmd = (i: number) => ['sh', '-c', `touch ${barrier}.${i}; n=0; while [ "$(ls ${barrier}.* | wc -l)" -lt 12 ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done; ls ${barrier}.* | wc -l`]
    const out = await Promise.all(servers.map((s, i) => pool.read(fx.target(s, { node: `n${i}` }), cmd(i))))
    expect(out.map((r) => r.stdout.trim())).toEqual(servers.map(() => '12'))
    expect(handshakes.max).toBeLessThanOrEqual(3)
    expect(handshakes.max).toBeGreaterThanOrEqual(1)
  })

  it('maxInFlight bounds the commands running at once across all nodes; the rest wait for a slot', async () => {
    const execs = { current: 0, max: 0 }
    const servers = await Promise.all(Array.from({ length: 6 }, () => fx.server({ execs })))
    servers.forEach((s) => fx.trust(s))
    const pool = fx.pool({ maxInFlight: 32 })
    // 6 nodes × 7 commands: within 8 channels per connection, so only the fleet-wide bound can hold any back.
    const release = `${fx.dir}/release`
    const all = servers.flatMap((s, i) => Array.from({ length: 7 }, () => pool.read(fx.target(s, { node: `n${i}` }), ['sh', '-c', `while [ ! -e ${release} ]; do sleep 0.05; done; echo done`], { timeoutMs: 60_000 })))
    for (let waited = 0; execs.current < 32 && waited < 30_000; waited += 50) await new Promise((r) => setTimeout(r, 50))
    await new Promise((r) => setTimeout(r, 300))
    expect(execs.current).toBe(32)
    writeText(release, '')
    const out = await Promise.all(all)
    expect(out.map((r) => r.stdout)).toEqual(all.map(() => 'done\n'))
    expect(execs.max).toBe(32)
  })
})

function writeText(file: string, text: string, flag: 'w' | 'a' = 'w') {
  writeFileSync(file, text, { flag })
}
