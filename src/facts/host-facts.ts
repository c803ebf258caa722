import type { Distribution } from '../plan/versions.js'
import type { Transport, NodeTarget } from '../transport/types.js'
import { nodeFactsScript, splitSections, UNITS } from './node-script.js'
import { parseHostFacts } from './parse-host.js'
import type { HostFacts } from './types.js'

const UNITS_FOR: Record<Distribution, string[]> = {
  k3s: ['k3s', 'k3s-agent'],
  k0s: ['k0scontroller', 'k0sworker'],
  kubeadm: ['kubelet'],
}

/** One SSH round trip → a node's host facts. A read: retried after a dropped connection, run for real in dry-runs. */
export async function readHostFacts(transport: Transport, target: NodeTarget, dist: Distribution, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<HostFacts> {
  const { script, marker } = nodeFactsScript()
  const r = await transport.read(target, { script }, { timeoutMs: opts.timeoutMs ?? 30_000, ...(opts.signal ? { signal: opts.signal } : {}) })
  const facts = parseHostFacts(dist, splitSections(r.stdout, marker))
  // systemctl says "inactive" for units it has never heard of, so only this distribution's units are meaningful.
  const relevant = UNITS_FOR[dist].filter((u) => UNITS.includes(u))
  facts.services = Object.fromEntries(Object.entries(facts.services).filter(([u]) => relevant.includes(u)))
  return facts
}
