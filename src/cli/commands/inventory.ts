import { join } from 'node:path'
import { Option } from 'commander'
import { ExitCode, UsageError } from '../../errors.js'
import { deadlineOption } from '../options.js'
import { gatherFleetFacts } from '../../facts/gather.js'
import { problems, renderInventory, skewMarkers, unreadCount } from '../../facts/render.js'
import { loadPlan } from '../../plan/load.js'
import { SshPool } from '../../transport/ssh/pool.js'
import { escapeDeep, escapeJsonText } from '../../util/escape.js'
import type { RegisterCommand } from './index.js'

interface InventoryOptions {
  cluster?: string[]
  format: 'table' | 'json'
  acceptNew?: boolean
  concurrency: string
  deadline: string
}

export const register: RegisterCommand = (program, ctx, setExit) => {
  program
    .command('inventory')
    .description('read the facts: per node versions (kubelet, kube-proxy, distribution, apiserver), OS, kernel, iptables backend, disk, reboot-required')
    .argument('<plan>', 'plan file')
    .option('--cluster <name...>', 'only these clusters')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .option('--accept-new', 'record host keys of nodes not yet in known_hosts (a changed key is always refused)')
    .option('--concurrency <n>', 'SSH handshakes at once (commands then run on every node at once)', '10')
    .option('--deadline <duration>', 'overall limit per cluster (API and every node); what is still outstanding then is named in the cluster\'s error', '60s')
    .addHelpText('after', `
Read-only: SSH to every node (one round trip each) and kubectl to every cluster (three calls each), all at once.
An unreachable node or API server is reported in its row; the exit code is then 1.

Environment: KUPGRADE_KUBECTL (kubectl binary), KUPGRADE_SSH_PASSPHRASE (identity file passphrase), SSH_AUTH_SOCK

Exit codes: 0 all read, 1 some node or cluster could not be read, 2 invalid plan or usage`)
    .action(async (file: string, opts: InventoryOptions) => {
      const loaded = loadPlan(file)
      const names = loaded.plan.spec.clusters.map((c) => c.name)
      const unknown = (opts.cluster ?? []).filter((c) => !names.includes(c))
      if (unknown.length) throw new UsageError(`unknown cluster ${unknown.join(', ')} in ${file}`, `the plan has: ${names.join(', ')}`)
      const concurrency = Number(opts.concurrency)
      if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError(`--concurrency must be a positive whole number, got ${opts.concurrency}`)
      const deadlineMs = deadlineOption(opts.deadline)
      const pool = new SshPool({
        concurrency,
        acceptNew: Boolean(opts.acceptNew),
        env: ctx.env,
        ...(ctx.verbose ? { debug: (m: string) => ctx.stderr.write(`ssh: ${m}\n`) } : {}),
      })
      try {
        const facts = await gatherFleetFacts(loaded, {
          transport: pool,
          env: ctx.env,
          ...(opts.cluster ? { clusters: opts.cluster } : {}),
          stateDir: join(loaded.dir, '.kupgrade'),
          deadlineMs,
          ...(ctx.verbose ? { log: (m: string) => ctx.stderr.write(`kubectl: ${m}\n`) } : {}),
        })
        // Facts come from nodes and API servers: their control characters are escaped in both formats.
        if (opts.format === 'json') ctx.stdout.write(`${escapeJsonText(JSON.stringify({ ...facts, skew: skewMarkers(facts), problems: problems(facts) }, null, 2))}\n`)
        else ctx.stdout.write(renderInventory(escapeDeep(facts)))
        const unread = unreadCount(facts)
        if (unread && opts.format !== 'json') ctx.stderr.write(`${unread}\n`)
        setExit(unread ? ExitCode.failed : ExitCode.ok)
      } finally {
        await pool.close()
      }
    })
}
