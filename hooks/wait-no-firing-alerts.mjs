#!/usr/bin/env zx
// kupgrade hook: a gate that waits until Alertmanager has no firing alerts (active, not silenced, not inhibited),
// optionally only those matching $KUPGRADE_ALERT_FILTER (an Alertmanager matcher such as `severity="critical"`).
// Alerts named in $KUPGRADE_ALERT_IGNORE (comma-separated; default `Watchdog,InfoInhibitor`) never count: in
// kube-prometheus, Watchdog fires all the time by design (the dead man's switch that proves alerting works) and
// InfoInhibitor fires whenever an info alert does, to mute it; neither is trouble to wait out. Set it empty to count all.
// Polls $ALERTMANAGER_URL/api/v2/alerts every $KUPGRADE_ALERT_INTERVAL seconds (default 10) for up to
// $KUPGRADE_ALERT_TIMEOUT seconds (default 300). Exit 0 when quiet; 1 with the firing alerts when time is up (that
// fails the hook point like a gate: e.g. hooks: { beforeNode: [hooks/wait-no-firing-alerts.mjs] }).
const base = process.env.ALERTMANAGER_URL
if (!base) {
  console.error('ALERTMANAGER_URL is not set (e.g. http://alertmanager.monitoring:9093)')
  process.exit(2)
}
const interval = Number(process.env.KUPGRADE_ALERT_INTERVAL ?? 10) * 1000
const timeout = Number(process.env.KUPGRADE_ALERT_TIMEOUT ?? 300) * 1000
const url = new URL('/api/v2/alerts', base)
url.searchParams.set('active', 'true')
url.searchParams.set('silenced', 'false')
url.searchParams.set('inhibited', 'false')
if (process.env.KUPGRADE_ALERT_FILTER) url.searchParams.append('filter', process.env.KUPGRADE_ALERT_FILTER)
const ignored = (process.env.KUPGRADE_ALERT_IGNORE ?? 'Watchdog,InfoInhibitor').split(',').map((n) => n.trim()).filter(Boolean)
// Alertmanager ANDs its filter matchers; a value is a double-quoted string with \ and " escaped.
for (const name of ignored) url.searchParams.append('filter', `alertname!="${name.replace(/[\\"]/g, '\\$&')}"`)
const started = Date.now()
let last = []
for (;;) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    last = (await res.json()).filter((a) => a.status?.state === 'active')
    if (last.length === 0) {
      console.log(`no firing alerts at ${url.host}`)
      process.exit(0)
    }
    console.log(`${last.length} firing: ${last.map((a) => a.labels?.alertname ?? '?').join(', ')}`)
  } catch (err) {
    console.log(`cannot read ${url.host}: ${err.message}`)
  }
  if (Date.now() - started + interval > timeout) break
  await new Promise((r) => setTimeout(r, interval))
}
console.error(`still firing after ${Math.round(timeout / 1000)}s: ${last.map((a) => `${a.labels?.alertname ?? '?'}${a.labels?.instance ? ` (${a.labels.instance})` : ''}`).join(', ') || 'alerts unreadable'}`)
process.exit(1)
