import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs'
import { rm, writeFile } from 'node:fs/promises'
import { dirname, isAbsolute, join, normalize, sep } from 'node:path'
import type { Topology } from './topology.js'

/**
 * Every `lab up` makes the lab anew from its topology: a new CA, cluster token and keys, API objects at the
 * topology's versions. What an earlier lab left in the same dir would disagree with that (a k3s agent keeping the old
 * token never rejoins; a node root already upgraded while its Node says the old version), so it goes — but only what
 * a lab made: DIR may be a folder of the user's own, with a `nodes/` or `etcd/` of theirs. The paths a lab makes are
 * listed in DIR/.kupgrade-lab.json when it starts, and removed by the next start.
 */
const MANIFEST = '.kupgrade-lab.json'

/** The node roots, etcd folders and snapshot folder a lab of `t` keeps under its dir (relative paths). */
export function labStatePaths(t: Topology): string[] {
  return [
    ...t.clusters.flatMap((c) => c.nodes.map((n) => join('nodes', c.name, n.name))),
    ...t.clusters.flatMap((c) => [join('etcd-sim', c.name), join('etcd', c.name)]),
    'datastore-snapshots',
  ]
}

/** Removes what the previous lab in `dir` made, then records what this one (of topology `t`) will. */
export async function replacePreviousLab(dir: string, t: Topology): Promise<void> {
  for (const p of previousPaths(dir)) {
    await rm(join(dir, p), { recursive: true, force: true })
    // Folders the lab made around them (nodes/CLUSTER, nodes, etcd-sim …), once empty.
    for (let parent = dirname(p); parent !== '.'; parent = dirname(parent)) {
      try { rmdirSync(join(dir, parent)) } catch { break }
    }
  }
  await writeFile(join(dir, MANIFEST), `${JSON.stringify({ note: 'made by kupgrade lab up; the next lab up in this directory removes these', paths: labStatePaths(t) }, null, 2)}\n`)
}

function previousPaths(dir: string): string[] {
  const file = join(dir, MANIFEST)
  if (existsSync(file)) {
    try {
      const paths = (JSON.parse(readFileSync(file, 'utf8')) as { paths?: unknown }).paths
      // Only paths inside DIR, as a lab writes them.
      return Array.isArray(paths) ? paths.filter((p): p is string => typeof p === 'string' && p !== '' && !isAbsolute(p) && !normalize(p).split(sep).includes('..')) : []
    } catch {
      return []
    }
  }
  // A lab from before the list: its node roots say so (CLUSTER/NODE/lab/initialized, layout.ts); with them went its etcd
  // folders and snapshots.
  const roots = labNodeRoots(join(dir, 'nodes'))
  return roots.length ? [...roots, 'etcd-sim', 'etcd', 'datastore-snapshots'] : []
}

function labNodeRoots(nodes: string): string[] {
  const dirs = (p: string) => readdirSync(join(nodes, p), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(p, e.name))
  try {
    return dirs('.').flatMap((cluster) => dirs(cluster)).filter((node) => existsSync(join(nodes, node, 'lab', 'initialized'))).map((node) => join('nodes', node))
  } catch {
    return []
  }
}
