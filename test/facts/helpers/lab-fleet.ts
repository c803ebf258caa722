import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateEd25519KeyPair, LabNode } from '../../../src/lab/node/index.js'
import type { LabNodeOptions, NodeDistribution, NodeOs } from '../../../src/lab/node/index.js'
import type { NodeTarget } from '../../../src/transport/types.js'

export const DISTS: NodeDistribution[] = ['k3s', 'k0s', 'kubeadm']
export const OSES: NodeOs[] = ['ubuntu-22.04', 'debian-12', 'rocky-9', 'flatcar']
export const VERSION: Record<NodeDistribution, string> = { k3s: 'v1.29.2+k3s10', k0s: 'v1.29.2+k0s.1', kubeadm: 'v1.29.2' }

export interface LabFleet {
  dir: string
  keyFile: string
  knownHosts: string
  nodes: LabNode[]
  /** How kupgrade's transport reaches node `i` as root with the fleet's key and known_hosts; `o` overrides. */
  target(i: number, o?: Partial<NodeTarget>): NodeTarget
  stop(): Promise<void>
}


/** A second octet of its own per process keeps these nodes clear of other suites' 127.0.x.y nodes. */
export const labAddress = (i: number): string => `127.${200 + (process.pid % 50)}.${Math.floor(i / 250)}.${(i % 250) + 1}`

/** n real lab nodes (ssh2 sshd + bash stand-ins), a client key and a known_hosts that trusts them all. */
export async function startLabFleet(n: number, over: (i: number) => Partial<LabNodeOptions> = () => ({})): Promise<LabFleet> {
  const dir = mkdtempSync(join(tmpdir(), 'kupgrade-labfleet-'))
  const key = generateEd25519KeyPair()
  const keyFile = join(dir, 'id_ed25519')
  writeFileSync(keyFile, key.private, { mode: 0o600 })
  const nodes = Array.from({ length: n }, (_, i) => {
    const dist = DISTS[i % DISTS.length]!
    return new LabNode({
      cluster: `c-${dist}`,
      name: `node-${i}`,
      role: i < DISTS.length ? 'control-plane' : 'worker',
      distribution: dist,
      address: labAddress(i),
      port: 2222,
      os: OSES[i % OSES.length]!,
      iptablesBackend: i % 2 ? 'legacy' : 'nf_tables',
      disk: { totalBytes: 40 * 2 ** 30, usedBytes: (5 + (i % 20)) * 2 ** 30 },
      rootDir: join(dir, `node-${i}`),
      version: VERSION[dist],
      mirror: [VERSION[dist]],
      timing: { serviceStartMs: 50, rebootMs: 200, kubeProxySyncMs: 100 },
      authorizedKeys: [Buffer.from(key.public)],
      users: [{ name: 'ops', sudo: i % 2 === 0 }],
      hostKey: generateEd25519KeyPair().private,
      ...over(i),
    })
  })
  const started: LabNode[] = []
  try {
    for (let i = 0; i < nodes.length; i += 10) {
      const batch = nodes.slice(i, i + 10)
      await Promise.all(batch.map(async (node) => {
        await node.start()
        started.push(node)
      }))
    }
  } catch (err) {
    await Promise.all(started.map((s) => s.stop()))
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  const knownHosts = join(dir, 'known_hosts')
  writeFileSync(knownHosts, nodes.map((node) => `[${node.options.address}]:2222 ${node.hostKeyPublic}\n`).join(''))
  return {
    dir,
    keyFile,
    knownHosts,
    nodes,
    target: (i, o = {}) => {
      const n = nodes[i]!
      return { cluster: n.options.cluster, node: n.options.name, host: n.options.address, port: 2222, user: 'root', identityFiles: [keyFile], knownHosts, ...o }
    },
    stop: async () => {
      await Promise.all(nodes.map((node) => node.stop()))
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
