import type { Node } from 'kubernetes-types/core/v1.js'
import type { GateContext, GateResult } from '../gates/types.js'
import type { List } from '../transport/kubectl/client.js'
import { nodeReadiness } from './waits.js'

/**
 * How the executor runs a gate step: one call per gate, the wait loop (timeout, stableFor) inside. The gates helper's
 * runner (src/gates/wait.ts + registry) plugs in here; until it lands, `builtinGateRunner` checks `nodes-ready`
 * itself and reports every other gate as `unknown` ("not in this build"), which the executor shows as a warning
 * and never counts as a pass.
 */
export type GateRunner = (gate: string, params: Record<string, unknown>, ctx: GateContext) => Promise<GateResult>

export const builtinGateRunner: GateRunner = async (gate, _params, ctx) => {
  if (gate === 'nodes-ready') return nodesReady(ctx)
  return {
    status: 'unknown',
    summary: `gate ${gate}: no implementation in this build yet`,
    evidence: [],
    hint: 'the gate registry (src/gates) will run it; until then check it by hand',
    incident: '',
  }
}

async function nodesReady(ctx: GateContext): Promise<GateResult> {
  const list = await ctx.kubectl.nodes()
  const wanted = new Set(ctx.node ? [ctx.node] : ctx.nodes.map((n) => n.name))
  const bad: string[] = []
  const evidence = (list as List<Node>).items.filter((n) => wanted.has(n.metadata?.name ?? '')).map((n) => {
    const r = nodeReadiness(n)
    const versionOk = !ctx.expectedVersion || !ctx.node || r.version === ctx.expectedVersion
    if (!r.ready || !versionOk) bad.push(n.metadata!.name!)
    return { source: `node ${n.metadata!.name}`, observed: `Ready=${r.ready ? 'True' : 'False'}, kubelet ${r.version}` }
  })
  const seen = new Set(evidence.map((e) => e.source.slice(5)))
  for (const w of wanted) if (!seen.has(w)) bad.push(w)
  return bad.length === 0
    ? { status: 'pass', summary: `${wanted.size} node(s) Ready`, evidence, incident: 'k3s-expired-certs-disk-full' }
    : { status: 'fail', summary: `not Ready (or not at the expected version): ${bad.join(', ')}`, evidence, hint: 'kubectl describe node NAME; journalctl -u the kubelet/k3s unit on the node', incident: 'k3s-expired-certs-disk-full' }
}
