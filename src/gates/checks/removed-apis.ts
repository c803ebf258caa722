import { parseKubeVersion } from '../../plan/versions.js'
import type { List } from '../../transport/kubectl/client.js'
import { errorText, verdict, type Finding } from '../evidence.js'
import { parsePrometheus, type Sample } from '../read/prom.js'
import { REMOVED_APIS, type RemovedApi } from '../removed-apis-table.js'
import type { Gate } from '../types.js'

export type RemovedApisParams = Record<string, never>

const minor = (v: string) => Number(v.split('.')[1])
const gv = (a: Pick<RemovedApi, 'group' | 'version'>) => (a.group ? `${a.group}/${a.version}` : a.version)

export interface ObjectMeta { name?: string; namespace?: string; annotations?: Record<string, string>; managedFields?: { manager?: string; operation?: string; apiVersion?: string }[] }

/**
 * The clients the apiserver saw asking for a version removed between the two minors: its
 * `apiserver_requested_deprecated_apis` gauge (STABLE; labels group, version, resource, subresource, removed_release).
 * The apiserver's own `removed_release` decides, so versions the shipped table does not know are caught too.
 */
export function requestedRemovedApis(samples: Sample[], from: number, to: number): Finding[] {
  return samples
    .filter((s) => s.name === 'apiserver_requested_deprecated_apis' && s.value > 0)
    .filter((s) => { const r = minor(s.labels.removed_release ?? ''); return r > from && r <= to })
    .map((s) => {
      const what = `${s.labels.resource}${s.labels.subresource ? `/${s.labels.subresource}` : ''}.${gv({ group: s.labels.group ?? '', version: s.labels.version ?? '' })}`
      const a = REMOVED_APIS.find((x) => x.group === (s.labels.group ?? '') && x.version === s.labels.version && x.resource === s.labels.resource)
      return { status: 'fail' as const, source: 'kubectl get --raw /metrics: apiserver_requested_deprecated_apis', observed: `${what} requested since the apiserver started (removed_release ${s.labels.removed_release})`, problem: `a client uses ${what}, removed in ${s.labels.removed_release}: migrate it to ${a?.replacement ?? 'a served version'}` }
    })
}

/**
 * Objects whose manifests were written against a removed version: the apiVersion of their
 * `kubectl.kubernetes.io/last-applied-configuration` (kubectl apply) or of a server-side-apply managedFields entry.
 * Re-applying those manifests fails once the version is gone (what kubent and pluto look for). The stored object
 * itself survives the upgrade in the storage version, so an object merely readable through a removed version is no
 * finding: every cluster's own FlowSchemas are readable through flowcontrol v1beta3 until 1.32.
 */
export function objectsOnRemovedApis(items: { metadata?: ObjectMeta }[], removed: RemovedApi[], source: string): Finding[] {
  const out: Finding[] = []
  for (const o of items) {
    const m = o.metadata ?? {}
    const id = `${m.namespace ? `${m.namespace}/` : ''}${m.name}`
    let applied: string | undefined
    try {
      applied = (JSON.parse(m.annotations?.['kubectl.kubernetes.io/last-applied-configuration'] ?? 'null') as { apiVersion?: string } | null)?.apiVersion
    } catch { /* an annotation that is not JSON says nothing about the version */ }
    const ssa = (m.managedFields ?? []).find((f) => f.operation === 'Apply' && removed.some((a) => gv(a) === f.apiVersion))
    const hit = removed.find((a) => gv(a) === applied) ?? (ssa ? removed.find((a) => gv(a) === ssa.apiVersion) : undefined)
    if (!hit) continue
    const how = gv(hit) === applied ? `last-applied-configuration apiVersion ${applied}` : `server-side apply by ${ssa!.manager} as ${ssa!.apiVersion}`
    out.push({ status: 'fail', source, observed: `${hit.resource} ${id}: ${how}`, problem: `${hit.resource} ${id} is applied as ${gv(hit)}, removed in ${hit.removedIn}: re-apply its manifest as ${hit.replacement ?? 'a served version'}` })
  }
  return out
}

/**
 * APIs the target no longer serves that this cluster still uses (as talosctl and EKS upgrade insights warn): clients
 * the apiserver saw requesting them (its deprecated-API gauge) and objects whose manifests use them. The gate never
 * asks for a removed version itself: that request would set the gauge it reads.
 */
export const removedApisGate: Gate<RemovedApisParams> = {
  id: 'removed-apis',
  async check(ctx) {
    const current = parseKubeVersion(ctx.facts?.apiserverVersions[0]?.version ?? (await ctx.kubectl.version()).gitVersion)
    const target = parseKubeVersion(ctx.expectedVersion ?? '')
    if (!current) return verdict('removed-apis', [{ status: 'unknown', source: '/version', observed: 'unparseable apiserver version', problem: 'apiserver version unknown' }], { ok: '' })
    const to = target?.minor ?? current.minor
    const inRange = REMOVED_APIS.filter((a) => minor(a.removedIn) > current.minor && minor(a.removedIn) <= to)
    const findings: Finding[] = []
    const range = `v1.${current.minor} → v1.${to}`
    if (to <= current.minor) {
      findings.push({ status: 'pass', source: 'removed-API table', observed: `no API removals between ${range}` })
      return verdict('removed-apis', findings, { ok: `no API is removed between ${range}` })
    }
    const metrics = await ctx.kubectl.run(['get', '--raw', '/metrics']).then(parsePrometheus, (err: unknown) => errorText(err))
    if (typeof metrics === 'string') findings.push({ status: 'warn', source: 'kubectl get --raw /metrics', observed: metrics, problem: 'apiserver_requested_deprecated_apis unreadable: clients using removed APIs cannot be seen (objects only)' })
    else {
      const used = requestedRemovedApis(metrics, current.minor, to)
      findings.push(...used)
      if (!used.length) findings.push({ status: 'pass', source: 'kubectl get --raw /metrics: apiserver_requested_deprecated_apis', observed: `no requests to API versions removed between ${range}` })
    }
    // Each resource once, through the version kubectl prefers (never the removed one).
    const resources = [...new Map(inRange.map((a) => [`${a.resource}.${a.group}`, a])).values()]
    for (const a of resources) {
      const what = a.group ? `${a.resource}.${a.group}` : a.resource
      const source = `kubectl get ${what} -A -o json`
      const list = await ctx.kubectl.json<List<{ metadata?: ObjectMeta }>>(['get', what, '--all-namespaces', '-o', 'json']).catch((err: unknown) => errorText(err))
      if (typeof list === 'string') {
        // The resource is served in no version at all (removed without a successor, as PodSecurityPolicy): nothing to re-apply.
        if (/doesn't have a resource type/.test(list)) continue
        findings.push({ status: 'unknown', source, observed: list, problem: `${what} unreadable` })
        continue
      }
      const hits = objectsOnRemovedApis(list.items ?? [], inRange.filter((x) => x.resource === a.resource && x.group === a.group), source)
      findings.push(...hits)
      if (!hits.length) findings.push({ status: 'pass', source, observed: `${(list.items ?? []).length} ${a.resource}, none applied through a version removed between ${range}` })
    }
    return verdict('removed-apis', findings, { ok: `no client or manifest uses an API removed between ${range}`, hint: 'migrate manifests and clients (kubectl convert, helm chart upgrades) before the apiserver stops serving them' })
  },
}
