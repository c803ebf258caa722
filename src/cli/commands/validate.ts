import { ExitCode, formatProblem, PlanError } from '../../errors.js'
import { loadPlan } from '../../plan/load.js'
import { escapeControl, escapeControlKeepLines } from '../../util/escape.js'
import type { RegisterCommand } from './index.js'

export const register: RegisterCommand = (program, ctx, setExit) => {
  program
    .command('validate')
    .description('check plans offline: schema and semantics, every problem as file:line:col: message')
    .argument('<plan...>', 'plan files')
    .addHelpText('after', '\nExit codes: 0 valid (warnings allowed), 2 invalid')
    .action((files: string[]) => {
      let invalid = false
      for (const file of files) {
        try {
          const { warnings } = loadPlan(file)
          for (const w of warnings) ctx.stderr.write(`${formatProblem(w)}\n`)
          ctx.stdout.write(`${escapeControl(file)}: valid\n`)
        } catch (err) {
          if (!(err instanceof PlanError) && !(err instanceof Error && 'exitCode' in err)) throw err
          invalid = true
          ctx.stderr.write(`${escapeControlKeepLines(err.message)}\n`)
        }
      }
      setExit(invalid ? ExitCode.invalid : ExitCode.ok)
    })
}
