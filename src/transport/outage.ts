/**
 * How long kupgrade rides out a lost transport before it counts as a failure: an API server that does not answer (an
 * apiserver restarting behind its load balancer, a VIP moving to another control-plane node, etcd changing leader —
 * what a control-plane upgrade itself causes) or a node's SSH that drops. A step whose commands lost their transport
 * is verified and tried again for this long; a gate that held and then could not look keeps looking for this long.
 *
 * Longer than the run lock can go unrenewed (its 30 s lease is given up 20 s after the last renewal, which comes every
 * 10 s): an API down for longer than that costs the lock first, which halts the run to be resumed, rather than failing
 * a step into a rollback that would need the same API. A node's SSH lost for longer fails its step.
 */
export const OUTAGE_BUDGET_MS = 60_000

/** The waits between attempts while a transport is lost: quick at first (a blip), then every ten seconds. */
export const OUTAGE_RETRY_DELAYS_MS: readonly number[] = [1_000, 2_000, 4_000, 8_000, 10_000]
