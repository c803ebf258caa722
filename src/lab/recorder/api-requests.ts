import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ClusterModel } from '../fleet/cluster.js'
import { apiClient } from './identity.js'
import type { Recorder } from './recorder.js'
import type { ApiVerb } from './types.js'

const VERBS: Record<string, ApiVerb> = { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' }

/** `/api/v1/namespaces/NS/pods/NAME/eviction` → its parts (`/api/v1/namespaces/NAME` is the namespace itself). */
export function parseResourcePath(path: string): { resource: string; namespace?: string; name?: string; subresource?: string } {
  const seg = path.replace(/\/+$/, '').split('/').slice(1)
  let rest: string[]
  if (seg[0] === 'api' && seg.length >= 2) rest = seg.slice(2)
  else if (seg[0] === 'apis' && seg.length >= 3) rest = seg.slice(3)
  else return { resource: '' }
  let namespace: string | undefined
  if (rest[0] === 'namespaces' && rest.length >= 3) [namespace, rest] = [rest[1], rest.slice(2)]
  const [resource = '', name, subresource] = rest
  return { resource, ...(namespace ? { namespace } : {}), ...(name ? { name } : {}), ...(subresource ? { subresource } : {}) }
}

/**
 * The API server calls this for every request; writes are recorded with the status the server answers. The status
 * and a Node's cordon state are taken at the moment the response head is written, i.e. right after the handler ran,
 * before any other request can change the node again.
 */
export function apiRequestRecorder(recorder: Recorder, cluster: string, model: ClusterModel): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const verb = VERBS[req.method ?? '']
    if (!verb) return
    const client = apiClient(req)
    const path = new URL(req.url ?? '/', 'https://lab').pathname
    const parts = parseResourcePath(path)
    const writeHead = res.writeHead.bind(res) as (...a: unknown[]) => ServerResponse
    let recorded = false
    res.writeHead = ((...args: unknown[]) => {
      const out = writeHead(...args)
      if (!recorded) {
        recorded = true
        const node = parts.resource === 'nodes' && parts.name && !parts.subresource ? model.nodes.get(parts.name) : undefined
        recorder.recordApi({
          cluster, client, method: req.method!, path, ...parts, code: res.statusCode,
          verb: verb === 'delete' && !parts.name ? 'deletecollection' : verb,
          ...(node ? { unschedulable: node.unschedulable, nodeRole: node.role } : {}),
        })
      }
      return out
    }) as ServerResponse['writeHead']
  }
}
