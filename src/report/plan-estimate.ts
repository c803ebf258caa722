import type { ClusterPlan, ExecutionPlan, StagePlan, Step } from '../planner/types.js'
import { formatDuration, parseDuration } from '../util/duration.js'

/**
 * A rough duration for a plan, stated as a model rather than a promise: typical seconds per action on a healthy
 * node (a drain that waits on PodDisruptionBudgets takes longer; approval waits are not counted). Control-plane
 * nodes go one at a time; a worker batch takes as long as its slowest node; clusters of a stage run
 * `parallelClusters` at a time; a soak adds its duration.
 */
const TYPICAL_S: Partial<Record<Step['action'], number>> = {
  lock: 1, unlock: 1, gate: 5, hook: 10, cordon: 1, uncordon: 1, drain: 60, 'os-upgrade': 180, reboot: 120,
  backup: 60, 'backup-files': 5, 'switch-repo': 15, 'unhold-packages': 2, 'hold-packages': 2, 'upgrade-package': 60,
  'replace-binary': 60, 'stop-service': 15, 'start-service': 30, restart: 30, 'wait-ready': 30,
}

export const stepSeconds = (s: Step): number => {
  if (s.skip) return 0
  if (s.action === 'soak') return (parseDuration(s.params.duration) ?? 0) / 1000
  if (s.action === 'upgrade-control-plane') return s.params.command === 'apply' ? 300 : 60
  return TYPICAL_S[s.action] ?? 0
}

/** Seconds for one cluster: its steps in order, except that the nodes of a worker batch run at once. */
export function clusterSeconds(c: ClusterPlan): number {
  let total = 0
  const batch = new Map<string, Map<string, number>>()
  for (const s of c.steps) {
    if (s.phase === 'workers' && s.batch !== undefined && s.node) {
      const key = `${s.hop ?? 0}/${s.batch}`
      const nodes = batch.get(key) ?? new Map<string, number>()
      nodes.set(s.node, (nodes.get(s.node) ?? 0) + stepSeconds(s))
      batch.set(key, nodes)
    } else total += stepSeconds(s)
  }
  for (const nodes of batch.values()) total += Math.max(0, ...nodes.values())
  return total
}

export function stageSeconds(stage: StagePlan): number {
  let total = [...stage.before, ...stage.after].reduce((n, s) => n + stepSeconds(s), 0)
  for (let i = 0; i < stage.clusters.length; i += stage.parallelClusters) {
    total += Math.max(0, ...stage.clusters.slice(i, i + stage.parallelClusters).map(clusterSeconds))
  }
  return total
}

export const planSeconds = (plan: ExecutionPlan): number => plan.stages.reduce((n, s) => n + stageSeconds(s), 0)

/** `about 1h05m`, rounded to the minute above a minute. */
export const aboutText = (seconds: number): string => `about ${formatDuration(seconds >= 60 ? Math.round(seconds / 60) * 60_000 : Math.round(seconds) * 1000)}`
