import type { DiskFacts, NodeFacts } from './types.js'

/** Small formatters shared by the inventory table and the live-state section. */

export const bytes = (n: number): string => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)}${units[i]}`
}

/** `12.3GiB (41%)`: free space and the share it is of the filesystem. */
export const free = (d: DiskFacts | undefined): string =>
  d ? `${bytes(d.availableBytes)} (${d.totalBytes > 0 ? Math.round((d.availableBytes / d.totalBytes) * 100) : 0}%)` : '-'

/** kubectl's STATUS column: Ready / NotReady / Unknown, plus SchedulingDisabled when cordoned. A machine that runs no
 *  kubelet (a k0s controller without --enable-worker) has no Node by design: its service's state instead. */
export const status = (n: NodeFacts): string => {
  if (n.kubernetesNode === false) return `${Object.values(n.services).includes('active') ? 'Running' : 'Stopped'} (no Node)`
  if (!n.inApi) return 'NotInAPI'
  const s = n.ready === true ? 'Ready' : n.ready === false ? 'NotReady' : 'Unknown'
  return n.cordoned ? `${s},SchedulingDisabled` : s
}

/** The distribution version on disk, and what runs where that differs (a binary replaced, not yet restarted). */
export const installed = (n: NodeFacts): string =>
  n.installedVersion === undefined ? '-' : n.runningVersion && n.runningVersion !== n.installedVersion ? `${n.installedVersion} (runs ${n.runningVersion})` : n.installedVersion

export const reboot = (n: NodeFacts): string => (n.rebootRequired === true ? 'required' : n.rebootRequired === false ? 'no' : '-')

export const disk = (n: NodeFacts, path: string): DiskFacts | undefined => n.disk.find((d) => d.path === path)

/** Left-aligned columns with two spaces between, like kubectl's tables. */
export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...(r[i] ?? '')].length)))
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd())
}
