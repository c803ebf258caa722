import { createHash } from 'node:crypto'
import type { EventEmitter } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { labNodeFactory } from '../../src/lab/node-runtime.js'
import { pathsOf } from '../../src/lab/node/paths.js'
import type { TopologyInput } from '../../src/lab/topology.js'
import { eventually, labKubectl, openSsh, startLab, type TestLab } from './helpers.js'

/**
 * Rejoining a k3s agent as k3s decides it (real OpenSSH, real kubectl): the server checks the agent's token against
 * its own (/var/lib/rancher/k3s/server/token) and the agent's node password against `<node>.node-password.k3s`.
 * An uninstalled and reinstalled agent has a new password and is refused until its Node (and with it the Secret) is
 * deleted; an agent with a wrong token never joins.
 */
const NET = '127.0.124'

function topology(): TopologyInput {
  return {
    apiVersion: 'kupgrade.dev/v1alpha1', kind: 'LabTopology', metadata: { name: 'rejoin-k3s' },
    spec: {
      mirror: ['v1.29.6'],
      timing: { serviceRestart: '100ms', readyDelay: '300ms', reboot: '300ms', drainEvictionDelay: '100ms', nodeMonitorGracePeriod: '300ms', podStartDelay: '0s' },
      clusters: [{
        name: 'k3s', distribution: 'k3s', version: 'v1.29.6', apiAddress: `${NET}.1`,
        nodes: [
          { name: 'server-1', role: 'control-plane', address: `${NET}.101` },
          { name: 'agent-1', role: 'worker', address: `${NET}.111` },
          { name: 'agent-2', role: 'worker', address: `${NET}.112` },
        ],
        workloads: { deployments: [], daemonSets: [], coredns: { replicas: 0 } },
      }],
    },
  }
}

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

describe('k3s agent rejoin: token and node password (real OpenSSH, real kubectl)', () => {
  let t: TestLab
  const { ssh, ok } = openSsh(() => t)
  const kubectl = labKubectl(() => t, 'k3s')
  const readiness = async (name: string): Promise<string | undefined> => {
    const r = await kubectl(['get', 'node', name, '-o', 'json'])
    return r.exitCode === 0 ? ((JSON.parse(r.stdout) as Obj).status.conditions as Obj[]).find((c) => c.type === 'Ready')!.status as string : undefined
  }
  const readyNow = (name: string) => eventually(async () => ((await readiness(name)) === 'True' ? true : undefined), 15_000, `${name} Ready`)
  const install = (token: string) => `curl -sfL https://get.k3s.io | K3S_URL=https://${NET}.1:6443 K3S_TOKEN='${token}' INSTALL_K3S_VERSION=v1.29.6+k3s1 sh -`
  let token = ''

  beforeAll(async () => {
    t = await startLab(topology(), { nodeFactory: labNodeFactory })
    token = await (async () => (await ssh(`${NET}.101`, 'cat /var/lib/rancher/k3s/server/token')).out)()
  }, 120_000)
  afterAll(async () => t?.stop())

  it('the server token is K10<sha256 of the cluster CA>::server:<password>, node-token the same file; agents joined with it', async () => {
    const caHash = createHash('sha256').update(readFileSync(join(t.dir, 'ca.crt'))).digest('hex')
    expect(token).toMatch(new RegExp(`^K10${caHash}::server:[0-9a-f]{32}$`))
    expect(await ok(`${NET}.101`, 'cat /var/lib/rancher/k3s/server/node-token')).toBe(token)
    expect(await ok(`${NET}.111`, 'cat /etc/systemd/system/k3s-agent.service.env')).toContain(`K3S_TOKEN='${token}'`)
    expect((await kubectl(['-n', 'kube-system', 'get', 'secret', 'agent-1.node-password.k3s', '-o', 'name'])).stdout).toBe('secret/agent-1.node-password.k3s')
  }, 30_000)

  it('a start whose timer fired before the wall clock reached its due time is admitted all the same', async () => {
    // libuv fires a timer by its cached loop time, which on a busy lab is ahead of Date.now(): the node reports the
    // start while the unit file, read by the wall clock, still says activating. The agent must be admitted anyway.
    const { model, nodes } = t.lab.clusters.get('k3s')!
    const node = nodes.get('agent-2')! as unknown as EventEmitter
    const units = pathsOf(join(t.dir, 'nodes', 'k3s', 'agent-2')).units
    const before = readFileSync(join(units, 'k3s-agent'), 'utf8')
    const [, version] = before.trim().split(/\s+/)
    const due = Date.now() + 60_000
    try {
      writeFileSync(join(units, 'k3s-agent'), `activating ${version} ${due} ${Math.floor(due / 1000)}\n`)
      node.emit('service', { service: 'k3s-agent', state: 'stopped', version })
      expect(model.nodes.get('agent-2')!.kubeletActive).toBe(false)
      node.emit('service', { service: 'k3s-agent', state: 'started', version, due })
      expect(model.nodes.get('agent-2')!.kubeletActive).toBe(true)
    } finally {
      writeFileSync(join(units, 'k3s-agent'), before)
    }
    await readyNow('agent-2')
  }, 30_000)

  it('an uninstalled agent reinstalled under its name is refused (new node password) until its Node is deleted', async () => {
    const agent = `${NET}.111`
    await ok(agent, 'k3s-agent-uninstall.sh 2>/dev/null')
    expect(await ok(agent, 'test -e /etc/rancher/node/password || echo removed')).toBe('removed')
    const certs = 'ls /var/lib/rancher/k3s/agent/*.crt 2>/dev/null | wc -l'
    expect(await ok(agent, certs)).toBe('0')
    await ok(agent, install(token))
    expect(await ok(agent, 'systemctl is-active k3s-agent')).toBe('active')
    expect(await ok(agent, 'test -s /etc/rancher/node/password && echo created')).toBe('created')
    const log = await eventually(async () => {
      const out = await ok(agent, 'journalctl -u k3s-agent --no-pager')
      return out.includes('Node password rejected') ? out : undefined
    }, 10_000, 'the rejection in the agent log')
    expect(log).toMatch(/k3s\[\d+\]: time="[^"]+" level=info msg="Waiting to retrieve agent configuration; server is not ready: Node password rejected, duplicate hostname or contents of '\/etc\/rancher\/node\/password' may not match server node-passwd entry, try enabling a unique node name with the --with-node-id flag"/)
    // The Node is the old machine's, silent: never Ready while the agent is refused.
    await new Promise((r) => setTimeout(r, 2000))
    expect(await readiness('agent-1')).toBe('Unknown')
    // A refused agent gets no certificates from the server.
    expect(await ok(agent, certs)).toBe('0')

    // Deleting the Node deletes its node-password Secret; the agent's next retry is admitted, a new Node registers.
    expect((await kubectl(['delete', 'node', 'agent-1'])).stdout).toBe('node "agent-1" deleted')
    await readyNow('agent-1')
    expect((await kubectl(['-n', 'kube-system', 'get', 'secret', 'agent-1.node-password.k3s', '-o', 'name'])).stdout).toBe('secret/agent-1.node-password.k3s')
    // Admitted, it has its certificates from the server again (the certificates gate reads them with openssl).
    expect(await ok(agent, 'openssl x509 -noout -subject -in /var/lib/rancher/k3s/agent/client-kubelet.crt')).toMatch(/CN ?= ?system:node:agent-1/)
  }, 60_000)

  it('an agent whose token does not match the server\'s never joins; with the right token it does', async () => {
    const agent = `${NET}.112`
    const [, caHash, password] = /^K10([0-9a-f]+)::server:(.+)$/.exec(token)!
    await ok(agent, install(`K10${caHash}::server:not-the-password`))
    await eventually(async () => ((await ok(agent, 'journalctl -u k3s-agent --no-pager')).includes(`level=error msg="Failed to validate connection to cluster at https://${NET}.1:6443: token is not valid: https://127.0.0.1:6444/cacerts: 401 Unauthorized"`) ? true : undefined), 10_000, 'token rejection')
    await ok(agent, install(`K10${'0'.repeat(64)}::server:${password}`))
    await eventually(async () => ((await ok(agent, 'journalctl -u k3s-agent --no-pager')).includes(`token CA hash does not match the Cluster CA certificate hash: ${'0'.repeat(64)} != ${caHash}`) ? true : undefined), 10_000, 'CA hash rejection')
    await new Promise((r) => setTimeout(r, 1500))
    expect(await readiness('agent-2')).toBe('Unknown')
    await ok(agent, install(token))
    await readyNow('agent-2')
  }, 60_000)
})
