import { disruptionWindows, filterEvents, maxConcurrentDisruptions, maxConcurrentlyCordoned, mutations, nodeUpgradeOrder, type EventFilter } from './queries.js'
import type { ApiEvent, LabEvent, NodeChange, NodeEvent } from './types.js'

/**
 * The lab's flight recorder: one per lab, fed by every cluster's API server and every node, read by the control
 * socket (`kupgrade lab events`) and by tests (`lab.recorder`). Memory is bounded: past `limit` events the oldest go
 * (a lab that runs for days must not grow without end); `dropped` says how many.
 */
export class Recorder {
  private readonly list: LabEvent[] = []
  private seq = 0
  dropped = 0

  constructor(private readonly limit = 200_000) {}

  recordApi(e: Omit<ApiEvent, 'seq' | 'source' | 'at'> & { atMs?: number }): ApiEvent {
    const { atMs, ...rest } = e
    return this.push({ seq: 0, source: 'api', at: new Date(atMs ?? Date.now()).toISOString(), ...rest })
  }

  recordNode(where: { cluster: string; node: string; role: NodeEvent['role'] }, c: NodeChange): NodeEvent {
    const { atMs, ...rest } = c
    return this.push({ seq: 0, source: 'node', at: new Date(atMs).toISOString(), ...where, ...rest })
  }

  private push<T extends LabEvent>(e: T): T {
    e.seq = ++this.seq
    this.list.push(e)
    if (this.list.length > this.limit) {
      const over = this.list.length - this.limit
      this.list.splice(0, over)
      this.dropped += over
    }
    return e
  }

  /** The `seq` of the last event so far: pass it as `afterSeq` to look only at what happens next. */
  mark(): number {
    return this.seq
  }

  events(f: EventFilter = {}): LabEvent[] {
    return filterEvents(this.list, f)
  }
  mutations(f: EventFilter = {}): LabEvent[] {
    return mutations(this.list, f)
  }
  maxConcurrentlyCordoned(cluster: string, role?: 'control-plane' | 'worker'): number {
    return maxConcurrentlyCordoned(this.list, cluster, role)
  }
  nodeUpgradeOrder(cluster: string, role?: 'control-plane' | 'worker'): string[] {
    return nodeUpgradeOrder(this.list, cluster, role)
  }
  disruptionWindows(cluster: string, role?: 'control-plane' | 'worker') {
    return disruptionWindows(this.list, cluster, role)
  }
  maxConcurrentDisruptions(cluster: string, role?: 'control-plane' | 'worker'): number {
    return maxConcurrentDisruptions(this.list, cluster, role)
  }
}
