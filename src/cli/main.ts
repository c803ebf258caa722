import { Command, CommanderError } from 'commander'
import { createRequire } from 'node:module'
import { ExitCode, KupgradeError, PlanError } from '../errors.js'
import { escapeControl, escapeControlKeepLines } from '../util/escape.js'
import { closest } from '../plan/suggest.js'
import { commands } from './commands/index.js'
import { wantsColor, type CliContext } from './context.js'

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string }

/** Parses argv, runs one command, and maps every outcome to an exit code. Never throws for user mistakes. */
export async function main(argv: string[], io: Partial<CliContext> = {}): Promise<number> {
  const ctx: CliContext = {
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    env: io.env ?? process.env,
    cwd: io.cwd ?? process.cwd(),
    color: false,
    verbose: false,
  }
  let exit: number = ExitCode.ok
  const program = new Command('kupgrade')
    .description('Safe, staged Kubernetes and OS upgrades for self-managed k0s, k3s and kubeadm clusters')
    .version(pkg.version, '--version', 'print the kupgrade version')
    .option('--verbose', 'print more detail (commands, timings)')
    .option('--no-color', 'disable colours (also NO_COLOR=1)')
    .addHelpText('after', `
Environment:
  KUPGRADE_KUBECTL   kubectl binary to use (default: the plan's, else kubectl on PATH)
  KUPGRADE_KUBECTL_PROXY=0
                     a kubectl process per API call (default: reads, probe pods, cordon and uncordon go through
                     one kubectl proxy per cluster)
  NO_COLOR           disable colours

Exit codes: 0 ok, 1 failed, 2 invalid input, 3 blocked by a gate, 4 paused, awaiting approval or lock held/lost, 130 interrupted`)
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
    })
    .hook('preAction', (cmd) => {
      const g = cmd.optsWithGlobals() as { color?: boolean; verbose?: boolean }
      ctx.color = wantsColor(g, ctx.env, ctx.stdout)
      ctx.verbose = Boolean(g.verbose)
    })
  // Load only the command being run; for anything else (top-level help, a typo) list every command by name alone,
  // so help and "did you mean" work without importing them all.
  const words = argv.slice(2).filter((a) => !a.startsWith('-'))
  const requested = words[0] === 'help' ? words[1] : words[0]
  const entry = commands.find((c) => c.name === requested)
  if (words[0] === 'help' && requested !== undefined && !entry) {
    // commander would print the top-level help and exit 0 for `kupgrade help nope`.
    const near = closest(requested, commands.map((c) => c.name))
    ctx.stderr.write(`error: unknown command '${requested}'${near ? `\n(Did you mean ${near}?)` : ''}\n`)
    return ExitCode.invalid
  }
  for (const c of commands) {
    if (c === entry) (await c.load()).register(program, ctx, (code) => { exit = code })
    else program.command(c.name).description(c.summary).allowUnknownOption().allowExcessArguments()
  }
  for (const sub of program.commands) sub.exitOverride().showSuggestionAfterError(true).configureOutput(program.configureOutput())

  try {
    await program.parseAsync(argv)
    return exit
  } catch (err) {
    return report(err, ctx)
  }
}

function report(err: unknown, ctx: CliContext): number {
  if (err instanceof CommanderError) {
    // Commander already printed its message; help and version are successful exits.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.ok
    return ExitCode.invalid
  }
  if (err instanceof KupgradeError) {
    // Plan problems are `file:line:col: message` lines, which editors and CI problem matchers parse: no prefix.
    const prefix = err instanceof PlanError || err.message.startsWith('kupgrade') ? '' : 'error: '
    // Messages echo values from plans, nodes and API servers: no control character of theirs reaches the terminal.
    ctx.stderr.write(`${prefix}${escapeControlKeepLines(err.message)}\n`)
    if (err.hint) ctx.stderr.write(`hint: ${escapeControl(err.hint)}\n`)
    if (ctx.verbose && err.cause) ctx.stderr.write(`cause: ${escapeControl(String((err.cause as Error)?.message ?? err.cause))}\n`)
    return err.exitCode
  }
  throw err
}

