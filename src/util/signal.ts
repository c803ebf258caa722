import { setMaxListeners } from 'node:events'

const raised = new WeakSet<AbortSignal>()

/**
 * One run's signal is shared by every command and API call in flight (a fleet's SSH reads, a cluster's kubectl calls),
 * each listening for the abort until it ends: dozens at once is the design, not a leak, and Node's warning after 10
 * would be noise in the user's output.
 */
export function raiseListenerLimit(signal: AbortSignal): void {
  if (raised.has(signal)) return
  raised.add(signal)
  setMaxListeners(256, signal)
}
