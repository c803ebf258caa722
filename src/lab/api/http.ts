import type { IncomingMessage, ServerResponse } from 'node:http'

/** Response helpers shared by the lab API routes: JSON bodies and `Status` errors as the apiserver writes them. */

export interface Reply {
  code: number
  body: unknown
  contentType?: string
  /** Extra response headers (the apiserver's `Warning: 299 - "…"` for a deprecated API version). */
  headers?: Record<string, string>
}

export const json = (body: unknown, code = 200, contentType = 'application/json'): Reply => ({ code, body, contentType })
export const text = (body: string, code = 200): Reply => ({ code, body, contentType: 'text/plain; charset=utf-8' })

export function status(code: number, reason: string, message: string, details?: { name?: string; group?: string; kind?: string }): Reply {
  return {
    code,
    body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: code < 400 ? 'Success' : 'Failure', message, reason, ...(details ? { details } : {}), code },
  }
}

export const notFound = (resource: string, name: string, group = ''): Reply =>
  status(404, 'NotFound', `${resource}${group ? `.${group}` : ''} "${name}" not found`, { name, ...(group ? { group } : {}), kind: resource })

export function send(res: ServerResponse, r: Reply): void {
  const body = typeof r.body === 'string' ? r.body : JSON.stringify(r.body)
  res.writeHead(r.code, { 'Content-Type': r.contentType ?? 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache, private', ...r.headers })
  res.end(body)
}

/** Reads a request body (bounded: the lab only ever receives small objects). */
export function readBody(req: IncomingMessage, limit = 1024 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > limit) {
        reject(new Error('request body too large'))
        req.destroy()
      } else chunks.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

/** `a=b,c!=d,e` label selectors (equality, inequality, existence): what kubectl logs ds/… and -l send. */
export function matchLabels(selector: string | null, labels: Record<string, string>): boolean {
  if (!selector) return true
  return selector.split(',').map((s) => s.trim()).filter(Boolean).every((term) => {
    const ne = /^([^!=]+)!=(.*)$/.exec(term)
    if (ne) return labels[ne[1]!.trim()] !== ne[2]!.trim()
    const eq = /^([^=]+)==?(.*)$/.exec(term)
    if (eq) return labels[eq[1]!.trim()] === eq[2]!.trim()
    if (term.startsWith('!')) return !(term.slice(1) in labels)
    return term in labels
  })
}

/** `spec.nodeName=X`, `metadata.name=X`, `metadata.namespace=X`, `status.phase!=Succeeded` field selectors. */
export function matchFields(selector: string | null, fields: Record<string, string | undefined>): boolean {
  if (!selector) return true
  return selector.split(',').filter(Boolean).every((term) => {
    const ne = /^([^!=]+)!=(.*)$/.exec(term)
    if (ne) return (fields[ne[1]!] ?? '') !== ne[2]
    const eq = /^([^=]+)==?(.*)$/.exec(term)
    return eq ? (fields[eq[1]!] ?? '') === eq[2] : true
  })
}
