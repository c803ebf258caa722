import { execa } from 'execa'
import { parseDuration } from '../../util/duration.js'
import { clip, verdict, type Finding } from '../evidence.js'
import { readNode } from '../read/node.js'
import type { Gate } from '../types.js'

export interface CommandParams { run: string | string[]; on: 'runner' | 'nodes' | 'control-plane' | 'workers'; timeout: string; name?: string }

/**
 * A check of your own: exit 0 passes, anything else fails with its output as evidence. A list is an argv (each word
 * quoted for the node's shell); a string is your shell command line, run by `sh -c` as written in the plan. It runs
 * as a read (never through sudo, retried after a dropped connection), so it must not change anything.
 */
export const commandGate: Gate<CommandParams> = {
  id: 'command',
  async check(ctx, p) {
    const timeoutMs = parseDuration(p.timeout) ?? 60_000
    const shown = typeof p.run === 'string' ? p.run : p.run.join(' ')
    const findings: Finding[] = []
    const judge = (source: string, exit: number | null, out: string, where: string): Finding =>
      exit === 0 ? { status: 'pass', source, observed: `exit 0${out.trim() ? `: ${clip(out, 200)}` : ''}` }
        : { status: 'fail', source, observed: `exit ${exit ?? 'killed'}${out.trim() ? `: ${clip(out, 400)}` : ' (no output)'}`, problem: `${where}: \`${p.name ?? shown}\` exited ${exit ?? 'on a signal'}` }
    if (p.on === 'runner') {
      const argv = typeof p.run === 'string' ? ['sh', '-c', p.run] : p.run
      const r = await execa(argv[0]!, argv.slice(1), { reject: false, timeout: timeoutMs, all: true, ...(ctx.env ? { env: ctx.env, extendEnv: false } : {}), ...(ctx.signal ? { cancelSignal: ctx.signal } : {}) })
      findings.push((r as { code?: string }).code === 'ENOENT'
        ? { status: 'fail', source: `runner: ${shown}`, observed: `${argv[0]}: not found`, problem: `runner: ${argv[0]} not found` }
        : judge(`runner: ${shown}`, r.timedOut ? null : (r.exitCode ?? null), String(r.all ?? ''), 'runner'))
    } else {
      const nodes = ctx.nodes.filter((n) => (ctx.node ? n.name === ctx.node : true) && (p.on === 'nodes' || (p.on === 'control-plane') === (n.role === 'control-plane')))
      await Promise.all(nodes.map(async (n) => {
        const r = await readNode(ctx, n.target, typeof p.run === 'string' ? { script: p.run } : p.run, { timeoutMs })
        findings.push(r.error ? { status: 'unknown', source: `node ${n.name}`, observed: r.error, problem: `${n.name} unreachable over SSH` } : judge(`node ${n.name}: ${shown}`, r.exitCode, `${r.stdout}${r.stderr}`, n.name))
      }))
    }
    return verdict('command', findings, { ok: `\`${p.name ?? shown}\` exited 0 on ${p.on === 'runner' ? 'the runner' : `${findings.length} node(s)`}`, hint: 'your own check failed: see its output' })
  },
}
