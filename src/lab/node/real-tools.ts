import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { promisify } from 'node:util'

const run = promisify(execFile)

let found: Promise<Record<string, string>> | undefined

/**
 * Host binaries some stand-ins hand over to (curl for real loopback URLs, etcdctl when a real etcd backs a node,
 * kubectl). Their real paths (symlinks resolved) are found here, outside the node's namespace, because inside it the
 * node's PATH and its /usr/bin overlay shadow them (a kubeadm node has its own /usr/bin/kubectl).
 */
export function realTools(): Promise<Record<string, string>> {
  found ??= (async () => {
    const out: Record<string, string> = {}
    for (const [key, tool] of [['LAB_REAL_CURL', 'curl'], ['LAB_REAL_ETCDCTL', 'etcdctl'], ['LAB_REAL_KUBECTL', 'kubectl']] as const) {
      try {
        const path = (await run('/bin/sh', ['-c', `command -v ${tool} >/dev/null && readlink -f "$(command -v ${tool})"`])).stdout.trim()
        out[key] = path
      } catch {
        out[key] = ''
      }
    }
    out['LAB_SFTP_SERVER'] = ['/usr/lib/openssh/sftp-server', '/usr/libexec/openssh/sftp-server', '/usr/lib/ssh/sftp-server'].find((f) => existsSync(f)) ?? ''
    return out
  })()
  return found
}
