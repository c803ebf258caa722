import { join } from 'node:path'
import type { LoadedPlan } from '../plan/load.js'
import type { PlannerFacts } from '../planner/types.js'
import { SshPool } from '../transport/ssh/pool.js'
import type { Transport } from '../transport/types.js'
import { gatherFleetFacts } from './gather.js'
import { groupedProblems, runLockText } from './render.js'
import { fromDisagreement } from './skew.js'
import type { ClusterFacts, FleetFacts } from './types.js'

/** The subset of live facts the planner decides with: running kubelet and installed distribution versions per node. */
export function toPlannerFacts(f: FleetFacts): PlannerFacts {
  return {
    clusters: Object.fromEntries(f.clusters.map((c) => [c.name, {
      // installedVersion carries the distribution revision the kubelet's version lacks (k0s reports a bare `+k0s`).
      // A machine without a kubelet (k0s controller without a worker) has no Node steps; its service says whether
      // the installed version runs.
      nodes: Object.fromEntries(c.nodes.map((n) => {
        const pm = n.packageManager !== undefined && n.packageManager !== 'unknown' ? n.packageManager : undefined
        return [n.name, n.kubeletVersion || n.installedVersion || n.kubernetesNode === false || pm || n.arch
          ? {
              ...(n.kubeletVersion ? { kubeletVersion: n.kubeletVersion } : {}),
              ...(n.installedVersion ? { installedVersion: n.installedVersion } : {}),
              ...(n.kubernetesNode === false ? { kubernetesNode: false as const, serviceActive: Object.values(n.services).includes('active'), ...(n.runningVersion ? { runningVersion: n.runningVersion } : {}) } : {}),
              ...(pm ? { packageManager: pm } : {}),
              ...(n.arch ? { arch: n.arch } : {}),
            }
          : undefined]
      })),
    }])),
  }
}

export interface LiveState {
  facts: FleetFacts
  planner: PlannerFacts
  /** Things the reader of a live plan must see. */
  warnings: string[]
  /** Why the plan cannot go ahead as written: a cluster's version disagrees with `from`, a node cannot be read. */
  blockers: string[]
}

export interface LiveOptions {
  env: NodeJS.ProcessEnv
  acceptNew?: boolean
  concurrency?: number
  log?: (message: string) => void
  /** An open transport to read through (plan --live keeps it for the pre-gates); otherwise a pool is opened and closed here. */
  transport?: Transport
  /** Overall limit per cluster (gather.ts). */
  deadlineMs?: number
}

/** What apply would meet at a cluster whose run lock someone holds: the live state's own line, naming the cluster. */
export const runLockWarning = (c: ClusterFacts): string | undefined => (c.runLock ? `cluster ${c.name}: ${runLockText(c.runLock)}` : undefined)

/** `plan --live`: read the fleet (read-only, SSH + kubectl), and say where it disagrees with the plan. */
export async function readLiveState(loaded: LoadedPlan, o: LiveOptions): Promise<LiveState> {
  const pool = o.transport ?? new SshPool({ env: o.env, acceptNew: Boolean(o.acceptNew), ...(o.concurrency ? { concurrency: o.concurrency } : {}), ...(o.log ? { debug: o.log } : {}) })
  try {
    const facts = await gatherFleetFacts(loaded, { transport: pool, env: o.env, stateDir: join(loaded.dir, '.kupgrade'), ...(o.log ? { log: o.log } : {}), ...(o.deadlineMs ? { deadlineMs: o.deadlineMs } : {}) })
    const warnings: string[] = []
    const blockers: string[] = []
    for (const c of facts.clusters) {
      const spec = loaded.plan.spec.clusters.find((s) => s.name === c.name)
      const drift = fromDisagreement(c)
      if (!drift || drift.kind === 'same' || drift.kind === 'at-target') continue
      if (drift.kind === 'mismatch' && !spec?.allowFromMismatch) blockers.push(drift.message)
      else warnings.push(drift.message)
    }
    // Another run at work on a cluster is where apply would stop (exit 4): said, not a blocker (it passes).
    for (const c of facts.clusters) {
      const held = runLockWarning(c)
      if (held) warnings.push(held)
    }
    // apply could not run on a node it cannot read, so a live plan that could not read one is not ready either.
    blockers.push(...groupedProblems(facts).map((p) => `could not read ${p}`))
    return { facts, planner: toPlannerFacts(facts), warnings, blockers }
  } finally {
    if (!o.transport) await pool.close()
  }
}
