import type { EventEmitter } from 'node:events'
import type { LabNodeOptions, LabNodeState } from './node/types.js'

/**
 * The control side's view of a lab node (src/lab/node, built by the node side; contract in docs/lab-contract-notes.md).
 * Loaded dynamically so the control side builds and runs even while the node side is being written: without it the
 * lab still serves every cluster's API, and `lab up` says that nodes have no SSH.
 */
export interface NodeRuntime extends EventEmitter {
  start(): Promise<void>
  stop(): Promise<void>
  setFault(fault: string, on: boolean, params?: Record<string, unknown>): void
  getState(): LabNodeState
  readonly hostKeyPublic: string
}

export type NodeFactory = (o: LabNodeOptions) => NodeRuntime

export async function loadNodeFactory(): Promise<NodeFactory | undefined> {
  try {
    const mod = (await import('./node/index.js')) as { LabNode?: new (o: LabNodeOptions) => NodeRuntime }
    const Ctor = mod.LabNode
    return typeof Ctor === 'function' ? (o) => new Ctor(o) : undefined
  } catch {
    return undefined
  }
}
