import { createHash, randomBytes } from 'node:crypto'
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { journalLine, servicePid } from './journal.js'

/**
 * What a k3s server checks when an agent joins (k3s pkg/clientaccess/token.go, pkg/nodepassword):
 *  - the token: the secure form `K10<sha256 of the cluster CA bundle>::server:<password>` (the server's
 *    /var/lib/rancher/k3s/server/token) must carry this cluster's CA hash and password; the bare password also works;
 *  - the node password: /etc/rancher/node/password (the agent creates a random one when it is missing) must match the
 *    hash the server keeps in `<node>.node-password.k3s`, or that Secret must not exist yet.
 * A refused agent keeps running and retrying (the unit stays up), but its kubelet never registers or posts status.
 */

/** The cluster's server token, as /var/lib/rancher/k3s/server/token holds it. */
export function k3sServerToken(caPem: string, cluster: string): string {
  return `K10${createHash('sha256').update(caPem).digest('hex')}::server:${createHash('sha256').update(`${cluster}/k3s-server-token`).digest('hex').slice(0, 32)}`
}

/** Why the server refuses this agent token (the agent's own error text), or undefined when it is accepted. */
export function k3sTokenProblem(given: string, serverToken: string): string | undefined {
  const [, caHash = '', password = ''] = /^K10([0-9a-f]*)::server:(.*)$/.exec(serverToken) ?? []
  const secure = /^K10([^:]*)::([^:]*):(.*)$/.exec(given)
  if (secure) {
    if (secure[1] !== caHash) return `token CA hash does not match the Cluster CA certificate hash: ${secure[1]} != ${caHash}`
    if (secure[3] !== password) return 'token is not valid: https://127.0.0.1:6444/cacerts: 401 Unauthorized'
    return undefined
  }
  return given === password ? undefined : 'token is not valid: https://127.0.0.1:6444/cacerts: 401 Unauthorized'
}

/** The token an agent unit starts with: K3S_TOKEN, else the file K3S_TOKEN_FILE names (env file as install.sh writes it). */
export function agentToken(root: string): string | undefined {
  const env = join(root, 'etc/systemd/system/k3s-agent.service.env')
  if (!existsSync(env)) return undefined
  const vars = new Map<string, string>()
  for (const line of readFileSync(env, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim())
    if (m) vars.set(m[1]!, m[2]!.replace(/^'(.*)'$/, '$1').replace(/^"(.*)"$/, '$1'))
  }
  if (vars.get('K3S_TOKEN')) return vars.get('K3S_TOKEN')
  const file = vars.get('K3S_TOKEN_FILE')
  return file && existsSync(join(root, file)) ? readFileSync(join(root, file), 'utf8').trim() : undefined
}

/** The agent's node password; a missing one is created, as the agent does at its first start. */
export function agentNodePassword(root: string): string {
  const file = join(root, 'etc/rancher/node/password')
  if (existsSync(file)) return readFileSync(file, 'utf8').trim()
  mkdirSync(join(root, 'etc/rancher/node'), { recursive: true })
  const password = randomBytes(16).toString('hex')
  writeFileSync(file, `${password}\n`, { mode: 0o600 })
  return password
}

export const NODE_PASSWORD_REJECTED = "Node password rejected, duplicate hostname or contents of '/etc/rancher/node/password' may not match server node-passwd entry, try enabling a unique node name with the --with-node-id flag"

/** One line of the agent's log (logrus, as k3s writes it) in the node's k3s-agent journal. */
export function agentLog(root: string, node: string, level: 'info' | 'error', msg: string): void {
  const ts = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
  appendFileSync(join(root, 'lab/journal/k3s-agent.log'), journalLine(node, 'k3s', servicePid(node), `time="${ts}" level=${level} msg="${msg.replace(/"/g, '\\"')}"`))
}

/**
 * A k3s server's etcd membership as the cluster's shared folder holds it (layout.ts writeK3sMembership, lib.sh
 * lab_k3s_*). `inClusterOfItsOwn`: the server started on an empty datastore with nothing to join and bootstrapped a
 * new etcd cluster, so its kubelet registers with that cluster's API, never with the lab's.
 */
export function k3sServerInClusterOfItsOwn(root: string, etcdDir: string): boolean {
  const read = (f: string): string | undefined => (existsSync(f) ? readFileSync(f, 'utf8').trim() : undefined)
  const mine = read(join(root, 'var/lib/rancher/k3s/server/db/etcd/member/lab-cluster-id'))
  const cluster = read(join(etcdDir, 'cluster-id'))
  return mine !== undefined && cluster !== undefined && mine !== cluster
}

/** `kubectl delete node` of a k3s server: k3s's etcd controller removes the node's member from the cluster. */
export function removeK3sMember(etcdDir: string, node: string): void {
  rmSync(join(etcdDir, 'k3s-members', node), { force: true })
}
