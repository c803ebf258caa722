import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

let found: Promise<Record<string, string>> | undefined

/**
 * Host binaries some stand-ins hand over to (curl for real loopback URLs, etcdctl when a real etcd backs a node,
 * kubectl). Their paths are resolved here, outside the node's namespace, because the node's own PATH shadows them.
 */
export function realTools(): Promise<Record<string, string>> {
  found ??= (async () => {
    const out: Record<string, string> = {}
    for (const [key, tool] of [['LAB_REAL_CURL', 'curl'], ['LAB_REAL_ETCDCTL', 'etcdctl'], ['LAB_REAL_KUBECTL', 'kubectl']] as const) {
      try {
        out[key] = (await run('/bin/sh', ['-c', `command -v ${tool}`])).stdout.trim()
      } catch {
        out[key] = ''
      }
    }
    return out
  })()
  return found
}
