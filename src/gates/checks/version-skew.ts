import type { Gate } from '../types.js'

/**
 * PLACEHOLDER owned by helper "skew", who replaces this whole file with the real evaluator. Until then the gate
 * answers `unknown` (never a pass), so no plan goes ahead on an unchecked skew.
 */
export const versionSkewGate: Gate = {
  id: 'version-skew',
  check: async () => ({ status: 'unknown', summary: 'the version-skew evaluator is not in this build yet', evidence: [], incident: 'kubelet-kube-proxy-skew', hint: 'merge the skew branch' }),
}
