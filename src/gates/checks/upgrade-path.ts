import { readApiFacts } from '../../facts/api-facts.js'
import type { ApiserverVersion } from '../../facts/types.js'
import { planHops } from '../../planner/hops.js'
import { defaultReleases, releaseStatus } from '../../plan/releases.js'
import { compareKubeVersions, parseKubeVersion, resolveDistributionVersion, type KubeVersion } from '../../plan/versions.js'
import type { Gate, GateEvidence, GateResult } from '../types.js'

/**
 * `upgrade-path`: from what the apiservers run now to the plan's target, the path goes one minor at a time (through
 * the latest patch of each skipped minor in the release list), never down, and ends at a release of the
 * distribution. The plan's hops were computed from its `from`: an apiserver older than `from` by a minor would make
 * the first hop skip one, so that fails too.
 *
 * A target the release list does not know is a warning, not a failure: the list is a snapshot (plan/releases.ts) and
 * a newer real release must not be blocked by it; KUPGRADE_RELEASES extends it.
 */
const INCIDENT = 'kubelet-kube-proxy-skew'

export const upgradePathGate: Gate<Record<string, never>> = {
  id: 'upgrade-path',
  async check(ctx) {
    let apiservers: ApiserverVersion[]
    let from: string | undefined
    let target = ctx.expectedVersion
    try {
      if (ctx.facts) {
        apiservers = ctx.facts.apiserverVersions
        from = ctx.facts.from || undefined
        target = ctx.facts.target ?? target
      } else {
        const a = await readApiFacts(ctx.kubectl, ctx.distribution)
        apiservers = [{ version: a.version, source: '/version' }, ...a.apiserverPods]
      }
    } catch (err) {
      return unknown(`could not read the apiserver version: ${(err as Error).message}`, [{ source: 'kubectl version', observed: (err as Error).message }])
    }
    const evidence: GateEvidence[] = apiservers.map((a) => ({ source: `kube-apiserver (${a.source}${a.node ? ` on ${a.node}` : ''})`, observed: a.version }))
    const running = apiservers.map((a) => parseKubeVersion(a.version)).filter((v): v is KubeVersion => v !== undefined)
    if (running.length === 0) return unknown('no kube-apiserver version could be read', evidence)
    if (!target) return { status: 'pass', summary: 'no Kubernetes target: nothing to upgrade', evidence, incident: INCIDENT }
    const to = parseKubeVersion(target)
    if (!to) return unknown(`the target ${JSON.stringify(target)} is not a Kubernetes version`, evidence)
    evidence.push({ source: 'target', observed: target })

    const sorted = [...running].sort(compareKubeVersions)
    const oldest = sorted[0]!
    const newest = sorted[sorted.length - 1]!
    const core = (v: KubeVersion) => ({ ...v, revision: undefined })
    if (compareKubeVersions(core(newest), core(to)) > 0) {
      return fail(`downgrade: kube-apiserver runs ${newest.raw}, newer than the target ${to.raw}; downgrades are not supported`, evidence, 'restore a backup to go back; never point a plan at an older version')
    }
    const planFrom = from ? parseKubeVersion(from) : undefined
    if (planFrom && planFrom.major === oldest.major && planFrom.minor > oldest.minor && to.minor > oldest.minor + 1) {
      return fail(`kube-apiserver runs ${oldest.raw}, a minor older than the plan's from ${from}: its first hop would skip ${oldest.major}.${oldest.minor + 1}`, evidence, `set from: ${oldest.raw} in the plan so its hops start where the cluster is`)
    }
    const path = planHops(ctx.distribution, oldest.raw.replace(/\+.*$/, ''), { kubernetes: target })
    if (!path.ok) return fail(path.message, evidence, 'list the missing minors in spec.target.via, or extend the release list with KUPGRADE_RELEASES')
    if (path.hops.length > 0) evidence.push({ source: 'path', observed: [oldest.raw, ...path.hops.map((h) => h.to.release)].join(' → ') })

    const release = resolveDistributionVersion(ctx.distribution, to).release
    const list = defaultReleases()
    const status = releaseStatus(list, ctx.distribution, parseKubeVersion(release)!)
    if (!status.released) {
      return { status: 'warn', summary: `${ctx.distribution} ${release} is not a known release: ${status.reason}`, evidence, hint: 'check that the release exists (and is mirrored); add it with KUPGRADE_RELEASES or spec.target.releases', incident: INCIDENT }
    }
    // Every apiserver already runs the target (a finished upgrade checked again): no path to judge, so none is told.
    if (path.hops.length === 0) return { status: 'pass', summary: `${oldest.raw}: already at the target ${release}, a released ${ctx.distribution} version`, evidence, incident: INCIDENT }
    return { status: 'pass', summary: `${oldest.raw} → ${release}: one minor at a time, ${path.hops.length} hop${path.hops.length === 1 ? '' : 's'}, a released ${ctx.distribution} version`, evidence, incident: INCIDENT }
  },
}

function fail(summary: string, evidence: GateEvidence[], hint: string): GateResult {
  return { status: 'fail', summary, evidence, hint, incident: INCIDENT }
}

function unknown(summary: string, evidence: GateEvidence[]): GateResult {
  return { status: 'unknown', summary, evidence, hint: 'check that kubectl reaches the cluster', incident: INCIDENT }
}
