import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Lab } from '../../src/lab/lab.js'
import { probeIsolation } from '../../src/lab/node/index.js'
import { normalizeTopology, type TopologyInput } from '../../src/lab/topology.js'
import { available } from '../helpers/required.js'
import { runCli } from '../helpers/run-cli.js'

const KUBECTL = process.env.KUPGRADE_KUBECTL ?? '/usr/lib/google-cloud-sdk/bin/kubectl.1.32'
const runnable = available(existsSync(KUBECTL), `kubectl at ${KUBECTL}`, 'set KUPGRADE_KUBECTL to a kubectl binary') &&
  available(await probeIsolation().then(() => true, () => false), 'lab node isolation (mount namespaces)', 'run as root, or enable unprivileged user namespaces')

const NET = '127.0.70'
const topology: TopologyInput = {
  apiVersion: 'kupgrade.dev/v1alpha1',
  kind: 'LabTopology',
  metadata: { name: 'gates-e2e' },
  spec: {
    mirror: ['v1.29.6', 'v1.30.4'],
    timing: { serviceRestart: '100ms', readyDelay: '200ms', reboot: '300ms', drainEvictionDelay: '100ms' },
    clusters: (['k3s', 'k0s', 'kubeadm'] as const).map((distribution, ci) => ({
      name: `g-${distribution}`,
      distribution,
      version: 'v1.29.6',
      apiAddress: `${NET}.${ci + 1}`,
      nodes: [
        { name: `${distribution}-cp-1`, role: 'control-plane' as const, address: `${NET}.${100 + ci * 10}`, sshPort: 2222 },
        { name: `${distribution}-w-1`, role: 'worker' as const, address: `${NET}.${101 + ci * 10}`, sshPort: 2222 },
      ],
    })),
  },
}

describe.skipIf(!runnable)('kupgrade check on a lab fleet', () => {
  let dir: string
  let lab: Lab
  const env = () => ({ PATH: process.env.PATH, HOME: dir, KUPGRADE_KUBECTL: KUBECTL })
  const run = (args: string[]) => runCli(args, { env: env(), cwd: dir })

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kupgrade-gates-e2e-'))
    lab = new Lab({ topology: normalizeTopology(topology), dir })
    await lab.start()
  }, 120_000)
  afterAll(async () => {
    await lab?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('prints a report', async () => {
    const r = await run(['check', join(dir, 'plan.yaml')])
    console.log(r.out, r.err)
    expect(r.code).toBeGreaterThanOrEqual(0)
  }, 180_000)
})
