import type { ApiEvent, LabEvent, NodeEvent } from './types.js'

/**
 * Questions tests ask of a recording. Pure functions over events (in `seq` order), so they work on the lab's live
 * recorder and on `kupgrade lab events --format json` output alike.
 */
export interface EventFilter {
  cluster?: string
  node?: string
  source?: 'api' | 'node'
  /** Only events at or after this time. */
  since?: Date
  /** Only events after this `seq` (a `Recorder.mark()`). */
  afterSeq?: number
}

export function filterEvents(events: readonly LabEvent[], f: EventFilter = {}): LabEvent[] {
  const since = f.since?.getTime()
  return events.filter((e) =>
    (f.cluster === undefined || e.cluster === f.cluster) &&
    (f.source === undefined || e.source === f.source) &&
    (f.node === undefined || (e.source === 'node' ? e.node : e.resource === 'nodes' ? e.name : undefined) === f.node) &&
    (since === undefined || Date.parse(e.at) >= since) &&
    (f.afterSeq === undefined || e.seq > f.afterSeq))
}

/** What changed something: API writes the server accepted (status < 400) and every node-side change. A gate, a
 *  `plan --live` or a dry run must leave this empty. */
export function mutations(events: readonly LabEvent[], f: EventFilter = {}): LabEvent[] {
  return filterEvents(events, f).filter((e) => e.source === 'node' || landed(e))
}

/**
 * Whether a recorded write changed the cluster: it was answered 2xx, or 504 Timeout — which the lab answers only for
 * apiserver-slow's `answer: timeout`, after carrying the request out, as a request that outlived kube-apiserver's
 * deadline can still land.
 */
export const landed = (e: ApiEvent): boolean => e.code < 400 || e.code === 504

/** The largest number of nodes (of `role`, if given) cordoned at the same moment, replaying accepted Node writes.
 *  The lab starts with every node schedulable. */
export function maxConcurrentlyCordoned(events: readonly LabEvent[], cluster: string, role?: 'control-plane' | 'worker'): number {
  const cordoned = new Set<string>()
  let max = 0
  for (const e of filterEvents(events, { cluster, source: 'api' }) as ApiEvent[]) {
    if (e.resource !== 'nodes' || !e.name || !landed(e) || e.unschedulable === undefined) continue
    if (role && e.nodeRole !== role) continue
    if (e.unschedulable) cordoned.add(e.name)
    else cordoned.delete(e.name)
    max = Math.max(max, cordoned.size)
  }
  return max
}

const VERSION_CHANGES = new Set(['install', 'upgrade-applied'])

/** Nodes in the order their software was first replaced (a binary or package installed, or `kubeadm upgrade
 *  apply|node`), each node once. */
export function nodeUpgradeOrder(events: readonly LabEvent[], cluster: string, role?: 'control-plane' | 'worker'): string[] {
  const order: string[] = []
  for (const e of filterEvents(events, { cluster, source: 'node' }) as NodeEvent[]) {
    if (!VERSION_CHANGES.has(e.action) || (role && e.role !== role) || order.includes(e.node)) continue
    order.push(e.node)
  }
  return order
}

/** A span during which a node was being disrupted: it opens at a service stop, an install, a kubeadm upgrade or a
 *  reboot, and closes at the next service start on that node (open at the end of the recording if none came). */
export interface DisruptionWindow {
  node: string
  role: 'control-plane' | 'worker'
  fromSeq: number
  toSeq?: number
}

const OPENS = new Set(['service-stop', 'install', 'upgrade-applied', 'reboot'])

export function disruptionWindows(events: readonly LabEvent[], cluster: string, role?: 'control-plane' | 'worker'): DisruptionWindow[] {
  const open = new Map<string, DisruptionWindow>()
  const done: DisruptionWindow[] = []
  for (const e of filterEvents(events, { cluster, source: 'node' }) as NodeEvent[]) {
    if (role && e.role !== role) continue
    const w = open.get(e.node)
    if (OPENS.has(e.action) && !w) open.set(e.node, { node: e.node, role: e.role, fromSeq: e.seq })
    if (e.action === 'service-start' && w) {
      done.push({ ...w, toSeq: e.seq })
      open.delete(e.node)
    }
  }
  return [...done, ...open.values()].sort((a, b) => a.fromSeq - b.fromSeq)
}

/** The most nodes (of `role`) disrupted at once: 1 for control-plane nodes means they went one at a time. */
export function maxConcurrentDisruptions(events: readonly LabEvent[], cluster: string, role?: 'control-plane' | 'worker'): number {
  const marks: [number, number][] = []
  for (const w of disruptionWindows(events, cluster, role)) {
    marks.push([w.fromSeq, 1])
    if (w.toSeq !== undefined) marks.push([w.toSeq, -1])
  }
  // A window that closes at seq s and one that opens at s cannot both hold: closes first.
  marks.sort((a, b) => a[0] - b[0] || a[1] - b[1])
  let now = 0
  let max = 0
  for (const [, d] of marks) {
    now += d
    max = Math.max(max, now)
  }
  return max
}
