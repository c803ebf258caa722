import { relative } from 'node:path'
import { Option } from 'commander'
import { ExitCode, KupgradeError } from '../../errors.js'
import { readBackupIndex, backupIndexPath, type BackupIndexEntry } from '../../executor/backup-copy.js'
import { loadPlan } from '../../plan/load.js'
import { buildExecutionPlan } from '../../planner/build.js'
import { buildRestorePlan, checkRestoreCluster } from '../../planner/restore.js'
import { planJsonChunks } from '../../report/plan-json.js'
import { renderPlanText } from '../../report/plan-text.js'
import { escapeControl, escapeDeep, escapeJsonBytes } from '../../util/escape.js'
import type { RegisterCommand } from './index.js'
import { runWithOutput } from './run-shared.js'

export const register: RegisterCommand = (program, ctx, setExit) => {
  program
    .command('restore')
    .description("rebuild a cluster from a hop's pre-hop backup: every node back at the version before that hop")
    .argument('<plan>', 'the plan file the cluster was upgraded with')
    .requiredOption('--cluster <name>', 'the cluster to restore')
    .option('--hop <n>', 'back to before this hop (default: the hop of the newest backup indexed in .kupgrade/backups)', hopNumber)
    .option('--yes', 'run the restore; without it the steps are printed and nothing is changed')
    .addOption(new Option('--output <format>', 'text or json: the steps (ExecutionPlan) without --yes, the run\'s events with it').choices(['text', 'json']).default('text'))
    .option('--force-unlock', "take over a cluster lock whose holder's lease has expired")
    .option('--accept-new', 'record host keys of nodes not yet in known_hosts')
    .addHelpText('after', `
For a cluster broken past what one node's rollback mends. Without --yes it prints the steps and changes nothing; run
it again with --yes to carry them out, journaled like apply (kupgrade resume continues a stopped restore):
  1. the cluster lock (with no API answering: the local lock until the restored API answers);
  2. the control plane restored from the hop's snapshot, even where the old version already runs — k3s: k3s server
     --cluster-reset --cluster-reset-restore-path with the kept binary (several servers: all stopped, the first
     reset, the others rejoin); k0s: k0s reset and k0s restore on the only controller; kubeadm: etcdutl snapshot
     restore and the kept /etc/kubernetes (several control-plane nodes: the first node's snapshot on each, every
     static pod stopped, every etcd member restored with its own --name and peer URL, one --initial-cluster);
  3. on every node, one at a time, its undos of that hop and the later ones in reverse (kept binaries, previous
     packages), Ready at the old version, uncordoned;
  4. the cluster's post-gates, expecting the old version; the lock released.
A backup the node lost is put back first from the copy in .kupgrade/backups. Several k0s controllers are restored by
hand: the command refuses and prints the procedure. Data written since the backup is lost.

Exit codes: 0 restored, 1 a step or gate failed (see the message), 2 invalid input, 4 printed only (no --yes) or
lock held, 130 interrupted`)
    .action(async (file: string, o: { cluster: string; hop?: number; yes?: boolean; output: 'text' | 'json'; forceUnlock?: boolean; acceptNew?: boolean }) => {
      const loaded = loadPlan(file)
      const backup = o.hop === undefined ? newestBackup(loaded.dir, loaded.plan, o.cluster, file, ctx.cwd) : undefined
      const hop = o.hop ?? backup!.hop!
      // Offline, from the file alone: the same steps the run plans again with the live facts (which only mark steps).
      const plan = buildRestorePlan(loaded.plan, { cluster: o.cluster, hop })
      if (!o.yes) {
        if (o.output === 'json') for (const piece of planJsonChunks(plan)) ctx.stdout.write(escapeJsonBytes(piece))
        else {
          const from = backup ? `the backup run ${backup.run} took on ${backup.node} at ${backup.time} (a copy in ${backup.dir})` : `hop ${hop}'s backup on the control-plane node`
          ctx.stdout.write(`${escapeControl(`Restore cluster ${o.cluster} to ${plan.target.kubernetes}, before hop ${hop}, from ${from}`)}\n`)
          ctx.stdout.write(renderPlanText(escapeDeep(plan), { color: ctx.color }))
        }
        ctx.stderr.write(`nothing was changed; to run these steps: kupgrade restore ${file} --cluster ${o.cluster} --hop ${hop} --yes\n`)
        setExit(ExitCode.paused)
        return
      }
      setExit(await runWithOutput(ctx, o, {
        planFile: file, dryRun: false, approve: [], selection: { clusters: [o.cluster] },
        forceUnlock: Boolean(o.forceUnlock), acceptNew: Boolean(o.acceptNew), restore: { cluster: o.cluster, hop },
      }))
    })
}

function hopNumber(v: string): number {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) throw new KupgradeError(`--hop ${v}: a hop number, 1 or more (kupgrade plan lists them)`, { exitCode: ExitCode.invalid })
  return n
}

/** The newest datastore backup of the cluster that apply copied off its node and indexed: the hop to go back before. */
function newestBackup(dir: string, plan: Parameters<typeof buildExecutionPlan>[0], cluster: string, file: string, cwd: string): BackupIndexEntry {
  // A name the plan lacks is that, not a cluster without backups.
  checkRestoreCluster(plan, cluster)
  const backups = new Set(buildExecutionPlan(plan).steps.filter((s) => s.action === 'backup' && s.cluster === cluster).map((s) => s.id))
  const entry = readBackupIndex(dir).filter((e) => e.cluster === cluster && e.hop !== undefined && backups.has(e.step)).at(-1)
  if (!entry) {
    throw new KupgradeError(`no backup of cluster ${cluster} is indexed in ${relative(cwd, backupIndexPath(dir))}: apply copies one there before each hop`, {
      exitCode: ExitCode.invalid, hint: `name the hop whose backup is on the control-plane node: kupgrade restore ${file} --cluster ${cluster} --hop N`,
    })
  }
  return entry
}
