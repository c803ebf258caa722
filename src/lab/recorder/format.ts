import type { LabEvent } from './types.js'

/** One line per event for `kupgrade lab events` (text): time, cluster[/node], client, what. */
export function formatEvent(e: LabEvent): string {
  if (e.source === 'api') {
    const obj = [e.namespace ? `${e.namespace}/` : '', e.resource, e.name ? `/${e.name}` : '', e.subresource ? `/${e.subresource}` : ''].join('')
    const cordon = e.unschedulable === undefined ? '' : e.unschedulable ? ' (cordoned)' : ' (schedulable)'
    return `${e.at}  ${e.cluster}  api   ${e.client}  ${e.verb} ${obj} → ${e.code}${cordon}`
  }
  const what = [
    e.action,
    e.command,
    e.unit, e.binary, e.version,
    e.path ? `${e.path}${e.change ? ` (${e.change})` : ''}` : undefined,
  ].filter(Boolean).join(' ')
  return `${e.at}  ${e.cluster}/${e.node}  node  ${e.client}  ${what}`
}

/** `--since`: a duration back from now (`10m`) or a time (`2026-12-01T07:00:00Z`). */
export function parseSince(text: string, now: number, parseDuration: (s: string) => number | undefined): Date | undefined {
  const d = parseDuration(text)
  if (d !== undefined) return new Date(now - d)
  if (!/^\d{4}-\d\d-\d\d/.test(text)) return undefined
  const t = Date.parse(text)
  return Number.isNaN(t) ? undefined : new Date(t)
}
