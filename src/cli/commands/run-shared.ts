import { createInterface } from 'node:readline/promises'
import type { CliContext } from '../context.js'
import { saysYes } from '../../util/answer.js'
import { ExitCode } from '../../errors.js'
import type { RunRequest } from '../../executor/run.js'
import { createRunOutput, type OutputMode } from '../../report/run-output.js'

/**
 * What `apply`, `resume` and `demo` share: output mode, TTY confirmation, signal handling, running the executor and
 * printing its summary. SIGINT/SIGTERM let the step in flight finish (or stop safely), journal, print how to resume,
 * and exit 130; a second signal leaves at once (the journal is already on disk).
 */
export interface SharedRunOptions {
  output?: 'text' | 'json'
}

/**
 * How progress is shown: events as NDJSON with --output json, the live tree on a terminal, else plain lines. A
 * terminal that reports no size (a pseudo-terminal nobody sized: util-linux `script` run without a terminal, some CI
 * runners) cannot hold a redrawn tree: it would be cut to 0 rows while the run goes and wrapped at 0 columns, one
 * character a line, at its end. It gets the plain lines.
 */
export const outputMode = (o: SharedRunOptions, ctx: CliContext): OutputMode =>
  o.output === 'json' ? 'json' : ctx.stdout.isTTY && (ctx.stdout.columns ?? 0) > 0 && (ctx.stdout.rows ?? 0) > 0 && ctx.env.KUPGRADE_NO_TTY_UI === undefined ? 'tty' : 'plain'

export const canPrompt = (ctx: CliContext): boolean => Boolean(ctx.stdout.isTTY && process.stdin.isTTY) && !ctx.env.CI

export const approvalQuestion = (stage: string): string => `Stage ${stage} requires approval. Start it now?`

export async function ask(ctx: CliContext, question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: ctx.stdout })
  try {
    return saysYes(await rl.question(`${question} [y/N] `))
  } finally {
    rl.close()
  }
}

export async function runWithOutput(ctx: CliContext, o: SharedRunOptions, req: Omit<RunRequest, 'emit' | 'interrupt' | 'cwd' | 'env'>): Promise<number> {
  const { executeRun } = await import('../../executor/run.js')
  const out = await createRunOutput({ mode: outputMode(o, ctx), stdout: ctx.stdout, env: ctx.env, verbose: ctx.verbose, color: ctx.color })
  const interrupt = new AbortController()
  let signals = 0
  const onSignal = (sig: NodeJS.Signals) => {
    signals++
    if (signals === 1) {
      ctx.stderr.write(`\n${sig}: finishing the current step safely, then stopping (again to leave at once)\n`)
      interrupt.abort()
    } else process.exit(ExitCode.interrupted)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    const report = await executeRun({
      ...req, cwd: ctx.cwd, env: ctx.env, emit: out.sink, interrupt: interrupt.signal,
      // On a terminal the tree holds stdout while it draws: the question goes on the stage's own line instead.
      ...(req.confirm && out.ask ? { confirm: (stage: string) => out.ask!(stage, approvalQuestion(stage), interrupt.signal) } : {}),
      ...(ctx.verbose ? { log: (m: string) => ctx.stderr.write(`${m}\n`) } : {}),
    })
    await out.finish()
    return report.exitCode
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
