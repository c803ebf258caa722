import type { Toleration } from './spec.js'

/** A taint is tolerated as the scheduler's TaintToleration plugin decides (k8s.io/api core/v1 ToleratesTaint). */
export function tolerates(tolerations: readonly Toleration[], taint: { key: string; value?: string; effect: string }): boolean {
  return tolerations.some((t) => {
    if (t.effect && t.effect !== taint.effect) return false
    if (t.key && t.key !== taint.key) return false
    if (t.operator === 'Exists') return true
    // Equal is the default; an empty key needs Exists.
    if (!t.key) return false
    return (t.value ?? '') === (taint.value ?? '')
  })
}
