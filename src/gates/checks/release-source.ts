import { CHANGE_REPOSITORY_DOCS } from '../../drivers/common/packages.js'
import { driverFor } from '../../drivers/registry.js'
import type { ReleaseFetch } from '../../planner/fetches.js'
import type { BinarySource } from '../../planner/types.js'
import { shellQuote } from '../../transport/quote.js'
import { parseDuration } from '../../util/duration.js'
import { nodesInScope } from '../context.js'
import { clip, verdict, type Finding } from '../evidence.js'
import { readNode, SCRIPT_ENV } from '../read/node.js'
import { sectionsOf } from '../read/sections.js'
import type { Gate } from '../types.js'

export interface ReleaseSourceParams { timeout: string }

const INCIDENT = 'kubelet-kube-proxy-skew'
const REBUILD = ' (what a rebuild of it reinstalls)'

/**
 * Before the first node changes, every node can get what its upgrade will fetch (k3s, k0s): its architecture's binary
 * and checksum list (an air-gapped k3s node: the release's images archive too) for every hop, from the plan's mirror,
 * the folder on the node, or the GitHub release the install script downloads from. Without it a mirror that lacks one
 * architecture, a folder not filled on one node, or a node without a route to GitHub stops the run at that node,
 * after the control plane and the nodes before it have moved: a cluster left in mixed versions (incident
 * kubelet-kube-proxy-skew: a half-done upgrade). What is checked is read off the planned replace-binary steps, a
 * rebuild's too (onFailure: rebuild): a rebuild that uninstalled a node and then found nothing to reinstall would lose
 * it. The script is the driver's, from the same file names and messages as the fetch (drivers/common/files.ts); it
 * reads the checksum list and one byte of each file, no more. kubeadm installs packages: each node whose steps switch
 * its pkgs.k8s.io repository from minor to minor must have a repository line the switch can move (not the legacy
 * Google-hosted repositories many older clusters still name, not another file): read off the planned switch-repo steps.
 */
export const releaseSourceGate: Gate<ReleaseSourceParams> = {
  id: 'release-source',
  async check(ctx, p) {
    const driver = driverFor(ctx.distribution)
    if (!driver.releaseSourceCheck && !driver.repositoryCheck) {
      return { status: 'pass', summary: `${ctx.distribution} has no release files or package repositories to check`, evidence: [{ source: 'plan', observed: `distribution ${ctx.distribution}` }], incident: INCIDENT }
    }
    const byNode = new Map<string, ReleaseFetch[]>()
    if (driver.releaseSourceCheck) for (const f of ctx.releaseFetches?.() ?? []) byNode.set(f.node, [...(byNode.get(f.node) ?? []), f])
    // kubeadm: the nodes whose steps switch the pkgs.k8s.io repository, and to which minors.
    const minors = new Map<string, string[]>()
    if (driver.repositoryCheck) for (const r of ctx.repoSwitches?.() ?? []) minors.set(r.node, [...(minors.get(r.node) ?? []), r.minor])
    const nodes = nodesInScope(ctx).filter((n) => byNode.has(n.name) || minors.has(n.name))
    if (nodes.length === 0) return { status: 'pass', summary: 'no node fetches a release or switches its package repository: nothing to check', evidence: [{ source: 'plan', observed: 'no replace-binary or switch-repo step' }], incident: INCIDENT }
    // Each node's findings, told in the plan's order of the nodes rather than the order they answered in.
    const perNode = nodes.map((): Finding[] => [])
    // Whether a package repository is what failed: the hint then says how to set one up, not where to put files.
    let repositoryFailed = false
    await Promise.all(nodes.map(async (n, i) => {
      const findings = perNode[i]!
      const fetches = byNode.get(n.name) ?? []
      const switches = minors.get(n.name)
      // One read per node, a section per release (and one for the repository): each in a subshell of its own, so one's
      // failure leaves the others told.
      const section = (name: string, lines: string[]) => [`echo @@${shellQuote(name)}`, `(\n${lines.join('\n')}\n) 2>&1`, 'echo "rc=$?"']
      const script = [
        SCRIPT_ENV,
        ...fetches.flatMap((f) => section(f.release, driver.releaseSourceCheck!(f))),
        ...(switches ? section(REPOSITORY, driver.repositoryCheck!(ctx.nodeFacts?.[n.name]?.packageManager)) : []),
      ].join('\n')
      const r = await readNode(ctx, n.target, { script }, { privileged: true, timeoutMs: parseDuration(p.timeout) ?? 60_000 })
      if (r.error) return void findings.push({ status: 'unknown', source: `node ${n.name}`, observed: r.error, problem: `${n.name} unreachable over SSH` })
      const sections = sectionsOf(r.stdout)
      const judge = (name: string, source: string, what: string, suffix = ''): Finding => {
        const s = ended(sections.get(name))
        const said = s?.lines.find((l) => l.startsWith('kupgrade: '))
        const f: Finding = !s
          ? { status: 'unknown', source, observed: clip(`${r.stdout}\n${r.stderr}`) || `exit ${r.exitCode}`, problem: `${n.name}: the check of ${what} did not finish` }
          : s.rc === 0
            ? { status: 'pass', source, observed: s.lines.filter((l) => l.startsWith('found ')).map((l) => l.slice(6)).join(', ') }
            : { status: 'fail', source, observed: clip(s.lines.join('\n')) || `exit ${s.rc}`, problem: `${n.name}: ${said ? said.slice('kupgrade: '.length) : `cannot get ${what}`}${suffix}` }
        findings.push(f)
        return f
      }
      for (const f of fetches) judge(f.release, `node ${n.name}: ${f.release}${f.rebuild ? REBUILD : ''} from ${describe(f.source)}`, f.release, f.rebuild ? REBUILD : '')
      if (switches && judge(REPOSITORY, `node ${n.name}: the Kubernetes package repository, to be switched to ${switches.join(', ')}`, 'its package repository').status !== 'pass') repositoryFailed = true
    }))
    const findings = perNode.flat()
    const all = [...byNode.values()].flat()
    const switched = [...new Set([...minors.values()].flat())]
    return verdict('release-source', findings, {
      ok: [
        ...(all.length ? [`every node can get ${[...new Set(all.map((f) => f.release))].join(', ')} for its architecture from ${[...new Set(all.map((f) => describe(f.source)))].join(', ')}`] : []),
        ...(switched.length ? [`every node's Kubernetes package repository is a pkgs.k8s.io one kupgrade can switch to ${switched.join(', ')}`] : []),
      ].join('; '),
      hint: repositoryFailed
        ? `point each node's \`kubernetes.list\` (apt) or \`kubernetes.repo\` (dnf) at its pkgs.k8s.io minor, as the Kubernetes install docs do (${CHANGE_REPOSITORY_DOCS}); then run again`
        : "put each node's architecture's files of the release where the plan's install points (laid out as the GitHub release: the binary, its checksum list, an air-gapped k3s node's images archive), or give the node its route there; then run again",
    })
  },
}

/** The section of a node's read that checks its package repository (no release is named so). */
const REPOSITORY = 'repository'

/** Where the releases come from, in the plan's words. */
function describe(source: BinarySource): string {
  if (source.kind === 'mirror') return `install.mirror ${source.base}`
  if (source.kind === 'path') return `install.path ${source.dir} on the node`
  return "the install script and its GitHub release"
}

/** A section's lines and the exit code of its check (its last line, `rc=N`); undefined if it never got there. */
function ended(section: string | undefined): { lines: string[]; rc: number } | undefined {
  const m = section === undefined ? null : /(?:^|\n)rc=(\d+)$/.exec(section)
  if (!m) return undefined
  return { lines: section!.slice(0, m.index).split('\n').filter((l) => l.trim()), rc: Number(m[1]) }
}
