import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { join } from 'node:path'
import { journalLine, servicePid } from './journal.js'

/**
 * A k0s worker's join (k0s pkg/token, cmd/worker): with /var/lib/k0s/kubelet.conf in place it has joined already;
 * without (a fresh install, or after `k0s reset`) it needs the join token its unit names (`--token-file=FILE`, from
 * `k0s install worker --token-file FILE`): base64 of a gzipped kubeconfig whose user token is a bootstrap token the
 * cluster still honours. Anything else and the worker exits; systemd restarts it (activating (auto-restart)) and its
 * kubelet never registers.
 */
export const K0S_KUBELET_CONF = 'var/lib/k0s/kubelet.conf'

/** The worker kubelet's kubeconfig: the API endpoint, the cluster CA, the kubelet's client certificate. */
export function k0sKubeletKubeconfig(server: string, caPem?: string): string {
  const ca = caPem ? `    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}\n` : ''
  return `apiVersion: v1\nclusters:\n- cluster:\n${ca}    server: ${server}\n  name: local\ncontexts:\n- context:\n    cluster: local\n    user: kubelet\n  name: local\ncurrent-context: local\nkind: Config\nusers:\n- name: kubelet\n  user:\n    client-certificate: /var/lib/k0s/kubelet/pki/kubelet-client-current.pem\n    client-key: /var/lib/k0s/kubelet/pki/kubelet-client-current.pem\n`
}

/** The token file the k0sworker unit was installed with. */
function tokenFileOf(root: string): string | undefined {
  const unit = join(root, 'etc/systemd/system/k0sworker.service')
  if (!existsSync(unit)) return undefined
  return /--token-file[= ](\S+)/.exec(readFileSync(unit, 'utf8'))?.[1]
}

/** Why the worker cannot join (its error), or undefined when it can; `valid` says whether a bootstrap token works. */
export function k0sWorkerJoinProblem(root: string, valid: (token: string) => boolean): string | undefined {
  if (existsSync(join(root, K0S_KUBELET_CONF))) return undefined
  const file = tokenFileOf(root)
  if (!file) return 'failed to bootstrap kubelet client configuration: no join token given (--token-file)'
  const path = join(root, file)
  if (!existsSync(path)) return `failed to read join token: open ${file}: no such file or directory`
  let kubeconfig: string
  try {
    const raw = readFileSync(path, 'utf8').trim()
    if (!/^[A-Za-z0-9+/]+=*$/.test(raw)) throw new Error('illegal base64 data at input byte 0')
    kubeconfig = gunzipSync(Buffer.from(raw, 'base64')).toString('utf8')
  } catch (e) {
    return `failed to decode join token: ${(e as Error).message.includes('base64') ? (e as Error).message : 'gzip: invalid header'}`
  }
  const token = /^\s*token:\s*(\S+)\s*$/m.exec(kubeconfig)?.[1]
  if (!token || !valid(token)) return 'failed to bootstrap kubelet client configuration: Unauthorized'
  writeFileSync(join(root, K0S_KUBELET_CONF), kubeconfig, { mode: 0o600 })
  return undefined
}

/** One line of the worker's log (logrus, as k0s writes it) in the node's k0sworker journal. */
export function workerLog(root: string, node: string, msg: string): void {
  const ts = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
  appendFileSync(join(root, 'lab/journal/k0sworker.log'), journalLine(node, 'k0s', servicePid(node), `time="${ts}" level=error msg="${msg.replace(/"/g, '\\"')}"`))
  appendFileSync(join(root, 'lab/journal/k0sworker.log'), journalLine(node, 'systemd', 1, 'k0sworker.service: Main process exited, code=exited, status=1/FAILURE'))
}

