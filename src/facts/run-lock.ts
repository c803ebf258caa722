import { hasStatusReason } from '../transport/kubectl/classify.js'
import type { KubectlClient } from '../transport/kubectl/client.js'

/**
 * The cluster lock's Lease (execution.md "The cluster lock"): `apply` holds it while it works on a cluster. Read here,
 * read only, so that `plan --live` and `inventory` say when another run is working on a cluster, where `apply` would
 * stop (exit 4).
 */
export const LEASE_NAMESPACE = 'kube-system'
export const LEASE_NAME = 'kupgrade-lock'

export interface LeaseSpec {
  holderIdentity?: string
  leaseDurationSeconds?: number
  acquireTime?: string
  renewTime?: string
  leaseTransitions?: number
}

/** Expired once its last renewal is older than its duration, as client-go's leader election reads a Lease. */
export const leaseExpired = (spec: LeaseSpec, now: Date): boolean =>
  (Date.parse(spec.renewTime ?? spec.acquireTime ?? '') || 0) + (spec.leaseDurationSeconds ?? 0) * 1000 < now.getTime()

/** Who holds a cluster's run lock: `holder` is `<run id> <user>@<host>`. */
export interface RunLock {
  holder: string
  since: string
  expired: boolean
}

/** The lock as the API has it now; undefined when nobody holds it (no Lease, or released). */
export async function readRunLock(kubectl: KubectlClient, now = new Date()): Promise<RunLock | undefined> {
  let spec: LeaseSpec
  try {
    spec = (await kubectl.json<{ spec?: LeaseSpec }>(['get', 'lease', LEASE_NAME, '-n', LEASE_NAMESPACE, '-o', 'json'])).spec ?? {}
  } catch (err) {
    if (hasStatusReason(err, 'NotFound')) return undefined
    throw err
  }
  if (!spec.holderIdentity) return undefined
  return { holder: spec.holderIdentity, since: spec.acquireTime ?? spec.renewTime ?? 'an unknown time', expired: leaseExpired(spec, now) }
}
