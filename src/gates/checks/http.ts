import type { IncomingMessage } from 'node:http'
import { parseDuration } from '../../util/duration.js'
import { clip, errorText, verdict } from '../evidence.js'
import type { Gate } from '../types.js'

export interface HttpParams { url: string; status: number; bodyContains?: string; insecureSkipVerify: boolean; timeout: string }

/** An endpoint of yours, fetched from the runner: the expected status, and the body containing a string if asked. */
export const httpGate: Gate<HttpParams> = {
  id: 'http',
  async check(ctx, p) {
    const timeoutMs = parseDuration(p.timeout) ?? 10_000
    const source = `runner: GET ${p.url}`
    const res = await fetchOnce(p.url, timeoutMs, p.insecureSkipVerify, ctx.signal).catch((err: unknown) => ({ error: errorText(err) }))
    if ('error' in res) return verdict('http', [{ status: 'fail', source, observed: res.error, problem: `${p.url} unreachable: ${res.error}` }], { ok: '', hint: 'is the endpoint up and reachable from where kupgrade runs?' })
    const observed = `HTTP ${res.status}: ${clip(res.body, 200)}`
    if (res.status !== p.status) return verdict('http', [{ status: 'fail', source, observed, problem: `${p.url} answered ${res.status}, expected ${p.status}` }], { ok: '' })
    if (p.bodyContains !== undefined && !res.body.includes(p.bodyContains)) return verdict('http', [{ status: 'fail', source, observed, problem: `${p.url}: body lacks ${JSON.stringify(p.bodyContains)}` }], { ok: '' })
    return verdict('http', [{ status: 'pass', source, observed }], { ok: `${p.url} answered ${res.status}` })
  },
}

async function fetchOnce(url: string, timeoutMs: number, insecure: boolean, signal?: AbortSignal): Promise<{ status: number; body: string }> {
  const { request } = await import(url.startsWith('https:') ? 'node:https' : 'node:http')
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', timeout: timeoutMs, ...(insecure ? { rejectUnauthorized: false } : {}), ...(signal ? { signal } : {}) }, (res: IncomingMessage) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { if (body.length < 65_536) body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}
