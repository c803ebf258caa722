/** The lab's node side: one simulated Kubernetes node = one SSH server + real bash in a private mount namespace. */
export type * from './types.js'
export { NODE_FAULTS } from './types.js'
