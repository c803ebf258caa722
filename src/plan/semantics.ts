import type { Problem } from '../errors.js'
import { CUSTOM_GATES, DEFAULT_GATES, GATE_IDS, gateById, type GateScope } from '../gates/catalog.js'
import { workerBatches } from '../planner/batches.js'
import { planHops, releaseListFor } from '../planner/hops.js'
import { defaultReleases, releaseStatus } from './releases.js'
import { formatPath, type Locator, type Path } from './locate.js'
import { canonicalHost, cidrProblem } from './network.js'
import { isDnsLabel, isDnsSubdomain, isHost, labelMessage, subdomainMessage } from './names.js'
import { closest, didYouMean } from './suggest.js'
import { coreOf, parseKubeVersion, parsePackageVersion, versionFlaw, type Distribution } from './versions.js'
import { zodProblems } from './zod-problems.js'
import { parseDuration } from '../util/duration.js'

type Raw = Record<string, unknown>
const obj = (v: unknown): Raw | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Raw) : undefined)
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)

/**
 * Checks the schema cannot express: references between stages and clusters, uniqueness, versions and hops, names
 * that are safe everywhere, gates and their parameters. Works on the raw document so it can report alongside shape
 * errors; every check tolerates missing or mistyped fields (the schema pass reports those).
 */
export function checkSemantics(doc: Raw, ctx: { file: string; locator: Locator }): Problem[] {
  const problems: Problem[] = []
  const clusterAt = (path: Path): string | undefined =>
    path[0] === 'spec' && path[1] === 'clusters' && typeof path[2] === 'number' ? str(obj(arr(obj(doc.spec)?.clusters)[path[2]])?.name) : undefined
  const add = (path: Path, message: string, severity: Problem['severity'] = 'error', key = false, alsoGate?: Problem['alsoGate']) => {
    const cluster = clusterAt(path)
    problems.push({ file: ctx.file, ...ctx.locator.at(path, { key }), message: `${formatPath(path)}: ${message}`, severity, ...(alsoGate ? { alsoGate } : {}), ...(cluster !== undefined ? { cluster } : {}) })
  }

  const metaName = str(obj(doc.metadata)?.name)
  if (metaName && !isDnsLabel(metaName)) add(['metadata', 'name'], labelMessage('name', metaName))

  const spec = obj(doc.spec)
  if (!spec) return problems
  const clusters = arr(spec.clusters)
  const stages = arr(spec.stages)
  const target = obj(spec.target) ?? {}

  // Clusters, nodes, hosts.
  const clusterNames = new Map<string, number>()
  // The plain versions (v1.29.8) some cluster's hops go through, to find via entries nothing uses.
  const hopCores = new Set<string>()
  let allHopsKnown = true
  const hostSeen = new Map<string, Path>()
  const warnedUnreleased = new Set<Distribution>()
  clusters.forEach((c, ci) => {
    const cluster = obj(c)
    if (!cluster) return
    const name = uniqueLabel('cluster', 'clusters', ci, cluster.name, clusterNames)
    const nodeNames = new Map<string, number>()
    let controlPlanes = 0
    const nodes = arr(cluster.nodes)
    nodes.forEach((n, ni) => {
      const node = obj(n)
      if (!node) return
      const base: Path = ['spec', 'clusters', ci, 'nodes', ni]
      const nodeName = str(node.name)
      if (nodeName !== undefined) {
        if (!isDnsSubdomain(nodeName)) add([...base, 'name'], subdomainMessage('node name', nodeName))
        if (nodeNames.has(nodeName)) add([...base, 'name'], `duplicate node name "${nodeName}" in cluster ${name ?? ci} (also nodes[${nodeNames.get(nodeName)}])`)
        else nodeNames.set(nodeName, ni)
      }
      const host = str(node.host)
      if (host !== undefined && host !== '') {
        if (!isHost(host)) add([...base, 'host'], `host ${JSON.stringify(host)} is not a hostname or an IP address (use letters, digits, '-' and '.', or an IPv4/IPv6 address)`)
        else {
          const port = node.port ?? obj(node.ssh)?.port ?? obj(cluster.ssh)?.port ?? 22
          const key = `${canonicalHost(host)}:${String(port)}`
          const prev = hostSeen.get(key)
          if (prev) add([...base, 'host'], `duplicate host ${host}${port === 22 ? '' : ` port ${String(port)}`} (also ${formatPath(prev)})`)
          else hostSeen.set(key, [...base, 'host'])
        }
      }
      const jump = str(obj(node.ssh)?.proxyJump)
      if (jump !== undefined) checkJump(jump, [...base, 'ssh', 'proxyJump'])
      checkUser(obj(node.ssh)?.user, [...base, 'ssh', 'user'])
      if (node.role === 'control-plane') controlPlanes++
    })
    const jump = str(obj(cluster.ssh)?.proxyJump)
    if (jump !== undefined) checkJump(jump, ['spec', 'clusters', ci, 'ssh', 'proxyJump'])
    checkUser(obj(cluster.ssh)?.user, ['spec', 'clusters', ci, 'ssh', 'user'])
    const cidr = str(cluster.serviceCIDR)
    const cidrWhy = cidr !== undefined && cidr !== '' ? cidrProblem(cidr) : undefined
    if (cidrWhy) add(['spec', 'clusters', ci, 'serviceCIDR'], `serviceCIDR ${JSON.stringify(cidr)} ${cidrWhy}`)
    const endpoint = str(cluster.apiEndpoint)
    const endpointWhy = endpoint === undefined ? undefined : endpointProblem(endpoint)
    if (endpointWhy) add(['spec', 'clusters', ci, 'apiEndpoint'], endpointWhy)
    // A misspelt role (master, Worker) is reported by the shape pass, with a suggestion; "no control-plane" would be noise.
    const rolesReadable = nodes.every((n) => obj(n)?.role === 'control-plane' || obj(n)?.role === 'worker')
    if (nodes.length > 0 && controlPlanes === 0 && rolesReadable) add(['spec', 'clusters', ci, 'nodes'], `cluster ${name ?? ci} has no control-plane node: list at least one node with role: control-plane`)
    else if (controlPlanes > 0 && (controlPlanes < 3 || controlPlanes % 2 === 0)) {
      add(['spec', 'clusters', ci, 'nodes'], `cluster ${name ?? ci} has ${controlPlanes} control-plane node${controlPlanes === 1 ? '' : 's'}: ${controlPlanes === 1 ? 'a single point of failure during the upgrade' : controlPlanes === 2 ? 'taking either down for its upgrade leaves etcd without quorum' : 'an even count tolerates no more failures than one fewer'} (control-plane-ha gate)`, 'warning', false, name === undefined ? undefined : { gate: 'control-plane-ha', cluster: name })
    }

    // Versions and hops.
    const dist = str(cluster.distribution) as Distribution | undefined
    const from = str(cluster.from)
    // An unreadable target or via version is reported once below, not again for every cluster.
    const targetReadable = typeof target.kubernetes !== 'string' || readableVersion(target.kubernetes)
    const fromFlaw = from === undefined ? undefined : versionFlaw(from)
    if (from !== undefined && fromFlaw) {
      allHopsKnown = false
      add(['spec', 'clusters', ci, 'from'], `${JSON.stringify(from)} is not a Kubernetes version: ${fromFlaw}`)
    } else if (from !== undefined && dist && ['k0s', 'k3s', 'kubeadm'].includes(dist) && targetReadable) {
      const result = planHops(dist, from, {
        kubernetes: str(target.kubernetes),
        via: arr(target.via).filter((v): v is string => typeof v === 'string'),
        releases: arr(target.releases).filter((v): v is string => typeof v === 'string'),
        k3s: str(target.k3s), k0s: str(target.k0s), kubeadm: str(target.kubeadm),
      })
      if (!result.ok) {
        allHopsKnown = false
        const path: Path = result.field === 'from' ? ['spec', 'clusters', ci, 'from'] : result.field === 'via' ? ['spec', 'target', 'via'] : ['spec', 'target', 'kubernetes']
        if (result.field === 'from') add(path, result.message)
        else if (result.field === 'via' && target.via === undefined) {
          // No via at all: point at the target that skips the minors, where via belongs.
          problems.push({ file: ctx.file, ...ctx.locator.at(['spec', 'target', 'kubernetes']), message: `spec.target: cluster ${name ?? ci}: ${result.message}`, severity: 'error' })
        } else add(path, `cluster ${name ?? ci}: ${result.message}`)
      } else {
        for (const hop of result.hops) hopCores.add(hop.to.kubernetes)
        const last = result.hops[result.hops.length - 1]
        if (last) unreleased(dist, last.to.release)
      }
    } else allHopsKnown = false
  })

  // Target versions.
  const osPackages = obj(target.os)?.packages
  arr(osPackages).forEach((p, i) => {
    // Package names reach apt/dnf as arguments: a leading '-' would be read as an option.
    if (typeof p === 'string' && p !== '' && !PACKAGE_NAME.test(p)) add(['spec', 'target', 'os', 'packages', i], `${JSON.stringify(p)} is not a package name (letters, digits and + . _ - : = ~, starting with a letter or digit)`)
  })
  const kube = str(target.kubernetes)
  if (kube !== undefined && !readableVersion(kube)) add(['spec', 'target', 'kubernetes'], `${JSON.stringify(kube)} is not a Kubernetes version (${versionFlaw(kube) ?? 'expected e.g. v1.30.4'})`)
  else if (kube !== undefined && parseKubeVersion(kube)?.pre) add(['spec', 'target', 'kubernetes'], `${kube} is a pre-release: pre-releases are for testing, never for clusters that matter`, 'warning')
  if (target.kubernetes === undefined && target.os === undefined && obj(spec.target)) add(['spec', 'target'], 'nothing to upgrade: set target.kubernetes, target.os, or both')
  const viaParsed = arr(target.via).map((v) => (typeof v === 'string' && readableVersion(v) ? parseKubeVersion(v) : undefined))
  arr(target.via).forEach((v, i) => {
    if (typeof v === 'string' && !viaParsed[i]) add(['spec', 'target', 'via', i], `${JSON.stringify(v)} is not a Kubernetes version (${versionFlaw(v) ?? 'expected e.g. v1.29.8'})`)
  })
  arr(target.releases).forEach((v, i) => {
    if (typeof v === 'string' && !parseKubeVersion(v)) add(['spec', 'target', 'releases', i], `"${v}" is not a Kubernetes version (expected e.g. v1.35.1 or v1.35.1+k3s1)`)
  })
  if (allHopsKnown && clusters.length > 0) {
    viaParsed.forEach((v, i) => {
      if (!v || hopCores.has(`v${coreOf(v)}`)) return
      const later = viaParsed.find((w) => w && w.major === v.major && w.minor === v.minor && hopCores.has(`v${coreOf(w)}`))
      add(['spec', 'target', 'via', i], later
        ? `${v.raw} is not used: ${later.raw} is the later patch of ${v.major}.${v.minor}, and hops go to the latest one listed`
        : `${v.raw} is not used: no cluster passes through ${v.major}.${v.minor} on its way to the target`, 'warning')
    })
  }
  const kubeVersion = kube ? parseKubeVersion(kube) : undefined
  for (const dist of ['k3s', 'k0s'] as const) {
    const explicit = str(target[dist])
    if (explicit === undefined) continue
    const v = readableVersion(explicit) ? parseKubeVersion(explicit) : undefined
    if (!v || v.dist !== dist) add(['spec', 'target', dist], `${JSON.stringify(explicit)} is not a ${dist} release (${versionFlaw(explicit) ?? `expected e.g. ${dist === 'k3s' ? 'v1.30.4+k3s2' : 'v1.30.4+k0s.1'}`})`)
    else if (kubeVersion && `${v.major}.${v.minor}.${v.patch}` !== `${kubeVersion.major}.${kubeVersion.minor}.${kubeVersion.patch}`) {
      add(['spec', 'target', dist], `${explicit} does not match target.kubernetes ${kube}`)
    }
  }
  const pkg = str(target.kubeadm)
  if (pkg !== undefined) {
    const p = pkg === pkg.trim() ? parsePackageVersion(pkg) : undefined
    if (!p) add(['spec', 'target', 'kubeadm'], `${JSON.stringify(pkg)} is not a kubeadm package version (expected e.g. 1.30.4-1.1${pkg === pkg.trim() ? '' : ', without spaces around it'})`)
    else if (kubeVersion && p.core !== `${kubeVersion.major}.${kubeVersion.minor}.${kubeVersion.patch}`) add(['spec', 'target', 'kubeadm'], `${pkg} does not match target.kubernetes ${kube}`)
  }

  // Stages reference clusters exactly once.
  const stageNames = new Map<string, number>()
  const placed = new Map<string, Path>()
  const misspelt = new Set<string>()
  stages.forEach((s, si) => {
    const stage = obj(s)
    if (!stage) return
    const name = uniqueLabel('stage', 'stages', si, stage.name, stageNames)
    arr(stage.clusters).forEach((c, i) => {
      if (typeof c !== 'string') return
      const path: Path = ['spec', 'stages', si, 'clusters', i]
      if (!clusterNames.has(c)) {
        const suggestion = closest(c, [...clusterNames.keys()])
        // "alhpa" (did you mean "alpha"?) already tells the user where alpha belongs: no separate "alpha is in no stage".
        if (suggestion !== undefined) misspelt.add(suggestion)
        add(path, `stage ${name ?? si} names cluster "${c}", which is not in spec.clusters${didYouMean(c, [...clusterNames.keys()])}`)
      }
      else if (placed.has(c)) add(path, `cluster "${c}" is already in ${formatPath(placed.get(c)!)}: a cluster belongs to exactly one stage`)
      else placed.set(c, path)
    })
  })
  // When a stage's cluster list is unreadable (the shape pass reports it), "in no stage" would only be noise.
  const stagesReadable = stages.every((s) => Array.isArray(obj(s)?.clusters))
  for (const [name, ci] of clusterNames) {
    if (!placed.has(name) && !misspelt.has(name) && stages.length > 0 && stagesReadable) add(['spec', 'clusters', ci, 'name'], `cluster "${name}" is in no stage: add it to one of spec.stages, or remove it`)
  }

  // Gates.
  const gates = obj(spec.gates) ?? {}
  const scopeOf: Record<string, GateScope> = { pre: 'cluster', post: 'cluster', beforeNode: 'node', afterNode: 'node' }
  const listedAt = new Map<string, Path>()
  for (const list of Object.keys(DEFAULT_GATES)) {
    const listed = new Map<string, number>()
    arr(gates[list]).forEach((entry, i) => {
      const base: Path = ['spec', 'gates', list, i]
      let id: string | undefined
      let params: unknown = {}
      let paramPath: Path = base
      if (typeof entry === 'string') id = entry
      else if (obj(entry)) {
        const keys = Object.keys(obj(entry)!)
        if (keys.length !== 1) return add(base, `a gate entry with parameters is a map of exactly one gate id, e.g. { certificates: { minValidity: 30d } }; got ${keys.length} keys`)
        id = keys[0]!
        params = obj(entry)![id] ?? {}
        paramPath = [...base, id]
      } else return
      // Listed twice, the gate would run twice, and with parameters the two entries would disagree on which holds.
      // Custom gates (command, http, prometheus) are the exception: each entry is a different check.
      if (listed.has(id) && !(CUSTOM_GATES as readonly string[]).includes(id)) add(base, `gate "${id}" is listed twice in spec.gates.${list} (also [${listed.get(id)}]): list each gate once`)
      else listed.set(id, i)
      const gate = gateById(id)
      if (!gate) return add(typeof entry === 'string' ? base : paramPath, `unknown gate "${id}"${didYouMean(id, GATE_IDS)}; built-in gates: ${GATE_IDS.join(', ')}`, 'error', typeof entry !== 'string')
      if (!listedAt.has(id)) listedAt.set(id, base)
      if (!gate.scopes.includes(scopeOf[list]!)) {
        add(base, gate.scopes.includes('cluster')
          ? `gate "${id}" checks the whole cluster and cannot run in ${list}: use it in pre or post`
          : `gate "${id}" checks one node and cannot run in ${list}: use it in beforeNode or afterNode`)
      }
      const parsed = gate.params.safeParse(params)
      if (!parsed.success) {
        problems.push(...zodProblems(ctx.file, parsed.error.issues, doc, gate.params, ctx.locator, paramPath))
      } else checkParamBounds(obj(params) ?? {}, paramPath)
    })
  }

  // gates.skip: the only way a default gate is turned off, so it must name a default, once, with a reason.
  const skipped = new Map<string, number>()
  arr(gates.skip).forEach((entry, i) => {
    const id = str(obj(entry)?.gate)
    if (id === undefined) return
    const path: Path = ['spec', 'gates', 'skip', i, 'gate']
    const defaultIn = Object.entries(DEFAULT_GATES).filter(([, ids]) => (ids as readonly string[]).includes(id)).map(([l]) => l)
    if (!gateById(id)) return add(path, `unknown gate "${id}"${didYouMean(id, GATE_IDS)}; built-in gates: ${GATE_IDS.join(', ')}`)
    if (defaultIn.length === 0) return add(path, `gate "${id}" is not on by default, so there is nothing to skip: remove this entry (and the gate from any list)`)
    if (skipped.has(id)) return add(path, `gate "${id}" is skipped twice (also gates.skip[${skipped.get(id)}]): keep one entry`)
    skipped.set(id, i)
    const at = listedAt.get(id)
    if (at) add(path, `gate "${id}" is both skipped and listed at ${formatPath(at)}: remove one (a listed default gate only changes its parameters)`)
  })

  // Strategy sanity.
  const workersCount = clusters.reduce<number>((n, c) => Math.max(n, arr(obj(c)?.nodes).filter((x) => obj(x)?.role === 'worker').length), 0)
  const canary = obj(obj(spec.strategy)?.workers)?.canary
  if (typeof canary === 'number' && workersCount > 0 && canary > workersCount) {
    add(['spec', 'strategy', 'workers', 'canary'], `canary ${canary} is more than the largest cluster's ${workersCount} workers`, 'warning')
  }
  // A batch of every worker where the control plane takes no workloads (kubeadm and k0s taint or keep it apart): the
  // pods the drains evict have nowhere to go. Told at review; the capacity pre-gate judges it on the live cluster.
  const maxUnavailable = obj(obj(spec.strategy)?.workers)?.maxUnavailable ?? 1
  if (typeof maxUnavailable === 'number' || typeof maxUnavailable === 'string') {
    clusters.forEach((c, ci) => {
      const cluster = obj(c)
      const dist = str(cluster?.distribution)
      const workers = arr(cluster?.nodes).filter((x) => obj(x)?.role === 'worker')
      if ((dist !== 'kubeadm' && dist !== 'k0s') || workers.length < 2) return
      if (workerBatches(workers, maxUnavailable, typeof canary === 'number' ? canary : 1).length !== 1) return
      const name = str(cluster?.name)
      add(['spec', 'strategy', 'workers', 'maxUnavailable'], `cluster ${name ?? ci}: all ${workers.length} workers are drained at once (maxUnavailable ${maxUnavailable}, canary ${typeof canary === 'number' ? canary : 1}): their pods need room on the control-plane nodes, which ${dist} keeps workloads off (capacity gate)`, 'warning', false, name === undefined ? undefined : { gate: 'capacity', cluster: name })
    })
  }
  return problems

  /** Sizes and durations in gate parameters have sane maxima: `minFree: 99999999Ti` or `timeout: 9999999d` is a typo. */
  function checkParamBounds(params: Raw, path: Path) {
    for (const [key, value] of Object.entries(params)) {
      if (typeof value !== 'string') continue
      const size = SIZE.exec(value)
      if (size && (size[2] !== undefined || key === 'minFree')) {
        const bytes = Number(size[1]) * (SIZE_UNITS[size[2] ?? ''] ?? 1)
        if (!(bytes <= MAX_SIZE_BYTES)) add([...path, key], `${value} is more than 1Pi, larger than any node's disk: a typo?`)
        continue
      }
      const ms = parseDuration(value)
      if (ms !== undefined && !(ms <= MAX_GATE_DURATION_MS)) add([...path, key], `${value} is more than 400d: a typo?`)
    }
  }

  /** The target must be a release the distribution shipped; the list may be stale, so this warns (upgrade-path fails live). */
  function unreleased(dist: Distribution, release: string) {
    if (warnedUnreleased.has(dist)) return
    const v = parseKubeVersion(release)
    const extra = arr(target.releases).filter((x): x is string => typeof x === 'string')
    const status = v ? releaseStatus(releaseListFor(defaultReleases(), dist, extra), dist, v) : undefined
    if (!status || status.released) return
    warnedUnreleased.add(dist)
    add(['spec', 'target', 'kubernetes'], `${dist} ${release} is not a known release: ${status.reason}; if it was released since (or your mirror has it), list it in spec.target.releases or in the file KUPGRADE_RELEASES names`, 'warning')
  }

  function checkUser(user: unknown, path: Path) {
    // Login names reach ssh and sudo: POSIX portable user names, never starting with '-'.
    if (typeof user === 'string' && user !== '' && !USER_NAME.test(user)) add(path, `user ${JSON.stringify(user)} is not a login name (letters, digits, '.', '_' and '-', not starting with '-')`)
  }

  /** A stage's or cluster's name: a DNS-1123 label, unique in its list. Returns it when it is a string. */
  function uniqueLabel(kind: string, list: string, index: number, value: unknown, seen: Map<string, number>): string | undefined {
    const name = str(value)
    if (name === undefined) return undefined
    const path: Path = ['spec', list, index, 'name']
    if (!isDnsLabel(name)) add(path, labelMessage(`${kind} name`, name))
    if (seen.has(name)) add(path, `duplicate ${kind} name "${name}" (also spec.${list}[${seen.get(name)}])`)
    else seen.set(name, index)
    return name
  }

  function checkJump(jump: string, path: Path) {
    // [user@]host[:port], possibly a comma-separated chain: every part must be a plain host, so it is safe to pass on.
    for (const hop of jump.split(',')) {
      // IPv6 bastions are written in brackets: [fd00::1]:22
      const m = /^(?:([A-Za-z0-9._][A-Za-z0-9._-]*)@)?(\[[0-9A-Fa-f:.]+\]|[^:@[\]]+)(?::(\d{1,5}))?$/.exec(hop)
      const host = m?.[2]?.replace(/^\[(.*)\]$/, '$1')
      const port = m?.[3] === undefined ? 22 : Number(m[3])
      if (!m || !host || !isHost(host) || port < 1 || port > 65535) {
        const what = jump.includes(',') ? `proxyJump ${JSON.stringify(jump)}: jump host ${JSON.stringify(hop)}` : `proxyJump ${JSON.stringify(jump)}`
        add(path, `${what} is not [user@]host[:port]${m && host && isHost(host) ? ` (port ${port} is out of range 1-65535)` : ''}`)
        return
      }
    }
  }
}

/** A version as written in a plan: exactly a release (no spaces around it, no leading zeros, numbers semver can order). */
const readableVersion = (text: string): boolean => versionFlaw(text) === undefined && parseKubeVersion(text) !== undefined

const SIZE = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$/
const SIZE_UNITS: Record<string, number> = { K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 }
const MAX_SIZE_BYTES = 2 ** 50
const MAX_GATE_DURATION_MS = 400 * 86_400_000

const USER_NAME = /^[A-Za-z0-9._][A-Za-z0-9._-]{0,63}$/
const PACKAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9+._:=~-]*$/

/**
 * An API endpoint is where kubectl and the gates connect: it needs a host, and must not carry a user name or password
 * (it is printed in plans and logs; credentials belong in the kubeconfig). The value itself is not echoed: it may
 * hold the password.
 */
function endpointProblem(text: string): string | undefined {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return undefined // the schema pass reports a value that is not a URL at all
  }
  if (url.username !== '' || url.password !== '') return 'apiEndpoint must not carry a user name or password (https://user:password@…): it is printed in plans and logs; put credentials in the kubeconfig'
  if (url.hostname === '' || url.hostname === '[]') return 'apiEndpoint needs a host, e.g. https://10.0.0.10:6443'
  return undefined
}
