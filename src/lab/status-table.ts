import type { LabStatus } from './lab.js'

/** `kupgrade lab status` as a table: one row per node, with the cluster's and the node's active faults. */
export function formatStatus(s: LabStatus): string {
  const rows: string[][] = [['CLUSTER', 'NODE', 'ROLE', 'VERSION', 'STATUS', 'SSH', 'FAULTS']]
  for (const c of s.clusters) {
    const clusterFaults = c.faults.filter((f) => !f.node).map((f) => f.fault)
    c.nodes.forEach((n, i) => {
      const own = c.faults.filter((f) => f.node === n.name).map((f) => f.fault)
      const faults = [...(i === 0 ? clusterFaults.map((f) => `${f} (cluster)`) : []), ...own]
      rows.push([i === 0 ? `${c.name} (${c.distribution})` : '', n.name, n.role, n.version, n.status, n.ssh ? `${n.address}:${n.port}` : 'no', faults.join(', ') || '-'])
    })
    for (const a of c.armed) rows.push(['', '', '', '', '', '', `armed: ${a.spec.fault}${a.spec.node ? ` on ${a.spec.node}` : ''} after ${a.after} of ${a.node}`])
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n'
}
