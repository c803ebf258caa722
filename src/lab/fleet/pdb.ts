import type { ClusterModel } from './cluster.js'
import type { PdbState } from './types.js'

/**
 * The disruption controller's arithmetic (policy/v1): expectedPods from the owning Deployment's replicas,
 * desiredHealthy from minAvailable or maxUnavailable (percentages round up, as the controller does),
 * disruptionsAllowed = currentHealthy − desiredHealthy, never below 0.
 */
export interface PdbStatus {
  currentHealthy: number
  desiredHealthy: number
  expectedPods: number
  disruptionsAllowed: number
}

const resolve = (v: number | string, total: number): number =>
  typeof v === 'number' ? v : Math.ceil((Number(v.replace('%', '')) * total) / 100)

export function pdbStatus(model: ClusterModel, pdb: PdbState): PdbStatus {
  const pods = [...model.pods.values()].filter((p) => p.namespace === pdb.namespace && p.app === pdb.app && p.owner?.kind === 'ReplicaSet')
  const currentHealthy = pods.filter((p) => model.podReady(p)).length
  const expectedPods = model.deployments.get(`${pdb.namespace}/${pdb.app}`)?.replicas ?? pods.length
  let desiredHealthy: number
  if (pdb.minAvailable !== undefined) desiredHealthy = resolve(pdb.minAvailable, expectedPods)
  else if (pdb.maxUnavailable !== undefined) desiredHealthy = Math.max(0, expectedPods - resolve(pdb.maxUnavailable, expectedPods))
  else desiredHealthy = expectedPods
  return { currentHealthy, desiredHealthy, expectedPods, disruptionsAllowed: Math.max(0, currentHealthy - desiredHealthy) }
}
