import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ClusterModel } from './cluster.js'
import type { LeaseState } from './types.js'

/**
 * What a datastore snapshot holds of the API's objects. An etcd snapshot is every object as it was, so restoring one
 * (`k3s server --cluster-reset-restore-path`, `k0s restore`, `etcdutl snapshot restore` into the etcd data dir) brings
 * back the Leases of that moment: the run lock held by whoever held it when the snapshot was taken, at the
 * resourceVersion it had then, so a client that renews with a later one gets 409 as from a real restored apiserver.
 * The lab remembers the Leases a snapshot was taken with under the hash of the snapshot file's content (a copy of it
 * restores the same), in files of its own, so a restarted lab still knows them.
 */
export class DatastoreSnapshots {
  constructor(private readonly dir: string) {}

  /** A snapshot was written to `file` (a host path): what the cluster's Leases are now is what it holds. */
  taken(model: ClusterModel, file: string): void {
    const key = this.keyOf(file)
    if (!key) return
    mkdirSync(this.dir, { recursive: true })
    writeFileSync(key, JSON.stringify([...model.leases.values()]))
  }

  /** The datastore was restored from `file`: the Leases are the snapshot's again. False when the lab never saw it taken. */
  restored(model: ClusterModel, file: string): boolean {
    const key = this.keyOf(file)
    let leases: LeaseState[]
    try {
      leases = JSON.parse(readFileSync(key ?? '', 'utf8')) as LeaseState[]
    } catch {
      return false
    }
    model.restoreLeases(leases)
    return true
  }

  private keyOf(file: string): string | undefined {
    try {
      return join(this.dir, `${createHash('sha256').update(readFileSync(file)).digest('hex')}.json`)
    } catch {
      return undefined
    }
  }
}
