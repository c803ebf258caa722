import { commandLine, type RemoteCommand } from './quote.js'
import type { ExecOptions, ExecResult, NodeTarget, Transport } from './types.js'

export interface RecordedMutation {
  cluster?: string
  node: string
  why: string
  command: string
}

/**
 * The dry-run transport: reads go to the real transport (a dry-run rests on real facts, as k0sctl's `Wet()` does),
 * mutations are recorded in order and answered with a successful empty result.
 */
export class RecordingTransport implements Transport {
  readonly recorded: RecordedMutation[] = []
  constructor(private readonly inner: Transport) {}

  read(node: NodeTarget, cmd: RemoteCommand, opts?: ExecOptions): Promise<ExecResult> {
    return this.inner.read(node, cmd, opts)
  }

  async mutate(node: NodeTarget, why: string, cmd: RemoteCommand): Promise<ExecResult> {
    this.recorded.push({ ...(node.cluster ? { cluster: node.cluster } : {}), node: node.node, why, command: commandLine(cmd) })
    return { stdout: '', stderr: '', exitCode: 0, retries: 0, durationMs: 0 }
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}
