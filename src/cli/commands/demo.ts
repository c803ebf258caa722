import { Command } from 'commander'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { defaultTopology } from '../../lab/default-topology.js'
import { Lab } from '../../lab/lab.js'
import { formatStatus } from '../../lab/status-table.js'
import { normalizeTopology } from '../../lab/topology.js'
import { commands, type RegisterCommand } from './index.js'

/**
 * `kupgrade demo`: one command that shows kupgrade on a fleet without anything installed. It starts the demo lab
 * (staging k3s + production kubeadm) in a temporary directory, prints the fleet, runs the dry-run of the lab's plan
 * through the real CLI (`kupgrade plan DIR/plan.yaml`), then a real `kupgrade apply DIR/plan.yaml --yes` (staging,
 * soak, production; progress as a tree on a terminal, timestamped lines otherwise; the summary), and tears it down.
 */
export const register: RegisterCommand = (program, ctx, setExit) => {
  /** The long options another command registers (so the demo uses --live only where `plan` has it). */
  const optionsOf = async (name: string): Promise<string[]> => {
    const entry = commands.find((c) => c.name === name)
    if (!entry) return []
    const probe = new Command()
    ;(await entry.load()).register(probe, ctx, () => {})
    return probe.commands.find((c) => c.name() === name)?.options.map((opt) => opt.long ?? '') ?? []
  }
  program
    .command('demo')
    .description('start the demo lab fleet, show the dry-run of its plan, apply it staging → production with live progress and the summary, tear it down')
    .option('--dir <dir>', 'lab directory to use (default: a new temporary directory, removed afterwards)')
    .option('--keep', 'keep the lab directory (kubeconfig, plan.yaml, node roots) after the demo')
    .option('--api-only', 'serve only the clusters\' API servers, without SSH nodes')
    .addHelpText('after', '\nThe lab listens on loopback only: API servers on 127.0.10.x:6443, SSH nodes on 127.0.1x.y:2222.')
    .action(async (o: { dir?: string; keep?: boolean; apiOnly?: boolean }) => {
      const out = (s: string) => ctx.stdout.write(s.endsWith('\n') ? s : `${s}\n`)
      const dir = o.dir ? resolve(ctx.cwd, o.dir) : await mkdtemp(join(tmpdir(), 'kupgrade-demo-'))
      const lab = new Lab({ topology: normalizeTopology(defaultTopology()), dir, log: out, nodes: !o.apiOnly })
      out(`== starting the demo lab in ${dir}`)
      const started = Date.now()
      try {
        await lab.start()
        out(`lab up in ${Date.now() - started} ms: ${lab.clusters.size} clusters, API at ${[...lab.clusters.values()].map((c) => c.api.url).join(', ')}`)
        out(formatStatus(lab.status()))
        // The other commands run through the CLI's own entry point, exactly as a user would type them.
        const { main } = await import('../main.js')
        const run = (args: string[]) => main(['node', 'kupgrade', ...args], { stdout: ctx.stdout, stderr: ctx.stderr, env: ctx.env, cwd: ctx.cwd })
        const has = (name: string) => commands.some((c) => c.name === name)
        const plan = join(dir, 'plan.yaml')
        if (has('plan')) {
          // With --live the dry-run first reads the fleet (kubectl + SSH, read-only), as a user would run it.
          const live = (await optionsOf('plan')).includes('--live') && !o.apiOnly ? ['--live'] : []
          out(`== dry-run: kupgrade plan ${[...live, plan].join(' ')}`)
          const code = await run(['plan', ...live, plan])
          out(`(kupgrade plan exited with ${code})`)
          if (code !== 0) setExit(code)
        } else {
          out('== dry-run: this build has no `kupgrade plan` command yet; the plan for this fleet is:')
          out(`   ${plan}`)
        }
        if (has('apply')) {
          out(`== apply: kupgrade apply ${plan} --yes`)
          const code = await run(['apply', plan, '--yes'])
          out(`(kupgrade apply exited with ${code})`)
          setExit(code)
        } else {
          out('== apply: this build has no `kupgrade apply` yet, so the demo stops after the dry-run (nothing was changed)')
        }
        out('== fleet after the demo')
        out(formatStatus(lab.status()))
      } finally {
        await lab.stop()
        if (!o.keep && !o.dir) await rm(dir, { recursive: true, force: true })
        out(o.keep || o.dir ? `== lab stopped; files kept in ${dir}` : '== lab stopped and removed')
      }
    })
}
