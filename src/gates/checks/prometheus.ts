import { parseDuration } from '../../util/duration.js'
import { clip, errorText, verdict } from '../evidence.js'
import type { Gate } from '../types.js'

export interface PrometheusParams { url: string; query: string; max: number; timeout: string }

interface QueryResponse { status: string; error?: string; data?: { resultType: string; result: { metric: Record<string, string>; value?: [number, string] }[] } }

/**
 * A Prometheus instant query (`/api/v1/query`) that must return at most `max` series; by default any critical alert
 * firing blocks, as kured refuses to reboot while alerts fire.
 */
export const prometheusGate: Gate<PrometheusParams> = {
  id: 'prometheus',
  async check(ctx, p) {
    const url = `${p.url.replace(/\/+$/, '')}/api/v1/query?query=${encodeURIComponent(p.query)}`
    const source = `runner: Prometheus ${p.url} query ${p.query}`
    let doc: QueryResponse
    try {
      const res = await fetch(url, { signal: AbortSignal.any([AbortSignal.timeout(parseDuration(p.timeout) ?? 10_000), ...(ctx.signal ? [ctx.signal] : [])]) })
      const text = await res.text()
      try { doc = JSON.parse(text) as QueryResponse } catch { return verdict('prometheus', [{ status: 'unknown', source, observed: `HTTP ${res.status}: ${clip(text, 200)}`, problem: 'Prometheus answered something that is not JSON' }], { ok: '' }) }
    } catch (err) {
      return verdict('prometheus', [{ status: 'unknown', source, observed: errorText(err), problem: `Prometheus unreachable at ${p.url}` }], { ok: '', hint: 'check the url, or skip this gate with a reason' })
    }
    if (doc.status !== 'success' || !doc.data) return verdict('prometheus', [{ status: 'unknown', source, observed: doc.error ?? JSON.stringify(doc).slice(0, 200), problem: `query failed: ${doc.error ?? doc.status}` }], { ok: '' })
    const series = doc.data.result
    const shown = series.slice(0, 5).map((s) => `${s.metric.alertname ?? s.metric.__name__ ?? ''}{${Object.entries(s.metric).filter(([k]) => k !== '__name__' && k !== 'alertname').map(([k, v]) => `${k}="${v}"`).join(',')}}${s.value ? ` ${s.value[1]}` : ''}`).join('; ')
    return verdict('prometheus', [series.length > p.max
      ? { status: 'fail', source, observed: `${series.length} series: ${shown}`, problem: `${series.length} series returned (max ${p.max}): ${shown}` }
      : { status: 'pass', source, observed: `${series.length} series (max ${p.max})` }], { ok: `${series.length} series (max ${p.max})`, hint: 'resolve the firing alerts first' })
  },
}
