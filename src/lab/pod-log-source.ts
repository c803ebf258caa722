import type { PodState } from './fleet/types.js'

/**
 * Pods whose container log a lab node writes (kube-proxy's /var/log/pods/… file on kubeadm/k0s nodes): the API
 * server's `kubectl logs` reads the same text from the node, so both show the same lines. A model without nodes
 * (`lab up --api-only`) has no source and keeps its own lines.
 */
type Source = (p: PodState) => string | undefined
const sources = new WeakMap<object, Source>()

export function setPodLogSource(model: object, source: Source): void {
  sources.set(model, source)
}

/** The pod's log lines as its node wrote them, or undefined when no node writes this pod's log. */
export function podLogFromNode(model: object, p: PodState): string[] | undefined {
  const text = sources.get(model)?.(p)
  if (text === undefined) return undefined
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  return lines
}
