import type { NodeTiming } from './types.js'

/** Lab delays: short enough for tests and the demo, long enough that "after the delay" is observable. */
export const defaultTiming = (t: NodeTiming = {}): Required<NodeTiming> => ({
  serviceStartMs: t.serviceStartMs ?? 300,
  rebootMs: t.rebootMs ?? 1000,
  kubeProxySyncMs: t.kubeProxySyncMs ?? 30_000,
})
