import type { RemoteCommand } from '../../transport/quote.js'
import type { NodeTarget } from '../../transport/types.js'
import type { GateContext } from '../types.js'
import { errorText } from '../evidence.js'

export interface NodeRead {
  ok: boolean
  stdout: string
  stderr: string
  exitCode: number | null
  /** Why the command could not run at all (SSH down, host key …). */
  error?: string
}

/**
 * One read-only command on a node. Never throws: an unreachable node is an observation (`error`), which the gate
 * turns into `unknown` for that node. Privileged reads (cert files, etcdctl) go through sudo when the node needs it.
 */
export async function readNode(ctx: GateContext, target: NodeTarget, cmd: RemoteCommand, o: { timeoutMs?: number; privileged?: boolean; okExitCodes?: number[] } = {}): Promise<NodeRead> {
  // The facts this check read moments ago could not reach the node at all: trying again would only repeat the
  // connection's retries (seconds per gate) to the same end.
  const unreachable = ctx.unreachable?.get(target.node)
  if (unreachable !== undefined) return { ok: false, stdout: '', stderr: '', exitCode: null, error: unreachable }
  try {
    const r = await ctx.ssh.read(target, cmd, {
      timeoutMs: o.timeoutMs ?? 30_000,
      okExitCodes: o.okExitCodes ?? Array.from({ length: 256 }, (_, i) => i),
      ...(o.privileged ? { privileged: true } : {}),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    })
    return { ok: r.exitCode === 0, stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode }
  } catch (err) {
    return { ok: false, stdout: '', stderr: '', exitCode: null, error: errorText(err) }
  }
}

/** PATH additions a non-root login lacks (sbin, k0s's bundled tools) and English tool output. */
export const SCRIPT_ENV = 'export LC_ALL=C PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/var/lib/k0s/bin"'
