import { createHash } from 'node:crypto'
import type { ClusterModel } from './cluster.js'
import type { DeploymentState } from './types.js'

/** The ReplicaSet behind each Deployment (`NAME-HASH`, one revision): what `kubectl get rs` and owner walks read. */
type Obj = Record<string, unknown>
const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z')

/** The ReplicaSet's own uid (its pods' ownerReference), derived from its Deployment's: stable, and not the same. */
export function replicaSetUid(d: Pick<DeploymentState, 'uid'>): string {
  const h = createHash('sha1').update(`${d.uid}/replicaset`).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`
}

export function renderReplicaSet(m: ClusterModel, d: DeploymentState): Obj {
  const name = `${d.name}-${d.hash}`
  const pods = [...m.pods.values()].filter((p) => p.namespace === d.namespace && p.owner?.kind === 'ReplicaSet' && p.owner.name === name && !p.deletionTimestamp)
  const ready = pods.filter((p) => m.podReady(p)).length
  const selector = { ...(d.kind === 'coredns' ? { 'k8s-app': 'kube-dns' } : { app: d.name }), 'pod-template-hash': d.hash }
  return {
    kind: 'ReplicaSet', apiVersion: 'apps/v1',
    metadata: {
      name, namespace: d.namespace, uid: replicaSetUid(d), resourceVersion: String(m.resourceVersion), generation: 1,
      creationTimestamp: iso(d.createdAt), labels: selector,
      annotations: { 'deployment.kubernetes.io/desired-replicas': String(d.replicas), 'deployment.kubernetes.io/max-replicas': String(d.replicas + Math.ceil(d.replicas / 4)), 'deployment.kubernetes.io/revision': '1' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: d.name, uid: d.uid, controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      replicas: d.replicas, selector: { matchLabels: selector },
      template: { metadata: { labels: selector }, spec: { containers: [{ name: d.name, image: d.image }] } },
    },
    status: { replicas: pods.length, fullyLabeledReplicas: pods.length, readyReplicas: ready, availableReplicas: ready, observedGeneration: 1 },
  }
}
