/** The lab's node side: one simulated Kubernetes node = one SSH server + real bash in a private mount namespace. */
export type * from './types.js'
export { NODE_FAULTS } from './types.js'
export { LabNode } from './lab-node.js'
export { probeIsolation, LabIsolationError, type Isolation } from './namespace.js'
export { startEtcdCluster, hasRealEtcd, type EtcdCluster, type EtcdClusterOptions } from './etcd-cluster.js'
export { generateEd25519KeyPair } from './host-key.js'
