import { parseKubeVersion } from '../../plan/versions.js'
import { errorText, verdict, type Finding } from '../evidence.js'
import { parsePrometheus } from '../read/prom.js'
import { REMOVED_APIS, type RemovedApi } from '../removed-apis-table.js'
import type { Gate } from '../types.js'

export type RemovedApisParams = Record<string, never>

const minor = (v: string) => Number(v.split('.')[1])
const gv = (a: RemovedApi) => (a.group ? `${a.group}/${a.version}` : a.version)

/**
 * APIs the target no longer serves that this cluster still uses (as talosctl and EKS upgrade insights warn). Two
 * sources: the apiserver's `apiserver_requested_deprecated_apis{removed_release}` gauge (a client asked for it since
 * the apiserver started: that client breaks after the upgrade → fail), and discovery (the version is still served
 * and objects of the resource exist: manifests may still be written against it → warn). Without /metrics (RBAC) only
 * discovery speaks, and the gate says so.
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
    if (inRange.length === 0) {
      findings.push({ status: 'pass', source: 'removed-API table', observed: `no API removals between ${range}` })
      return verdict('removed-apis', findings, { ok: `no API is removed between ${range}` })
    }
    const metrics = await ctx.kubectl.run(['get', '--raw', '/metrics']).then((t) => parsePrometheus(t).filter((s) => s.name === 'apiserver_requested_deprecated_apis'), (err: unknown) => errorText(err))
    if (typeof metrics === 'string') findings.push({ status: 'warn', source: 'kubectl get --raw /metrics', observed: metrics, problem: 'apiserver_requested_deprecated_apis unreadable: clients using removed APIs cannot be seen (discovery only)' })
    else {
      const used = metrics.filter((s) => s.value > 0 && inRange.some((a) => a.group === (s.labels.group ?? '') && a.version === s.labels.version && a.resource === s.labels.resource))
      for (const s of used) {
        const a = inRange.find((x) => x.group === (s.labels.group ?? '') && x.version === s.labels.version && x.resource === s.labels.resource)!
        findings.push({ status: 'fail', source: 'apiserver_requested_deprecated_apis', observed: `${s.labels.resource}.${gv(a)} requested (removed_release ${s.labels.removed_release ?? a.removedIn})`, problem: `a client uses ${s.labels.resource}.${gv(a)}, removed in 1.${minor(a.removedIn)}: migrate it to ${a.replacement ?? 'a served version'}` })
      }
      if (!used.length) findings.push({ status: 'pass', source: 'apiserver_requested_deprecated_apis', observed: `no requests to the ${inRange.length} API versions removed between ${range}` })
    }
    const served = await ctx.kubectl.run(['api-versions']).then((t) => new Set(t.split('\n').map((l) => l.trim())), (err: unknown) => errorText(err))
    if (typeof served === 'string') findings.push({ status: 'unknown', source: 'kubectl api-versions', observed: served, problem: 'API discovery unreadable' })
    else {
      const still = inRange.filter((a) => served.has(gv(a)))
      for (const a of still) {
        const names = await ctx.kubectl.run(['get', `${a.resource}.${a.version}.${a.group}`, '--all-namespaces', '-o', 'name']).catch(() => '')
        const n = names.split('\n').filter(Boolean).length
        if (n > 0) findings.push({ status: 'warn', source: `kubectl get ${a.resource}.${a.version}.${a.group} -A`, observed: `${n} object(s) readable through ${gv(a)}, removed in 1.${minor(a.removedIn)}`, problem: `${n} ${a.resource} served by ${gv(a)} (removed in 1.${minor(a.removedIn)}): re-apply manifests as ${a.replacement ?? 'a served version'}` })
      }
      findings.push({ status: 'pass', source: 'kubectl api-versions', observed: `${still.length} of the ${new Set(inRange.map(gv)).size} removed group-versions still served: ${[...new Set(still.map(gv))].join(', ') || 'none'}` })
    }
    return verdict('removed-apis', findings, { ok: `no client uses an API removed between ${range}`, hint: 'migrate manifests and clients (kubectl convert, helm chart upgrades) before the apiserver stops serving them' })
  },
}
