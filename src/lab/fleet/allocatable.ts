import type { NodeState } from './types.js'

/** What the scheduler may place on a node: its allocatable, unless the insufficient-capacity fault shrank it. */
export function allocatable(n: NodeState): { cpuMilli: number; memoryBytes: number } {
  return n.allocatableOverride ?? { cpuMilli: n.cpuMilli, memoryBytes: n.memoryBytes }
}
