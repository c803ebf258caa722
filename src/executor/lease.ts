import { ExitCode, failureReason, KupgradeError } from '../errors.js'
import { hasStatusReason, isTransportFailure } from '../transport/kubectl/classify.js'
import { LEASE_NAME, LEASE_NAMESPACE, leaseExpired, type LeaseSpec } from '../facts/run-lock.js'
import type { KubectlChannel } from './kubectl-channel.js'

/**
 * The cluster lock (execution.md "The cluster lock"): a coordination.k8s.io/v1 Lease `kube-system/kupgrade-lock`,
 * handled like client-go's leader election. Every write carries the resourceVersion just read, so two runs racing for
 * the lock cannot both win: the apiserver answers the loser 409.
 */
export { LEASE_NAME, LEASE_NAMESPACE, type LeaseSpec } from '../facts/run-lock.js'
interface LeaseObject {
  metadata: { resourceVersion?: string; name?: string; namespace?: string }
  spec?: LeaseSpec
}

/** Who holds a lock: the run id first, so a resumed run recognises its own lease. */
export const holderIdentity = (runId: string, user: string, host: string): string => `${runId} ${user}@${host}`
const runIdOf = (holder: string): string => holder.split(' ')[0] ?? ''

/** The apiserver's MicroTime: RFC 3339 with exactly six fractional digits. */
export const microTime = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')

export class LockRefusedError extends KupgradeError {
  constructor(readonly cluster: string, readonly holder: string, readonly since: string, readonly expired: boolean) {
    super(
      expired
        ? `cluster ${cluster}: the lock Lease ${LEASE_NAMESPACE}/${LEASE_NAME} is held by "${holder}" since ${since} and has expired; not taking it over without --force-unlock`
        : `cluster ${cluster}: another kupgrade run holds the lock Lease ${LEASE_NAMESPACE}/${LEASE_NAME}: "${holder}" since ${since}`,
      {
        exitCode: ExitCode.paused,
        hint: expired
          ? 'if that run is gone (its process died), rerun with --force-unlock to take the lock over'
          : 'wait for that run to finish (kupgrade status on its machine), then try again; nothing was changed here',
      },
    )
  }
}

/**
 * Whether the API server answered the lock write with a verdict (AlreadyExists, Conflict, Forbidden …). An answer
 * that is kubectl's lost request (classify.ts) is none: a 504 Timeout outlived kube-apiserver's deadline and may have
 * landed all the same, a 503 came from a load balancer with no apiserver behind it. Those are asked again like a
 * request that got no answer at all.
 */
const decided = (err: unknown): boolean => {
  const msg = (err as Error).message ?? ''
  return /Error from server \(/.test(msg) && !isTransportFailure(msg)
}

export interface ClusterLeaseOptions {
  kubectl: KubectlChannel
  holder: string
  durationSeconds: number
  forceUnlock: boolean
  /** A dry-run records its writes and has no lease to renew. */
  dryRun: boolean
  now?: () => Date
}

export class ClusterLease {
  private resourceVersion?: string
  private acquiredAt?: string
  private transitions = 0
  private timer?: NodeJS.Timeout
  private lastRenewOk = 0
  private stopped = false
  /** A renewal in flight: release waits for it, or it would send a resourceVersion that is already old (409). */
  private inFlight?: Promise<void>

  constructor(private readonly o: ClusterLeaseOptions) {}

  private get now(): Date {
    return (this.o.now ?? (() => new Date()))()
  }

  private body(spec: LeaseSpec, resourceVersion?: string): string {
    return JSON.stringify({
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
      metadata: { name: LEASE_NAME, namespace: LEASE_NAMESPACE, ...(resourceVersion ? { resourceVersion } : {}) },
      spec,
    })
  }

  private held(now: Date): LeaseSpec {
    return { holderIdentity: this.o.holder, leaseDurationSeconds: this.o.durationSeconds, acquireTime: this.acquiredAt ?? microTime(now), renewTime: microTime(now), leaseTransitions: this.transitions }
  }

  private async write(why: string, verb: 'create' | 'replace', body: string): Promise<LeaseObject | undefined> {
    // --validate=false: the body is ours, and a renewal must not hang on downloading the API's OpenAPI schema first
    // (kubectl's client-side validation), one more request on a busy API server that can cost the lock.
    const out = await this.o.kubectl.mutate(why, [verb, '-f', '-', '--validate=false', '-o', 'json'], { stdin: body })
    if (out === '' && this.o.dryRun) return undefined
    return JSON.parse(out) as LeaseObject
  }

  private async read(): Promise<LeaseObject> {
    return JSON.parse(await this.o.kubectl.read(['get', 'lease', LEASE_NAME, '-n', LEASE_NAMESPACE, '-o', 'json'])) as LeaseObject
  }

  /**
   * create; on 409 read; free, ours, or expired-and-forced → update with the resourceVersion read; else refuse.
   * `restoredBefore`: this run restored the cluster's datastore from a snapshot, which starting then brought back the
   * Lease as the snapshot held it (the lock of the run that took it). A Lease last renewed before that moment is that
   * one, not a live run's (this run held the lock until the restore, or the API was down): it is taken over.
   */
  async acquire(restoredBefore?: Date): Promise<{ takenOverFrom?: string; fromSnapshot?: true }> {
    const now = this.now
    this.acquiredAt = microTime(now)
    // An answer from the API (AlreadyExists, Forbidden …) decides at once; no answer (a timeout on a busy API) is
    // asked again twice, a second apart, before the run stops for want of the lock.
    for (let attempt = 1; ; attempt++) {
      try {
        const created = await this.write(`acquire the run lock of cluster ${this.o.kubectl.cluster}`, 'create', this.body(this.held(now)))
        this.resourceVersion = created?.metadata.resourceVersion
        this.lastRenewOk = Date.now()
        return {}
      } catch (err) {
        if (hasStatusReason(err, 'AlreadyExists')) break
        if (attempt >= 3 || decided(err)) throw err
        await new Promise((r) => setTimeout(r, 1000))
      }
    }
    const lease = await this.read()
    const spec = lease.spec ?? {}
    const { holder, ours, fromSnapshot, refusal } = this.judge(lease, now, restoredBefore)
    if (refusal) throw refusal
    this.transitions = (spec.leaseTransitions ?? 0) + (holder !== '' && !ours ? 1 : 0)
    if (ours && spec.acquireTime) this.acquiredAt = spec.acquireTime
    try {
      const updated = await this.write(`take the run lock of cluster ${this.o.kubectl.cluster}`, 'replace', this.body(this.held(now), lease.metadata.resourceVersion))
      this.resourceVersion = updated?.metadata.resourceVersion
    } catch (err) {
      // Someone else wrote the Lease between our read and our update: they won.
      if (hasStatusReason(err, 'Conflict')) {
        const again = await this.read().catch(() => lease)
        throw new LockRefusedError(this.o.kubectl.cluster, again.spec?.holderIdentity ?? 'another run', again.spec?.acquireTime ?? 'just now', false)
      }
      throw err
    }
    this.lastRenewOk = Date.now()
    return holder !== '' && !ours ? { takenOverFrom: holder, ...(fromSnapshot ? { fromSnapshot: true as const } : {}) } : {}
  }

  /** The Lease as read: whose it is, and the refusal acquire gives (another run's, live, or expired and not forced). */
  private judge(lease: LeaseObject, now: Date, restoredBefore?: Date): { holder: string; ours: boolean; fromSnapshot: boolean; refusal?: LockRefusedError } {
    const spec = lease.spec ?? {}
    const holder = spec.holderIdentity ?? ''
    const renewed = Date.parse(spec.renewTime ?? spec.acquireTime ?? '') || 0
    const expired = leaseExpired(spec, now)
    const ours = holder !== '' && runIdOf(holder) === runIdOf(this.o.holder)
    const fromSnapshot = restoredBefore !== undefined && renewed < restoredBefore.getTime()
    const refused = holder !== '' && !ours && !fromSnapshot && (!expired || !this.o.forceUnlock)
    return { holder, ours, fromSnapshot, ...(refused ? { refusal: new LockRefusedError(this.o.kubectl.cluster, holder, spec.acquireTime ?? spec.renewTime ?? 'an unknown time', expired) } : {}) }
  }

  /**
   * Read-only: the refusal acquire would give, for a cluster this run has nothing left to do on. Nodes at the target
   * do not make a cluster done while another run holds its lock: that run may still be checking its post-gates or
   * about to roll it back, and a stage promoted past it would not have been proven. No Lease: nobody holds it.
   */
  async refusedBy(): Promise<LockRefusedError | undefined> {
    try {
      return this.judge(await this.read(), this.now).refusal
    } catch (err) {
      if (hasStatusReason(err, 'NotFound')) return undefined
      throw err
    }
  }

  /**
   * Renews every leaseDurationSeconds/3 with the last resourceVersion. A 409 means someone else wrote the Lease: the
   * lock is lost at once. Other errors are retried every second until the lease would have expired, then it is lost too.
   */
  startRenewing(onRenewed: (rv: string) => void, onLost: (reason: string) => void): void {
    if (this.o.dryRun) return
    this.stopped = false
    const every = Math.max(200, (this.o.durationSeconds * 1000) / 3)
    const tick = async () => {
      if (this.stopped) return
      let done!: () => void
      this.inFlight = new Promise((r) => (done = r))
      try {
        const updated = await this.replaceHeld(`renew the run lock of cluster ${this.o.kubectl.cluster}`, () => this.held(this.now))
        this.resourceVersion = updated?.metadata.resourceVersion
        this.lastRenewOk = Date.now()
        if (this.resourceVersion) onRenewed(this.resourceVersion)
      } catch (err) {
        if (this.stopped) return
        const expiredBy = this.lastRenewOk + this.o.durationSeconds * 1000 - every
        if (hasStatusReason(err, 'Conflict') || hasStatusReason(err, 'NotFound') || Date.now() >= expiredBy) {
          this.stopRenewing()
          onLost(hasStatusReason(err, 'Conflict') ? 'the Lease was changed by someone else (409 Conflict on renewal)'
            : hasStatusReason(err, 'NotFound') ? 'the Lease was deleted'
              : `renewal kept failing until the lease would expire: ${failureReason(err)}`)
          return
        }
        // A failed renewal is retried at once-a-second, not at the next period: a busy API (a fleet's gates fanning
        // out) must not cost the lock while the lease still has time left.
        failed = true
      } finally {
        done()
      }
      if (!this.stopped) this.timer = setTimeout(tick, failed ? Math.min(every, 1000) : every)
      failed = false
    }
    let failed = false
    this.timer = setTimeout(tick, every)
  }

  /** Renewal stopped and the one in flight over, until startRenewing again: across a datastore restore. */
  async pauseRenewing(): Promise<void> {
    this.stopRenewing()
    await this.inFlight
  }

  stopRenewing(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
  }

  /** Release by clearing holderIdentity, with the resourceVersion we hold (a 409 means it was no longer ours). */
  async release(): Promise<void> {
    this.stopRenewing()
    await this.inFlight
    const now = this.now
    await this.replaceHeld(`release the run lock of cluster ${this.o.kubectl.cluster}`, () => ({
      leaseDurationSeconds: this.o.durationSeconds, acquireTime: this.acquiredAt ?? microTime(now), renewTime: microTime(now), leaseTransitions: this.transitions,
    }))
  }

  /**
   * A write of the Lease we hold, with the resourceVersion we last saw. A 409 is someone else's write — unless the
   * Lease still names us as its holder: then the write that moved it on was our own, one whose answer was lost (a
   * 504 Timeout that landed), and it is sent once more with the resourceVersion read.
   */
  private async replaceHeld(why: string, spec: () => LeaseSpec): Promise<LeaseObject | undefined> {
    try {
      return await this.write(why, 'replace', this.body(spec(), this.resourceVersion))
    } catch (err) {
      if (!hasStatusReason(err, 'Conflict')) throw err
      const lease = await this.read().catch(() => undefined)
      if (lease?.spec?.holderIdentity !== this.o.holder || !lease.metadata.resourceVersion) throw err
      this.resourceVersion = lease.metadata.resourceVersion
      return this.write(why, 'replace', this.body(spec(), this.resourceVersion))
    }
  }
}

/** A lock write the API never answered (refused, timed out), as against one it answered and refused. */
export const noAnswer = (err: unknown): boolean => !(err instanceof LockRefusedError) && !decided(err)
