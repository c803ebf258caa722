import { checkHolds, type Check, type Command } from '../../../src/drivers/program.js'
import type { NodeTarget, Transport } from '../../../src/transport/types.js'

/**
 * The least a test needs to run a program's node commands over a real transport, step by step, without the
 * executor: checks as reads (never through sudo unless the check asks), run and undo commands as mutations.
 */
export async function checkAll(t: Transport, target: NodeTarget, checks: readonly Check[]): Promise<{ holds: boolean; seen: string[] }> {
  const seen: string[] = []
  let holds = true
  for (const c of checks) {
    if (c.read.on !== 'node') throw new Error(`check ${c.describe} reads through kubectl: not in this test`)
    const r = await t.read(target, c.read.command, { privileged: c.read.privileged ?? false, okExitCodes: c.read.okExitCodes ?? [0], timeoutMs: c.read.timeoutMs ?? 30_000 })
    const ok = checkHolds(c, r)
    seen.push(`${ok ? 'holds' : 'not yet'}: ${c.describe} (exit ${r.exitCode}: ${r.stdout.trim().slice(0, 200)})`)
    holds &&= ok
  }
  return { holds, seen }
}

export async function runAll(t: Transport, target: NodeTarget, commands: readonly Command[]): Promise<string> {
  let out = ''
  for (const c of commands) {
    if (c.on !== 'node') throw new Error(`command ${c.why} runs kubectl: not in this test`)
    try {
      const r = await t.mutate(target, c.why, c.command, { privileged: c.privileged ?? true, okExitCodes: c.okExitCodes ?? [0], timeoutMs: c.timeoutMs ?? 120_000, ...(c.stdin ? { stdin: c.stdin } : {}) })
      out += r.stdout + r.stderr
    } catch (err) {
      // A reboot takes the connection with it: that is its success.
      if (c.disconnects) return out
      throw err
    }
  }
  return out
}
