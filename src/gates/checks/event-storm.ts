import type { Event } from 'kubernetes-types/core/v1.js'
import type { List } from '../../transport/kubectl/client.js'
import { parseDuration } from '../../util/duration.js'
import { verdict, type Finding } from '../evidence.js'
import type { Gate } from '../types.js'

export interface EventStormParams { window: string; maxFailedScheduling: number; maxWarnings: number }

/**
 * No event storm (incident etcd-hpa-cascading-failure: an HPA cascade flooded etcd with events and 450 pods could
 * not be scheduled). Counts occurrences (an event's `count`, since the apiserver aggregates repeats) whose last
 * occurrence is within `window`: FailedScheduling and all Warning events, each against its maximum.
 */
export const eventStormGate: Gate<EventStormParams> = {
  id: 'event-storm',
  async check(ctx, p) {
    const windowMs = parseDuration(p.window) ?? 600_000
    const since = ctx.now().getTime() - windowMs
    const events = (await ctx.kubectl.json<List<Event>>(['get', 'events', '--all-namespaces', '-o', 'json'])).items ?? []
    const recent = events.filter((e) => Date.parse(e.series?.lastObservedTime ?? e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp ?? '') >= since)
    const times = (e: Event) => Math.max(1, e.series?.count ?? e.count ?? 1)
    const sched = recent.filter((e) => e.reason === 'FailedScheduling')
    const schedCount = sched.reduce((n, e) => n + times(e), 0)
    const warnings = recent.filter((e) => e.type === 'Warning')
    const warnCount = warnings.reduce((n, e) => n + times(e), 0)
    const top = (es: Event[]) => {
      const by = new Map<string, number>()
      for (const e of es) by.set(`${e.reason} ${e.involvedObject.kind}/${e.involvedObject.namespace ? `${e.involvedObject.namespace}/` : ''}${e.involvedObject.name}`, (by.get(`${e.reason} ${e.involvedObject.kind}/${e.involvedObject.namespace ? `${e.involvedObject.namespace}/` : ''}${e.involvedObject.name}`) ?? 0) + times(e))
      return [...by].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, v]) => `${k} ×${v}`).join('; ')
    }
    const source = `kubectl get events -A (last ${p.window})`
    const findings: Finding[] = [
      schedCount > p.maxFailedScheduling
        ? { status: 'fail', source, observed: `${schedCount} FailedScheduling: ${top(sched)}`, problem: `${schedCount} FailedScheduling events in ${p.window} (max ${p.maxFailedScheduling})` }
        : { status: 'pass', source, observed: `${schedCount} FailedScheduling (max ${p.maxFailedScheduling})` },
      warnCount > p.maxWarnings
        ? { status: 'fail', source, observed: `${warnCount} Warning events: ${top(warnings)}`, problem: `${warnCount} Warning events in ${p.window} (max ${p.maxWarnings})` }
        : { status: 'pass', source, observed: `${warnCount} Warning events (max ${p.maxWarnings})` },
    ]
    return verdict('event-storm', findings, { ok: `${schedCount} FailedScheduling, ${warnCount} warnings in ${p.window}`, hint: 'find the source of the storm (an HPA, a crash-looping controller) and let the cluster settle first' })
  },
}
