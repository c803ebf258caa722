import { join } from 'node:path'
import { Option } from 'commander'
import { ExitCode, formatProblem } from '../../errors.js'
import { escapeControl } from '../../util/escape.js'
import { loadPlan } from '../../plan/load.js'
import { preGateIds, saidByGate } from '../../planner/gates.js'
import { deadlineOption, list } from '../options.js'
import type { RegisterCommand } from './index.js'

interface CheckOptions {
  cluster?: string[]
  gate?: string[]
  format: 'text' | 'markdown' | 'json'
  acceptNew?: boolean
  deadline: string
}

export const register: RegisterCommand = (program, ctx, setExit) => {
  program
    .command('check')
    .description("a health report: run the plan's pre-gates (read-only) against its clusters")
    .argument('<plan>', 'plan file')
    .option('--cluster <name>', 'only this cluster (repeatable, or comma-separated)', list)
    .option('--gate <id>', 'only this gate (repeatable, or comma-separated); any built-in gate id', list)
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'markdown', 'json']).default('text'))
    .option('--accept-new', 'record host keys of nodes not yet in known_hosts')
    .option('--deadline <duration>', "overall limit per cluster: a gate still waiting then is cancelled and reported unknown, naming the cluster", '60s')
    .addHelpText('after', `
Runs every pre-gate of the plan once (defaults plus the plan's own, minus gates.skip) and prints each verdict with the
evidence behind it. Nothing is changed; the api-vip and dns gates start a short-lived probe pod and always delete it.
\`unknown\` (could not read) counts as failing.

Exit codes: 0 every gate passed or warned, 2 invalid plan or usage, 3 a gate failed or was unknown`)
    .action(async (file: string, opts: CheckOptions) => {
      const deadlineMs = deadlineOption(opts.deadline)
      const loaded = loadPlan(file)
      // A warning one of the gates below reports too is left to the gate, which says it with its evidence.
      const gated = { gates: opts.gate ?? preGateIds(loaded.plan.spec.gates), clusters: opts.cluster ?? loaded.plan.spec.clusters.map((c) => c.name) }
      for (const w of loaded.warnings) if (!saidByGate(w, gated)) ctx.stderr.write(`${formatProblem(w)}\n`)
      const { SshPool } = await import('../../transport/ssh/pool.js')
      const { checkPlan } = await import('../../gates/check-plan.js')
      const { gatherFleetFacts } = await import('../../facts/gather.js')
      const report = await import('../../report/gate-report.js')
      const log = ctx.verbose ? (m: string) => ctx.stderr.write(`${m}\n`) : undefined
      const pool = new SshPool({ env: ctx.env, acceptNew: Boolean(opts.acceptNew), ...(log ? { debug: log } : {}) })
      let r
      try {
        const clusters = opts.cluster ? { clusters: opts.cluster } : {}
        // The gates judge machines as they are (as apply's do): a k0s controller without --enable-worker runs no
        // kubelet, so it has no Node, kube-proxy or pods to find — the facts say which machines are Kubernetes Nodes.
        const facts = await gatherFleetFacts(loaded, { transport: pool, env: ctx.env, stateDir: join(loaded.dir, '.kupgrade'), deadlineMs, ...clusters, ...(log ? { log } : {}) })
        // The gates may all pass where apply would still stop: another run holds the cluster.
        const { runLockWarning } = await import('../../facts/live.js')
        for (const c of facts.clusters) {
          const held = runLockWarning(c)
          if (held) ctx.stderr.write(`warning: ${escapeControl(held)}\n`)
        }
        r = await checkPlan(loaded, { transport: pool, env: ctx.env, deadlineMs, facts, ...clusters, ...(opts.gate ? { gates: opts.gate } : {}), ...(log ? { log } : {}) })
      } finally {
        await pool.close()
      }
      ctx.stdout.write(opts.format === 'json' ? `${JSON.stringify(report.gateReportJson(r), null, 2)}\n`
        : opts.format === 'markdown' ? report.renderGateReportMarkdown(r)
          : report.renderGateReportText(r, { color: ctx.color, verbose: ctx.verbose }))
      setExit(report.reportBlocks(r) ? ExitCode.blocked : ExitCode.ok)
    })
}
