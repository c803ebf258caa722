import { randomBytes } from 'node:crypto'
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
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
export const workerLog = (root: string, node: string, msg: string): void => k0sServiceError(root, node, 'k0sworker', msg)


/**
 * A k0s controller of a cluster with several (k0s docs "Remove or replace a controller", pkg/token, the join API):
 * a controller that has joined keeps the cluster's PKI (/var/lib/k0s/pki; `k0s reset` removes it). One that
 * starts without it:
 *  - given a controller join token (`--token-file`, from `k0s token create --role=controller` on a controller) joins
 *    the cluster's etcd as a new member — refused while its old member is still listed ("etcdserver: Peer URLs already
 *    exists": `k0s etcd leave --peer-address` removes it), or while the token is not one the cluster honours;
 *  - given none, bootstraps a cluster of its own (a new CA, a new etcd): it never joins this one.
 * One that kept its PKI and etcd data starts only while its member is listed: after `k0s etcd leave` for it, or a
 * `k0s restore` elsewhere (a new etcd cluster of one), it must be reset and join again.
 * The cluster's members are in its shared etcd folder (k0s-members/NODE: the peer URL), and each controller's PKI
 * names the cluster it belongs to (pki/lab-cluster-id, the folder's k0s-cluster-id).
 */
export type K0sControllerStart =
  | { kind: 'member' }
  | { kind: 'joined' }
  | { kind: 'own-cluster' }
  | { kind: 'refused'; message: string }

const K0S_PKI_CA = 'var/lib/k0s/pki/ca.crt'
const K0S_PKI_CLUSTER = 'var/lib/k0s/pki/lab-cluster-id'

/** The token file the k0scontroller unit names, if any. */
function controllerTokenFile(root: string): string | undefined {
  const unit = join(root, 'etc/systemd/system/k0scontroller.service')
  if (!existsSync(unit)) return undefined
  return /--token-file[= ](\S+)/.exec(readFileSync(unit, 'utf8'))?.[1]
}

/** The bearer token inside a k0s join token (base64 of a gzipped kubeconfig), or an error as k0s words it. */
function joinTokenBearer(path: string, shown: string): { token?: string; error?: string } {
  if (!existsSync(path)) return { error: `failed to read join token: open ${shown}: no such file or directory` }
  try {
    const raw = readFileSync(path, 'utf8').trim()
    if (!/^[A-Za-z0-9+/]+=*$/.test(raw)) throw new Error('illegal base64 data at input byte 0')
    const kubeconfig = gunzipSync(Buffer.from(raw, 'base64')).toString('utf8')
    const token = /^\s*token:\s*(\S+)\s*$/m.exec(kubeconfig)?.[1]
    return token ? { token } : { error: 'failed to decode join token: no token in it' }
  } catch (e) {
    return { error: `failed to decode join token: ${(e as Error).message.includes('base64') ? (e as Error).message : 'gzip: invalid header'}` }
  }
}

export function k0sControllerStart(root: string, etcdDir: string, node: string, address: string, valid: (token: string) => boolean): K0sControllerStart {
  const cluster = existsSync(join(etcdDir, 'k0s-cluster-id')) ? readFileSync(join(etcdDir, 'k0s-cluster-id'), 'utf8').trim() : undefined
  if (cluster === undefined) return { kind: 'member' } // a lone controller, or a lab without k0s membership
  if (existsSync(join(root, K0S_PKI_CA)) || existsSync(join(root, K0S_PKI_CLUSTER))) {
    const mine = existsSync(join(root, K0S_PKI_CLUSTER)) ? readFileSync(join(root, K0S_PKI_CLUSTER), 'utf8').trim() : cluster
    if (mine !== cluster) return { kind: 'own-cluster' }
    // Its etcd data names a member the cluster no longer has (k0s etcd leave, or a restore on another controller
    // started a new etcd cluster): etcd refuses to start it; only a reset and a new join bring it back.
    if (existsSync(join(etcdDir, 'k0s-members')) && !existsSync(join(etcdDir, 'k0s-members', node))) {
      return { kind: 'refused', message: 'failed to start etcd: etcdserver: the member has been permanently removed from the cluster' }
    }
    return { kind: 'member' }
  }
  const file = controllerTokenFile(root)
  if (!file) {
    mkdirSync(join(root, 'var/lib/k0s/pki'), { recursive: true })
    writeFileSync(join(root, K0S_PKI_CLUSTER), `${randomBytes(8).toString('hex')}\n`)
    return { kind: 'own-cluster' }
  }
  const bearer = joinTokenBearer(join(root, file), file)
  if (bearer.error) return { kind: 'refused', message: bearer.error }
  if (!valid(bearer.token!)) return { kind: 'refused', message: `failed to join the cluster: failed to get CA certificates: https://${address}:9443/v1beta1/ca: 401 Unauthorized` }
  const member = join(etcdDir, 'k0s-members', node)
  if (existsSync(member)) return { kind: 'refused', message: `failed to join the etcd cluster: etcdserver: Peer URLs already exists (https://${address}:2380)` }
  writeFileSync(member, `https://${address}:2380\n`)
  mkdirSync(join(root, 'var/lib/k0s/pki'), { recursive: true })
  writeFileSync(join(root, K0S_PKI_CLUSTER), `${cluster}\n`)
  return { kind: 'joined' }
}

/** One line of a k0s service's log (logrus, as k0s writes it) and systemd's note of its exit. */
export function k0sServiceError(root: string, node: string, unit: 'k0scontroller' | 'k0sworker', msg: string): void {
  const ts = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
  appendFileSync(join(root, `lab/journal/${unit}.log`), journalLine(node, 'k0s', servicePid(node), `time="${ts}" level=error msg="${msg.replace(/"/g, '\\"')}"`))
  appendFileSync(join(root, `lab/journal/${unit}.log`), journalLine(node, 'systemd', 1, `${unit}.service: Main process exited, code=exited, status=1/FAILURE`))
}
