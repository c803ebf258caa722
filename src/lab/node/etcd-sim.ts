import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { LabNodeOptions } from './types.js'

/**
 * The simulated etcd of one cluster (when no real etcd backs it): every control-plane node is a member, and the
 * members share one folder on the lab host — the member list and which members are sick — so that `etcdctl
 * endpoint health --cluster` on any member sees every member, one leader is agreed on, and `etcd-unhealthy` on one
 * member shows everywhere. In each node's namespace the folder is at lab/etcd-cluster (a bind mount, fstab).
 *   members          name<TAB>address<TAB>id<TAB>hex id, in member order (the first healthy one leads)
 *   unhealthy/NAME   that member fails its health checks (the etcd-unhealthy fault on that node)
 */
export const etcdIdOf = (text: string): bigint => BigInt('0x' + createHash('sha256').update(text).digest('hex').slice(0, 16))

/**
 * A k3s server's etcd member name: its node name and 8 hex digits (k3s pkg/etcd setName: ServerNodeName + "-" + the
 * first 8 of a uuid, kept in server/db/etcd/name); here the member id's, as the etcdctl stand-in prints it.
 */
export const k3sEtcdMemberName = (cluster: string, node: string): string => `${node}-${etcdIdOf(`${cluster}/${node}`).toString(16).slice(0, 8)}`

/** The folder the node's namespace shows at lab/etcd-cluster: the cluster's, or the node's own for a lone node. */
export function etcdClusterDir(o: LabNodeOptions, labDir: string): string {
  return o.etcdCluster?.dir ?? join(labDir, 'etcd-local')
}

/** Writes the member list (idempotent: every member writes the same text). */
export function writeEtcdMembers(o: LabNodeOptions, dir: string): void {
  mkdirSync(join(dir, 'unhealthy'), { recursive: true })
  // A k3s server on SQLite is no etcd member: etcdctl there reaches nothing.
  const sqlite = o.distribution === 'k3s' && o.datastore === 'sqlite'
  const members = o.etcdCluster?.members ?? (o.role === 'control-plane' && !sqlite ? [{ name: o.name, address: o.address }] : [])
  const text = members.map((m) => {
    const id = etcdIdOf(`${o.cluster}/${m.name}`)
    return `${m.name}\t${m.address}\t${id}\t${id.toString(16)}\n`
  }).join('')
  const file = join(dir, 'members')
  if (!existsSync(file) || readFileSync(file, 'utf8') !== text) writeFileSync(file, text)
}

export function setEtcdMemberHealth(dir: string, member: string, healthy: boolean): void {
  const f = join(dir, 'unhealthy', member)
  if (healthy) rmSync(f, { force: true })
  else writeFileSync(f, '')
}

/** The etcd metrics a member serves on 127.0.0.1:2381 (kubeadm/k3s --listen-metrics-urls): leader and db size. */
export function etcdMetrics(dir: string, member: string, dbBytes: number): string {
  const members = existsSync(join(dir, 'members')) ? readFileSync(join(dir, 'members'), 'utf8').trim().split('\n').map((l) => l.split('\t')[0]!) : []
  const healthy = (n: string) => !existsSync(join(dir, 'unhealthy', n))
  const leader = members.find(healthy)
  const self = healthy(member)
  return [
    '# HELP etcd_server_has_leader Whether or not a leader exists. 1 is existence, 0 is not.',
    '# TYPE etcd_server_has_leader gauge',
    `etcd_server_has_leader ${self && leader ? 1 : 0}`,
    '# HELP etcd_server_is_leader Whether or not this member is a leader. 1 if is, 0 otherwise.',
    '# TYPE etcd_server_is_leader gauge',
    `etcd_server_is_leader ${self && leader === member ? 1 : 0}`,
    '# HELP etcd_mvcc_db_total_size_in_bytes Total size of the underlying database physically allocated in bytes.',
    '# TYPE etcd_mvcc_db_total_size_in_bytes gauge',
    `etcd_mvcc_db_total_size_in_bytes ${dbBytes}`,
    '# HELP etcd_mvcc_db_total_size_in_use_in_bytes Total size of the underlying database logically in use in bytes.',
    '# TYPE etcd_mvcc_db_total_size_in_use_in_bytes gauge',
    `etcd_mvcc_db_total_size_in_use_in_bytes ${Math.floor((dbBytes * 9) / 10)}`,
    '# HELP etcd_server_quota_backend_bytes Current backend storage quota size in bytes.',
    '# TYPE etcd_server_quota_backend_bytes gauge',
    'etcd_server_quota_backend_bytes 2.147483648e+09',
    '',
  ].join('\n')
}

/** The member's db size, as etcdctl endpoint status reports it (etcd-db-near-quota raises it). */
export const etcdDbBytes = (node: string, nearQuota?: number): number => nearQuota ?? 5242880 + node.length * 4096

/**
 * kubeadm's stacked etcd as its members' data knows it. etcd derives a cluster's ID from its initial members' peer
 * URLs and the --initial-cluster-token, so a member's data belongs to the cluster it was bootstrapped (or restored)
 * into: `etcdutl snapshot restore` on each member with the same --initial-cluster and token makes them one cluster
 * again; a member restored alone, or with other flags, is a cluster of its own that the rest refuse ("request
 * cluster ID mismatch"). The lab keeps that identity in the member's data dir (member/lab-cluster, written by the
 * etcdutl stand-in and the node's first layout) and each member running it publishes the ID in the cluster's shared
 * folder (identity/NAME), from which the members judge their quorum.
 */
export interface EtcdIdentity {
  id: string
  /** `name=peerURL` of the members the data was bootstrapped with, sorted and comma-joined. */
  members: string
}

export const etcdPeerUrl = (address: string): string => `https://${address}:2380`

/** The ID etcd would give a cluster of these `name=url` members and this token (the same members and token, the same ID). */
export function etcdClusterIdentity(initialCluster: string, token: string): EtcdIdentity {
  const members = initialCluster.split(',').map((m) => m.trim()).filter(Boolean).sort().join(',')
  return { id: createHash('sha256').update(`${token}\n${members}`).digest('hex').slice(0, 16), members }
}

export const etcdIdentityText = (e: EtcdIdentity): string => `id=${e.id}\nmembers=${e.members}\n`

export function parseEtcdIdentity(text: string): EtcdIdentity | undefined {
  const id = /^id=(\S+)$/m.exec(text)?.[1]
  const members = /^members=(.*)$/m.exec(text)?.[1]
  return id && members !== undefined ? { id, members } : undefined
}

/** What this member's running etcd tells the others: its cluster ID, or nothing while it does not run. */
export function publishEtcdIdentity(dir: string, member: string, id: string | undefined): void {
  const f = join(dir, 'identity', member)
  if (id === undefined) return void rmSync(f, { force: true })
  mkdirSync(join(dir, 'identity'), { recursive: true })
  if (!existsSync(f) || readFileSync(f, 'utf8') !== `${id}\n`) writeFileSync(f, `${id}\n`)
}

/** The members (from the member list) whose running etcd has cluster ID `id`. */
export function membersRunning(dir: string, id: string): string[] {
  const members = existsSync(join(dir, 'members')) ? readFileSync(join(dir, 'members'), 'utf8').trim().split('\n').map((l) => l.split('\t')[0]!).filter(Boolean) : []
  return members.filter((m) => {
    try {
      return readFileSync(join(dir, 'identity', m), 'utf8').trim() === id
    } catch {
      return false
    }
  })
}

/**
 * The members a cluster's data knows now: those it was bootstrapped (or restored) with, until a member is removed
 * (`kubeadm reset`) or added (`kubeadm join --control-plane`) through the running cluster; raft then records the change
 * in every member's data. The stand-ins write that in membership/<cluster ID>.
 */
export function dataMembers(dir: string, identity: EtcdIdentity): string {
  try {
    return readFileSync(join(dir, 'membership', identity.id), 'utf8').trim()
  } catch {
    return identity.members
  }
}

/** The member list as `name=peerURL`, sorted and comma-joined (what a restore's --initial-cluster must name). */
export function expectedEtcdMembers(dir: string): string {
  const lines = existsSync(join(dir, 'members')) ? readFileSync(join(dir, 'members'), 'utf8').trim().split('\n').filter(Boolean) : []
  return lines.map((l) => { const [n, a] = l.split('\t'); return `${n}=${etcdPeerUrl(a!)}` }).sort().join(',')
}
