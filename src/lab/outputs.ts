import { stringify } from 'yaml'
import type { Topology } from './topology.js'
import { comparePlain, minorOf, releaseVersion } from './versions.js'

/**
 * What `kupgrade lab up` writes so a user can point kupgrade, kubectl or ssh at the fleet: a kubeconfig with one
 * context per cluster, known_hosts lines for every node, and a plan that upgrades the whole fleet to the mirror's
 * newest version. All paths inside are relative to the lab directory, so the folder can be moved or inspected.
 */
export const PLAN_SCHEMA_URL = 'https://raw.githubusercontent.com/kupgrade/kupgrade/main/plans/schema.json'

export interface Credentials {
  caPem: string
  token: string
  clientCertPem: string
  clientKeyPem: string
}

const b64 = (s: string) => Buffer.from(s).toString('base64')

export function kubeconfig(t: Topology, creds: Credentials): string {
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    clusters: t.clusters.map((c) => ({ name: c.name, cluster: { server: `https://${c.apiAddress}:${c.apiPort}`, 'certificate-authority-data': b64(creds.caPem) } })),
    // The admin user authenticates with a client certificate (O=system:masters), as k3s.yaml and admin.conf do.
    users: t.clusters.map((c) => ({ name: `${c.name}-admin`, user: { 'client-certificate-data': b64(creds.clientCertPem), 'client-key-data': b64(creds.clientKeyPem) } })),
    contexts: t.clusters.map((c) => ({ name: c.name, context: { cluster: c.name, user: `${c.name}-admin` } })),
    'current-context': t.clusters[0]!.name,
  }
  return stringify(doc)
}

export function knownHosts(t: Topology, hostKeys: Map<string, string>): string {
  const lines: string[] = []
  for (const c of t.clusters) {
    for (const n of c.nodes) {
      const key = hostKeys.get(`${c.name}/${n.name}`)
      if (!key) continue
      const host = n.sshPort === 22 ? n.address : `[${n.address}]:${n.sshPort}`
      lines.push(`${host} ${key.trim().split(/\s+/).slice(0, 2).join(' ')}`)
    }
  }
  return lines.length ? `${lines.join('\n')}\n` : ''
}

/** The newest mirror version, and the intermediate hops (newest patch of each skipped minor) from `from`. */
export function targetFor(t: Topology): { target: string; via: string[] } {
  const target = t.mirror[t.mirror.length - 1]!
  const oldest = t.clusters.map((c) => c.version).sort(comparePlain)[0]!
  const via: string[] = []
  for (let minor = minorOf(oldest) + 1; minor < minorOf(target); minor++) {
    const newest = t.mirror.filter((v) => minorOf(v) === minor).at(-1)
    if (newest) via.push(newest)
  }
  return { target, via }
}

export function labPlan(t: Topology): string {
  const stages: { name: string; clusters: string[] }[] = []
  for (const c of t.clusters) {
    const s = stages.find((x) => x.name === c.stage)
    if (s) s.clusters.push(c.name)
    else stages.push({ name: c.stage, clusters: [c.name] })
  }
  const { target, via } = targetFor(t)
  const doc = {
    apiVersion: 'kupgrade.dev/v1alpha1',
    kind: 'UpgradePlan',
    metadata: { name: `lab-${t.name}`, description: `Upgrade the lab fleet "${t.name}" to ${target}. Written by kupgrade lab up.` },
    spec: {
      target: { kubernetes: target, ...(via.length ? { via } : {}) },
      stages: stages.map((s, i) => ({ name: s.name, clusters: s.clusters, ...(i < stages.length - 1 ? { soak: '5s' } : {}) })),
      clusters: t.clusters.map((c) => ({
        name: c.name,
        distribution: c.distribution,
        from: releaseVersion(c.distribution, c.version),
        kubeconfig: './kubeconfig',
        context: c.name,
        apiEndpoint: `https://${c.apiAddress}:${c.apiPort}`,
        ssh: { user: 'root', identityFile: './id_ed25519', knownHosts: './known_hosts' },
        nodes: c.nodes.map((n) => ({ name: n.name, host: n.address, port: n.sshPort, role: n.role })),
      })),
      strategy: {
        workers: { maxUnavailable: 1, canary: 1 },
        drain: { timeout: '2m', deleteEmptyDirData: true },
        onFailure: 'rollback',
        maxFailedNodes: 1,
      },
      // The lab's restarts take a fraction of a second, so its gates settle in one: poll at 1s, two passes in a row.
      // A lab node is Ready a second or two after its restart: a node that is not (node-not-ready-after-upgrade) is
      // given up on after a minute, not the 5m a real machine gets, so a rehearsed failure is seen in good time.
      gates: { wait: { interval: '1s', stableFor: 2, timeout: '2m' }, afterNode: [{ 'nodes-ready': { timeout: '1m' } }] },
    },
  }
  return `# yaml-language-server: $schema=${PLAN_SCHEMA_URL}\n${stringify(doc, { lineWidth: 0 })}`
}
