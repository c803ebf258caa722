import type { ClusterModel } from '../fleet/cluster.js'
import { text, type Reply } from './http.js'

/**
 * `/healthz`, `/livez`, `/readyz` with `?verbose`, `?exclude=` and per-check paths (facts §4.4): 200 "ok" when every
 * check passes, 500 with `[-]etcd failed: reason withheld` under etcd-unhealthy.
 */
const CHECKS = [
  'ping', 'log', 'etcd', 'poststarthook/start-kube-apiserver-admission-initializer', 'poststarthook/generic-apiserver-start-informers',
  'poststarthook/start-apiextensions-informers', 'poststarthook/crd-informer-synced', 'poststarthook/bootstrap-controller',
  'poststarthook/rbac/bootstrap-roles', 'poststarthook/scheduling/bootstrap-system-priority-classes', 'poststarthook/apiservice-registration-controller',
]
const READY_ONLY = ['informer-sync', 'shutdown']

export function health(m: ClusterModel, path: string, query: URLSearchParams): Reply | undefined {
  const match = /^\/(healthz|livez|readyz)(?:\/(.+))?$/.exec(path)
  if (!match) return undefined
  const endpoint = match[1]!
  const checks = endpoint === 'readyz' ? [...CHECKS.slice(0, 3), ...READY_ONLY, ...CHECKS.slice(3)] : CHECKS
  const failing = (c: string) => c === 'etcd' && m.hasFault('etcd-unhealthy')
  if (match[2]) {
    if (!checks.includes(match[2])) return text('404 page not found\n', 404)
    return failing(match[2]) ? text('internal server error: etcd failed: reason withheld\n', 500) : text('ok')
  }
  const excluded = new Set(query.getAll('exclude'))
  const lines: string[] = []
  let ok = true
  for (const c of checks) {
    if (excluded.has(c)) {
      lines.push(`[+]${c} excluded: ok`)
      excluded.delete(c)
    } else if (failing(c)) {
      ok = false
      lines.push(`[-]${c} failed: reason withheld`)
    } else lines.push(`[+]${c} ok`)
  }
  if (excluded.size) lines.push(`warn: some health checks cannot be excluded: no matches for ${[...excluded].map((e) => `"${e}"`).join(',')}`)
  const verbose = query.has('verbose') || !ok
  lines.push(`${endpoint} check ${ok ? 'passed' : 'failed'}`)
  return text(verbose ? `${lines.join('\n')}\n` : 'ok', ok ? 200 : 500)
}
