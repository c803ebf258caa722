import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { ExitCode, KupgradeError } from '../../errors.js'
import { listRuns, runsBeside, runsDir, stepCounts } from '../../executor/runs.js'
import type { RegisterCommand } from './index.js'

export const register: RegisterCommand = (program, ctx, setExit) => {
  program
    .command('runs')
    .description('list the runs recorded next to a plan (.kupgrade/runs)')
    .argument('[plan]', 'the plan file, or the directory holding it (default: the current directory)')
    .option('--dir <dir>', 'the directory holding the plan (the same as giving it as [plan])')
    .option('--json', 'print the list as JSON')
    .action((plan: string | undefined, o: { dir?: string; json?: boolean }) => {
      // A mistyped plan would otherwise list the runs of the folder it names (often the current one) as if they were its.
      if (plan !== undefined && !existsSync(resolve(ctx.cwd, plan))) {
        throw new KupgradeError(`${plan}: no such plan file or folder`, { exitCode: ExitCode.invalid, hint: 'pass the plan the runs ran, or the folder holding it (kupgrade runs DIR)' })
      }
      // Runs live beside the plan they ran (`apply PLAN` writes PLAN's folder/.kupgrade/runs): a plan file means its folder.
      const dir = plan === undefined ? runsDir(resolve(ctx.cwd, o.dir ?? '.')) : runsBeside(resolve(ctx.cwd, plan))
      const runs = listRuns(dir)
      if (o.json) {
        ctx.stdout.write(`${JSON.stringify(runs.map((r) => ({ runId: r.runId, status: r.status, plan: r.journal.header.plan, startedAt: r.startedAt, lastAt: r.lastAt, steps: r.steps, message: r.message })), null, 2)}\n`)
      } else if (runs.length === 0) {
        ctx.stdout.write(`no runs under ${dir}\n`)
      } else {
        const rows = runs.map((r) => [r.runId, r.status, r.startedAt.replace(/\.\d+Z$/, 'Z'), stepCounts(r.steps), r.journal.header.plan])
        const head = ['RUN', 'STATUS', 'STARTED', 'STEPS', 'PLAN']
        const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
        for (const r of [head, ...rows]) ctx.stdout.write(`${r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]!) : c)).join('  ')}\n`)
      }
      setExit(0)
    })
}
