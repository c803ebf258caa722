import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ClusterModel } from '../fleet/cluster.js'
import type { Collection, Item } from './collections.js'
import { wantsTable } from './discovery.js'
import { send, status, type Reply } from './http.js'

/**
 * Watches as the real apiserver serves them (apiserver endpoints/handlers/watch.go and the watch cache):
 *  - the response headers go out at once, before any event (client-go's Watch() returns only then, so a watch on a
 *    quiet resource must not look hung: `kubectl wait` on an already-Ready node depends on it);
 *  - without a resourceVersion (or "0") the current state comes first as ADDED events; from a list's resourceVersion
 *    only what changed after it; `sendInitialEvents=true` sends the state as ADDED and then a BOOKMARK annotated
 *    `k8s.io/initial-events-end` (the WatchList protocol, served from 1.32 on where the feature is beta and on);
 *  - `allowWatchBookmarks=true` gets BOOKMARK events: the watch cache sends one a minute, and one 2 s before the
 *    deadline of a watch that has `timeoutSeconds`;
 *  - `timeoutSeconds` ends the stream cleanly; without it the server's own limit (30 min) applies.
 * The lab has no event history, so the stream is a diff of the collection, taken every POLL_MS.
 */
export interface WatchTarget {
  collection: Collection
  ns?: string
  name?: string
  select: (i: Item) => boolean
}

const POLL_MS = 200
const BOOKMARK_EVERY_MS = 60_000
const DEFAULT_TIMEOUT_S = 1800
const INITIAL_EVENTS_END = 'k8s.io/initial-events-end'

/** ValidateListOptions for a watch (apimachinery internalversion/validation): 422 on a combination it forbids. */
export function watchOptionsProblem(m: ClusterModel, q: URLSearchParams): Reply | undefined {
  const errs: string[] = []
  const initial = q.get('sendInitialEvents')
  const match = q.get('resourceVersionMatch') ?? ''
  if (initial !== null) {
    if (match !== 'NotOlderThan') errs.push('resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan')
    if (!watchListServed(m)) errs.push('sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled')
  }
  if (match) {
    if (initial === null) errs.push('resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided')
    if (match !== 'NotOlderThan') errs.push(`resourceVersionMatch: Unsupported value: "${match}": supported values: "NotOlderThan"`)
  }
  if (!errs.length) return undefined
  const detail = errs.length === 1 ? errs[0]! : `[${errs.join(', ')}]`
  return status(422, 'Invalid', `ListOptions.meta.k8s.io "" is invalid: ${detail}`, { group: 'meta.k8s.io', kind: 'ListOptions' })
}

/** The WatchList feature gate is on by default from 1.32 (beta); older apiservers refuse sendInitialEvents. */
function watchListServed(m: ClusterModel): boolean {
  return Number(m.apiServerVersion.split('.')[1]) >= 32
}

export function serveWatch(m: ClusterModel, req: IncomingMessage, res: ServerResponse, w: WatchTarget, q: URLSearchParams, track: (res: ServerResponse) => () => void): void {
  const problem = watchOptionsProblem(m, q)
  if (problem) return send(res, problem)
  const { collection, ns, name, select } = w
  const table = wantsTable(req.headers.accept)
  const bookmarks = q.get('allowWatchBookmarks') === 'true' && !table
  const snapshot = () => {
    const map = new Map<string, { item: Item; json: string }>()
    for (const i of collection.items(collection.namespaced ? ns : undefined)) {
      if ((name && i.name !== name) || !select(i)) continue
      map.set(`${i.namespace ?? ''}/${i.name}`, { item: i, json: JSON.stringify(stable(i.object)) })
    }
    return map
  }
  res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' })
  res.flushHeaders()
  const untrack = track(res)
  const emit = (type: string, i: Item) => res.write(`${JSON.stringify({ type, object: table ? collection.table([i]) : i.object })}\n`)
  const bookmark = (initialEnd = false) => res.write(`${JSON.stringify({
    type: 'BOOKMARK',
    object: {
      kind: collection.kind, apiVersion: collection.group ? `${collection.group}/${collection.version}` : collection.version,
      metadata: { resourceVersion: String(m.resourceVersion), ...(initialEnd ? { annotations: { [INITIAL_EVENTS_END]: 'true' } } : {}) },
    },
  })}\n`)

  let last = snapshot()
  const rv = q.get('resourceVersion') ?? ''
  const initial = q.get('sendInitialEvents')
  if (initial === 'true') {
    for (const { item } of last.values()) emit('ADDED', item)
    bookmark(true)
  } else if (initial === 'false') {
    // Only changes from now on (or from the given resourceVersion).
  } else if (rv === '' || rv === '0') {
    for (const { item } of last.values()) emit('ADDED', item)
  } else {
    // From a list's resourceVersion: what changed since then. Without an event log, every object whose own
    // resourceVersion is newer is sent as MODIFIED (an informer treats it as the update it may be).
    const since = Number(rv)
    for (const { item } of last.values()) if (Number((item.object.metadata as { resourceVersion?: string }).resourceVersion) > since) emit('MODIFIED', item)
  }

  const timer = setInterval(() => {
    const now = snapshot()
    for (const [k, v] of now) {
      const before = last.get(k)
      if (!before) emit('ADDED', v.item)
      else if (before.json !== v.json) emit('MODIFIED', v.item)
    }
    for (const [k, v] of last) if (!now.has(k)) emit('DELETED', v.item)
    last = now
  }, POLL_MS)

  const timeoutMs = (Number(q.get('timeoutSeconds')) || DEFAULT_TIMEOUT_S) * 1000
  const started = Date.now()
  const end = setTimeout(() => res.end(), timeoutMs)
  let marker: NodeJS.Timeout | undefined
  const nextBookmark = () => {
    // The watch cache: a bookmark a minute, or 2 s before the watch's deadline if that comes first.
    const elapsed = Date.now() - started
    const beforeDeadline = timeoutMs - 2000 - elapsed
    const wait = beforeDeadline > 0 ? Math.min(BOOKMARK_EVERY_MS, beforeDeadline) : BOOKMARK_EVERY_MS
    if (elapsed + wait >= timeoutMs) return
    marker = setTimeout(() => {
      bookmark()
      nextBookmark()
    }, wait)
  }
  if (bookmarks) nextBookmark()
  const cleanup = () => {
    clearInterval(timer)
    clearTimeout(end)
    if (marker) clearTimeout(marker)
    untrack()
  }
  res.on('close', cleanup)
  res.on('finish', cleanup)
}

/** Timestamps that tick on every read (heartbeats) must not count as changes for watches. */
function stable(o: unknown): unknown {
  return JSON.parse(JSON.stringify(o, (k, v) => (k === 'lastHeartbeatTime' || k === 'renewTime' || k === 'resourceVersion' || k === 'finishedAt' ? undefined : v)))
}
