import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { HostKeyError } from '../../src/transport/ssh/host-key.js'
import { Fixture } from './helpers/fixture.js'

let fx: Fixture
beforeEach(() => {
  fx = new Fixture()
})
afterEach(() => fx.cleanup())

describe('transport/ssh ProxyJump', () => {
  it('reaches a node through a bastion with forwardOut, checking both host keys', async () => {
    const bastion = await fx.server({ forwarding: true })
    const node = await fx.server()
    fx.trust(bastion)
    fx.trust(node)
    const pool = fx.pool()
    const t = fx.target(node, { proxyJump: `root@${bastion.host}:${bastion.port}` })
    const outs = await Promise.all([pool.read(t, ['hostname']), pool.read(t, ['echo', 'two'])])
    expect(outs[1]!.stdout).toBe('two\n')
    expect(bastion.forwards).toEqual([{ destIP: node.host, destPort: node.port }])
    expect(bastion.commands).toEqual([])
    expect(node.commands).toEqual(['hostname', 'echo two'])
  })

  it('refuses an unknown bastion key', async () => {
    const bastion = await fx.server({ forwarding: true })
    const node = await fx.server()
    fx.trust(node)
    const err = await fx.pool().read(fx.target(node, { proxyJump: `${bastion.host}:${bastion.port}` }), ['true']).catch((e) => e)
    expect(err).toBeInstanceOf(HostKeyError)
    expect(node.commands).toEqual([])
  })

  it('takes HostName, Port, User, IdentityFile and ProxyJump from ~/.ssh/config; plan values win', async () => {
    const bastion = await fx.server({ forwarding: true })
    const node = await fx.server()
    fx.trust(bastion)
    fx.trust(node)
    const config = join(fx.dir, 'ssh_config')
    writeFileSync(config, [
      'Host jump',
      `  HostName ${bastion.host}`,
      `  Port ${bastion.port}`,
      '  User root',
      `  IdentityFile ${fx.keyFile}`,
      'Host node-* !node-skip',
      `  HostName ${node.host}`,
      `  Port ${node.port}`,
      '  User ignored-by-plan',
      `  IdentityFile ${fx.keyFile}`,
      '  ProxyJump jump',
      'Match host special user deploy',
      '  Port 2201',
      'Host special',
      '  Port 2202',
      '',
    ].join('\n'))
    const pool = fx.pool({ sshConfigFile: config })
    const t = { node: 'w1', host: 'node-w1', user: 'root', knownHosts: fx.knownHosts }
    const resolved = pool.resolve(t)
    expect(resolved).toMatchObject({ host: node.host, port: node.port, user: 'root', identityFiles: [fx.keyFile], jumps: ['jump'] })
    expect((await pool.read(t, ['echo', 'via-config'])).stdout).toBe('via-config\n')
    expect(bastion.forwards).toEqual([{ destIP: node.host, destPort: node.port }])
    expect(pool.resolve({ node: 'x', host: 'node-skip', knownHosts: fx.knownHosts }).jumps).toEqual([])
    expect(pool.resolve({ ...t, port: 1234 }).port).toBe(1234)
    expect(pool.resolve({ node: 'w1', host: 'node-w1' }).user).toBe('ignored-by-plan')
    // Match host+user applies only to that user; first match wins, as in OpenSSH.
    expect(pool.resolve({ node: 's', host: 'special', user: 'deploy' }).port).toBe(2201)
    expect(pool.resolve({ node: 's', host: 'special', user: 'other' }).port).toBe(2202)
  })
})
