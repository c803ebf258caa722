import { disk, free, installed, reboot, status, table } from './format.js'
import { sameButFor, sameFor } from '../util/same-but-for.js'
import { fromDisagreement, nodeSkew, type SkewMarker } from './skew.js'
import type { ClusterFacts, FleetFacts } from './types.js'
import type { RunLock } from './run-lock.js'

/**
 * Human views of FleetFacts: the `inventory` table (kubectl get nodes -o wide plus what an upgrade needs) and the
 * "live state" section `plan --live` prints above its steps, as text and as markdown for pull requests.
 */

const apiservers = (c: ClusterFacts): string =>
  c.apiserverVersions.length === 0 ? 'unknown' : c.apiserverVersions.map((a) => `${a.version} (${a.node ? `${a.source} ${a.node}` : a.source})`).join(', ')

const header = ['NODE', 'STATUS', 'ROLES', 'KUBELET', 'KUBE-PROXY', 'INSTALLED', 'HOST', 'OS', 'KERNEL', 'ARCH', 'IPTABLES', 'FREE /', 'FREE /var', 'REBOOT', 'SKEW']

function rows(c: ClusterFacts): { rows: string[][]; notes: string[] } {
  const notes: string[] = []
  // A node error shared by others but for their names and addresses is noted once, at the first of them.
  const errors = new Map(nodeErrorGroups(c).map((g) => [g.first, g]))
  const out = c.nodes.map((n) => {
    const skew = nodeSkew(c, n)
    const error = errors.get(n.name)
    if (error) notes.push(`  ! ${n.name}: ${error.text}${sameFor(error.others, 'node')}`)
    const pending = restartPending(c, n)
    if (pending) notes.push(`  ~ ${pending}`)
    for (const s of skew) notes.push(`  ${s.severity === 'error' ? '!' : '~'} ${s.message}`)
    return [
      n.name,
      status(n),
      n.roles.length ? n.roles.join(',') : n.role,
      n.kubeletVersion ?? '-',
      n.kubeProxyVersion ?? '-',
      installed(n),
      n.host,
      n.os ? n.os.prettyName ?? `${n.os.id} ${n.os.versionId ?? ''}`.trim() : '-',
      n.kernel ?? '-',
      n.arch ?? '-',
      n.iptablesBackend ?? '-',
      free(disk(n, '/')),
      free(disk(n, '/var')),
      reboot(n),
      n.error ? 'UNREACHABLE' : skew.length ? skew.map((s) => s.short).join(',') : 'ok',
    ]
  })
  return { rows: out, notes }
}

/** A binary on disk newer or older than what runs: an upgrade (or rollback) waiting for its service restart. */
function restartPending(c: ClusterFacts, n: ClusterFacts['nodes'][number]): string | undefined {
  if (!n.kubeletVersion) return undefined
  if (c.distribution === 'k3s' && n.installedVersion && n.installedVersion !== n.kubeletVersion) {
    return `${n.name}: k3s ${n.installedVersion} is installed but ${n.kubeletVersion} is running (service not restarted)`
  }
  // kubelet reports a bare `+k0s` build suffix; compare the Kubernetes core only.
  const core = (v: string) => v.replace(/\+.*$/, '')
  if (n.kubeletBinaryVersion && core(n.kubeletBinaryVersion) !== core(n.kubeletVersion)) {
    return `${n.name}: kubelet ${n.kubeletBinaryVersion} is installed but ${n.kubeletVersion} is running (kubelet not restarted)`
  }
  return undefined
}

/** The cluster's run lock as the live state says it: who holds it, since when, whether it lapsed. */
export const runLockText = (l: RunLock): string =>
  `run lock (Lease kube-system/kupgrade-lock) held by "${l.holder}" since ${l.since}${l.expired ? ', expired (its run stopped renewing it): apply takes it over only with --force-unlock' : ': another kupgrade run is working on this cluster; apply stops here (exit 4) until it finishes'}`

/** Each node the plan does not list, with its kubelet: the version that bounds the control plane's next move. */
const unlistedText = (c: ClusterFacts): string =>
  c.unlistedNodes.map((n) => `${n.name} (${n.controllerLease ? `k0s controller without a Node, lease ${n.controllerLease} held` : `kubelet ${n.kubeletVersion ?? 'unknown'}`})`).join(', ')

function clusterLines(c: ClusterFacts): string[] {
  const lines = [`cluster ${c.name} (${c.distribution}, plan from ${c.from}) — apiserver ${apiservers(c)}`]
  if (c.error) lines.push(`  ! API: ${c.error}`)
  const drift = fromDisagreement(c)
  if (drift && drift.kind !== 'same') lines.push(`  ${drift.kind === 'mismatch' ? '!' : '~'} ${drift.message}`)
  if (c.etcdMembers) lines.push(`  etcd members: ${c.etcdMembers.length ? c.etcdMembers.map((m) => (m.version ? `${m.name} (${m.version})` : m.name)).join(', ') : 'none found'}`)
  if (c.unlistedNodes.length) lines.push(`  ~ nodes in the API but not in the plan: ${unlistedText(c)}`)
  if (c.runLock) lines.push(`  ! ${runLockText(c.runLock)}`)
  const r = rows(c)
  lines.push(...table([header, ...r.rows]).map((l) => `  ${l}`), ...r.notes)
  return lines
}

export function renderInventory(f: FleetFacts): string {
  return `${f.clusters.map((c) => clusterLines(c).join('\n')).join('\n\n')}\n`
}

const apiProblem = (c: ClusterFacts): string[] => (c.error ? [`${c.name}: API: ${c.error}`] : [])

/** Everything that should make `inventory` (and a live plan) exit non-zero. */
export function problems(f: FleetFacts): string[] {
  return f.clusters.flatMap((c) => [
    ...apiProblem(c),
    ...c.nodes.filter((n) => n.error).map((n) => `${c.name}/${n.name}: ${n.error}`),
  ])
}

/** What `inventory` could not read, counted for its last line: `could not read 7 nodes and the API of 1 cluster: …`. */
export function unreadCount(f: FleetFacts): string | undefined {
  const n = f.clusters.reduce((k, c) => k + c.nodes.filter((x) => x.error).length, 0)
  const apis = f.clusters.filter((c) => c.error).length
  const parts = [...(n ? [`${n} node${n === 1 ? '' : 's'}`] : []), ...(apis ? [`the API of ${apis} cluster${apis === 1 ? '' : 's'}`] : [])]
  return parts.length ? `could not read ${parts.join(' and ')}: the reasons are above` : undefined
}

/**
 * `problems` for people: nodes of a cluster that failed the same way — the same message but for the node's own name
 * and address, as a missing SSH key fails every node — are said once, with the others named after it. A plan of a
 * hundred nodes and no ssh-agent is one line to read, not a hundred identical ones. API errors are grouped the same way
 * across clusters (the same message but for the cluster's name: a kubeconfig with none of the fleet's contexts in it),
 * said where the first of them would be.
 */
export function groupedProblems(f: FleetFacts): string[] {
  const api = sameButFor(f.clusters.filter((c) => c.error).map((c) => ({ name: c.name, text: c.error!, own: [c.name] })))
  return f.clusters.flatMap((c) => {
    const nodes = nodeErrorGroups(c)
    const apiLine = api.find((g) => g.first === c.name)
    return [
      ...(apiLine ? [`${c.name}: API: ${apiLine.text}${sameFor(apiLine.others, 'cluster')}`] : []),
      ...nodes.map((g) => `${c.name}/${g.first}: ${g.text}${sameFor(g.others, 'node', c.name)}`),
    ]
  })
}

const nodeErrorGroups = (c: ClusterFacts) => sameButFor(c.nodes.filter((n) => n.error).map((n) => ({ name: n.name, text: n.error!, own: [n.host, n.name] })))

export const skewMarkers = (f: FleetFacts): (SkewMarker & { cluster: string })[] =>
  f.clusters.flatMap((c) => c.nodes.flatMap((n) => nodeSkew(c, n).map((s) => ({ ...s, cluster: c.name }))))

export function renderLiveStateText(f: FleetFacts): string {
  return `Live state (read ${f.gatheredAt}, ${f.durationMs} ms)\n\n${renderInventory(f)}`
}

const md = (s: string) => s.replace(/\|/g, '\\|')

export function renderLiveStateMarkdown(f: FleetFacts): string {
  const out = [`### Live state`, '', `Read ${f.gatheredAt} in ${f.durationMs} ms.`, '']
  for (const c of f.clusters) {
    out.push(`#### ${c.name} (${c.distribution})`, '', `- apiserver: ${md(apiservers(c))}`)
    if (c.error) out.push(`- :x: API: ${md(c.error)}`)
    const drift = fromDisagreement(c)
    if (drift && drift.kind !== 'same') out.push(`- ${drift.kind === 'mismatch' ? ':x:' : ':warning:'} ${md(drift.message)}`)
    if (c.etcdMembers) out.push(`- etcd members: ${c.etcdMembers.map((m) => m.name).join(', ') || 'none found'}`)
    if (c.unlistedNodes.length) out.push(`- nodes in the API but not in the plan: ${md(unlistedText(c))}`)
    if (c.runLock) out.push(`- :lock: ${md(runLockText(c.runLock))}`)
    const r = rows(c)
    out.push('', `| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...r.rows.map((row) => `| ${row.map(md).join(' | ')} |`), '')
    for (const n of r.notes) out.push(`- ${md(n.trim())}`)
    if (r.notes.length) out.push('')
  }
  return `${out.join('\n').trimEnd()}\n`
}
