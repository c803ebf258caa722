import { Option } from 'commander'
import { readJournal } from '../../executor/journal.js'
import { findRun } from '../../executor/runs.js'
import { list } from '../options.js'
import type { RegisterCommand } from './index.js'
import { ask, canPrompt, runWithOutput } from './run-shared.js'

export const register: RegisterCommand = (program, ctx, setExit) => {
  program
    .command('rollback')
    .description("undo a run's changed nodes, newest first, each back at its old version with the post-gates re-run")
    .argument('[run]', 'run id, run directory, journal file, or a plan (or its folder) for its runs (default: the newest run under ./.kupgrade/runs)')
    .option('--cluster <name>', 'only these clusters (repeatable, or comma-separated)', list)
    .option('--yes', 'do not ask for confirmation on a terminal')
    .addOption(new Option('--output <format>', 'text or json (docs/events.md)').choices(['text', 'json']).default('text'))
    .option('--force-unlock', "take over a cluster lock whose holder's lease has expired")
    .option('--accept-new', 'record host keys of nodes not yet in known_hosts')
    .addHelpText('after', `
Every node the run changed (its journal says which steps are done) is rolled back as onFailure: rollback does it: the
done steps undone in reverse (the kept binary or the previous packages back, restarted), Ready at the old version,
uncordoned, then the cluster's post-gates again. A control-plane node whose version already moved is not downgraded
by binary (k0s, k3s with etcd and kubeadm do not support it): a k3s control plane is restored from the snapshot its
hop took first (k3s server --cluster-reset --cluster-reset-restore-path and the kept binary on the first server; with
several servers every server is stopped first and the others rejoin with their server/db moved aside, as \`plan\`
lists). A k0s or kubeadm cluster's only control-plane node is restored from its hop's backup (k0s reset, k0s restore and
the kept binary; the previous packages, etcdutl snapshot restore and /etc/kubernetes back); a kubeadm control plane of
several nodes as a whole (every static pod stopped, every etcd member restored from the first node's snapshot with its
own --name and peer URL, /etc/kubernetes back, the previous packages); a k0s cluster of several controllers as a whole
too (every controller stopped, k0s restore on the first, the others reset and joined to it with a controller token).
A restore from a snapshot takes every API object of the cluster back to that moment: what was created or changed
since is lost. The question (and, with --yes or in CI, the run's first lines) says which clusters and when their
snapshot was taken. A node the run's own onFailure already rolled back or rebuilt is left as it is. With --cluster,
only those of the run's clusters are taken back; no other is touched. The plan must be unchanged (its sha256 is in
the journal). A new \`kupgrade apply\` goes forward again (\`resume\` refuses a run taken back).

Exit codes: 0 rolled back (or nothing to undo), 1 a rollback stopped (see the message), 2 invalid input, 4 lock held,
130 interrupted`)
    .action(async (run: string | undefined, o: { cluster?: string[]; yes?: boolean; output: 'text' | 'json'; forceUnlock?: boolean; acceptNew?: boolean }) => {
      const journal = findRun(run, ctx.cwd, undefined, { anyStatus: true })
      const header = readJournal(journal).header
      if (canPrompt(ctx) && o.output !== 'json' && !o.yes && !(await ask(ctx, await rollbackQuestion(header.runId, journal, o.cluster)))) {
        ctx.stderr.write('nothing was changed\n')
        setExit(4)
        return
      }
      setExit(await runWithOutput(ctx, o, {
        planFile: header.plan, dryRun: false, approve: [], selection: o.cluster ? { clusters: o.cluster } : {},
        forceUnlock: Boolean(o.forceUnlock), acceptNew: Boolean(o.acceptNew), resumeJournal: journal, rollback: true,
      }))
    })
}

/** The question, with what a restore of a control plane from its snapshot loses (said in the run's first lines too). */
async function rollbackQuestion(runId: string, journal: string, clusters: string[] | undefined): Promise<string> {
  const { rollbackNotices } = await import('../../executor/restore-notice.js')
  const notices = rollbackNotices(journal, clusters)
  return `${notices.map((n) => `warning: ${n}\n`).join('')}Roll back the nodes run ${runId} changed${clusters ? ` in ${clusters.join(', ')}` : ''}?`
}
