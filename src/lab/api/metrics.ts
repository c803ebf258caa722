import type { ClusterModel } from '../fleet/cluster.js'
import { kubeletVersion } from '../versions.js'

/**
 * The apiserver's /metrics, in the Prometheus text format (0.0.4) the real one writes: the few series kupgrade's
 * gates read. `apiserver_requested_deprecated_apis` is the STABLE gauge from k8s.io/apiserver/pkg/endpoints/metrics
 * (labels group, version, resource, subresource, removed_release; value 1 once a client asked for that deprecated
 * version since the apiserver started). Like client_golang, a metric with no series is left out entirely.
 */
type Labels = { group: string; version: string; resource: string; subresource: string; removed_release: string }
const requested = new WeakMap<ClusterModel, Map<string, Labels>>()

export function recordDeprecatedRequest(m: ClusterModel, l: Labels): void {
  let seen = requested.get(m)
  if (!seen) requested.set(m, (seen = new Map()))
  seen.set(`${l.group}/${l.version}/${l.resource}/${l.subresource}`, l)
}

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
/** Labels sorted by name, as client_golang writes them. */
const labelText = (l: Record<string, string>) => `{${Object.keys(l).sort().map((k) => `${k}="${esc(l[k]!)}"`).join(',')}}`

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

export function apiserverMetrics(m: ClusterModel): string {
  const v = kubeletVersion(m.distribution, m.apiServerVersion)
  const [major, minor] = m.apiServerVersion.slice(1).split('.')
  const lines = [
    "# HELP kubernetes_build_info [ALPHA] A metric with a constant '1' value labeled by major, minor, git version, git commit, git tree state, build date, Go version, and compiler from which Kubernetes was built, and platform on which it is running.",
    '# TYPE kubernetes_build_info gauge',
    `kubernetes_build_info${labelText({ build_date: '2024-01-01T00:00:00Z', compiler: 'gc', git_commit: 'kupgrade-lab', git_tree_state: 'clean', git_version: v, go_version: 'go1.22.5', major: major!, minor: minor!, platform: 'linux/amd64' })} 1`,
  ]
  const seen = [...(requested.get(m)?.values() ?? [])]
  if (seen.length) {
    lines.push('# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested, broken out by API group, version, resource, subresource, and removed_release.')
    lines.push('# TYPE apiserver_requested_deprecated_apis gauge')
    for (const l of seen.sort((a, b) => labelText(a).localeCompare(labelText(b)))) lines.push(`apiserver_requested_deprecated_apis${labelText(l)} 1`)
  }
  return `${lines.join('\n')}\n`
}
