import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { hostname, userInfo } from 'node:os'
import { join, resolve } from 'node:path'
import type { StepProgram } from '../drivers/program.js'
import { ExitCode, KupgradeError, type Problem } from '../errors.js'
import { defaultKubectl } from '../facts/gather.js'
import { readLiveState } from '../facts/live.js'
import { nodeTarget } from '../facts/targets.js'
import type { NodeFacts } from '../facts/types.js'
import { loadPlan, readPlanFile } from '../plan/load.js'
import type { Distribution } from '../plan/versions.js'
import { buildExecutionPlan } from '../planner/build.js'
import { buildRestorePlan, type RestoreRequest } from '../planner/restore.js'
import { preGateIds, saidByGate } from '../planner/gates.js'
import type { Step } from '../planner/types.js'
import type { KubectlClient } from '../transport/kubectl/client.js'
import { RecordingTransport, type RecordedMutation } from '../transport/recorder.js'
import { SshPool } from '../transport/ssh/pool.js'
import type { Transport } from '../transport/types.js'
import type { Node } from 'kubernetes-types/core/v1.js'
import { now, type EventSink, type FinalNode, type RunOutcome } from './events.js'
import { nodeReadiness } from './waits.js'
import { Executor, type ClusterRuntime, type RunResult } from './executor.js'
import { gateWaitPolicy, registryGateRunner, type GateRunner } from './gates.js'
import { programFor as driverProgramFor } from '../drivers/registry.js'
import { driverNodeFacts } from '../drivers/types.js'
import { Journal, JOURNAL_FORMAT, lastStates, readJournal, type JournalHeader, type Selection } from './journal.js'
import { datastoreRestores, restoreNotice } from './restore-notice.js'
import { LiveKubectl, RecordingKubectl, type KubectlChannel, type RecordedKubectl } from './kubectl-channel.js'
import { holderIdentity } from './lease.js'
import { acquireLocalLock, LOCAL_LOCK } from './local-lock.js'
import { journalPath, newRunId, runsDir, shownPath } from './runs.js'
import { checkStageOrder } from './stage-order.js'

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string }
export const KUPGRADE_VERSION = pkg.version

/**
 * Gates get the live facts the run read, as `check` and `plan --live` give them: which machines are Kubernetes Nodes
 * at all (a k0s controller without --enable-worker has no Node, kube-proxy or pods; the gates' kubeNodesInScope).
 */
function withFacts(runner: GateRunner, clusters: Map<string, ClusterRuntime>): GateRunner {
  return (gate, params, ctx, wait) => {
    const facts = clusters.get(ctx.cluster)?.facts
    if (!facts) return runner(gate, params, ctx, wait)
    return runner(gate, params, { ...ctx, nodeFacts: { ...Object.fromEntries(facts), ...ctx.nodeFacts } }, wait)
  }
}

/** What `apply`, `apply --dry-run`, `resume` and `demo` ask the executor for. */
export interface RunRequest {
  planFile: string
  cwd: string
  env: NodeJS.ProcessEnv
  dryRun: boolean
  approve: string[]
  selection: Selection
  forceUnlock: boolean
  acceptNew: boolean
  /** Start at a later stage although an earlier one has nodes left to upgrade (stage-order.ts). */
  ignoreStageOrder?: boolean
  emit: EventSink
  interrupt: AbortSignal
  confirm?: (stage: string) => Promise<boolean>
  /** Continue this journal instead of starting a run. */
  resumeJournal?: string
  /** With resumeJournal: undo the run's changed nodes (`kupgrade rollback`) instead of going on. */
  rollback?: boolean
  /** `kupgrade restore`: run the cluster's restore from a hop's backup (planner/restore.ts) instead of the plan. */
  restore?: RestoreRequest
  leaseSeconds?: number
  gateRunner?: GateRunner
  /** Tests inject transports (the lab's) and kubectl clients; default: SshPool and the user's kubectl. */
  transport?: Transport
  kubectlFor?: (cluster: string, client: KubectlClient) => KubectlChannel
  pollMs?: number
  log?: (m: string) => void
}

export interface RunReport extends RunResult {
  runId: string
  journal: string
  durationMs: number
  /** A dry-run's recorded writes, SSH and kubectl, in order. */
  recorded?: { ssh: RecordedMutation[]; kubectl: RecordedKubectl[] }
}

export const sha256 = (text: string | Buffer): string => createHash('sha256').update(text).digest('hex')

/** The drivers' programs (src/drivers/registry.ts), with the node's live facts (package manager, kubelet, architecture). */
const programFor = (step: Step, rt: ClusterRuntime): StepProgram | undefined => {
  const node = driverNodeFacts(step.node ? rt.facts.get(step.node) : undefined)
  return driverProgramFor(step, { distribution: rt.distribution, ...(node ? { node } : {}) })
}

export async function executeRun(req: RunRequest): Promise<RunReport> {
  const t0 = Date.now()
  const planFile = resolve(req.cwd, req.planFile)
  const text = readPlanFile(planFile, req.planFile)
  const hash = sha256(text)
  let resumed: ReturnType<typeof readJournal> | undefined
  if (req.resumeJournal) {
    resumed = readJournal(req.resumeJournal)
    if (resumed.header.planSha256 !== hash) {
      throw new KupgradeError(`the plan ${planFile} changed since run ${resumed.header.runId} started (sha256 ${resumed.header.planSha256.slice(0, 12)}… then, ${hash.slice(0, 12)}… now); resume refuses a changed plan`, {
        exitCode: ExitCode.invalid, hint: `restore the plan as it was, or start a new run: kupgrade apply ${shownPath(planFile, req.cwd)} (verify skips what is already done)`,
      })
    }
  }
  const loaded = loadPlan(planFile)
  // A resumed restore is a restore again: its journal says so.
  const restore = resumed ? resumed.header.restore : req.restore
  if (req.rollback && restore) throw new KupgradeError(`run ${resumed!.header.runId} is a restore of cluster ${restore.cluster}: there is no upgrade to roll back`, { exitCode: ExitCode.invalid, hint: `go on with it: kupgrade resume ${shownPath(req.resumeJournal!, req.cwd)}` })
  checkFlags(loaded.plan.spec, req.selection, req.approve)
  // A resumed run keeps its own selection; `kupgrade rollback --cluster` narrows it to the clusters it names.
  const selection = resumed
    ? (req.rollback ? narrowedForRollback(resumed.header, req.selection, loaded.plan.spec.stages) : resumed.header.selection)
    : restore ? { clusters: [restore.cluster] } : req.selection

  // The live facts decide, like `plan --live`, which steps are already done; the same facts go to the drivers.
  const live = await readLiveState(loaded, { env: req.env, acceptNew: req.acceptNew, ...(req.log ? { log: req.log } : {}) })
  if (req.rollback && !resumed) throw new KupgradeError('rollback needs a run to undo', { exitCode: ExitCode.invalid })
  // A restore is for a cluster that is not as the plan's `from` says, or not readable at all: its steps find out.
  if (live.blockers.length > 0 && !resumed && !restore) {
    throw new KupgradeError(`blocked before any change:\n${live.blockers.map((b) => `  - ${b}`).join('\n')}`, { exitCode: ExitCode.blocked, hint: 'fix the plan or the cluster; nothing was changed' })
  }
  const plan = restore ? buildRestorePlan(loaded.plan, restore, { facts: live.planner }) : buildExecutionPlan(loaded.plan, { facts: live.planner })
  // A resumed run was checked when it started; a rollback or restore goes back, not forward.
  if (!resumed && !restore && !req.ignoreStageOrder) checkStageOrder(plan, selection, shownPath(planFile, req.cwd))

  const resumedStates = resumed ? lastStates(resumed.entries) : undefined
  const runId = resumed?.header.runId ?? newRunId()
  const user = userInfo().username
  const host = hostname()
  const header: JournalHeader = resumed?.header ?? {
    kind: 'kupgrade-journal', format: JOURNAL_FORMAT, runId, plan: planFile, planSha256: hash, schemaVersion: plan.schemaVersion,
    kupgradeVersion: KUPGRADE_VERSION, host, user, startedAt: now(), selection, ...(restore ? { restore } : {}),
  }
  const path = req.resumeJournal ?? journalPath(loaded.dir, runId)
  const releaseLocal = req.dryRun ? () => {} : acquireLocalLock(join(runsDir(loaded.dir), LOCAL_LOCK), { runId, pid: process.pid, host, since: now() })
  let journal: Journal | undefined
  const inner = req.transport ?? new SshPool({ env: req.env, acceptNew: req.acceptNew, ...(req.log ? { debug: req.log } : {}) })
  const ssh = req.dryRun ? new RecordingTransport(inner) : inner
  const kubectls: RecordingKubectl[] = []
  try {
    journal = req.dryRun ? Journal.memory(header) : resumed ? Journal.open(path) : Journal.create(path, header)
    const clusters = new Map<string, ClusterRuntime>()
    for (const spec of loaded.plan.spec.clusters) {
      const client = defaultKubectl(spec, loaded, req.env, join(loaded.dir, '.kupgrade'), req.log)
      const liveChannel = req.kubectlFor ? req.kubectlFor(spec.name, client) : new LiveKubectl(spec.name, client)
      const kubectl = req.dryRun ? new RecordingKubectl(liveChannel) : liveChannel
      if (kubectl instanceof RecordingKubectl) kubectls.push(kubectl)
      const facts = new Map<string, NodeFacts>((live.facts.clusters.find((c) => c.name === spec.name)?.nodes ?? []).map((n) => [n.name, n]))
      clusters.set(spec.name, {
        spec, distribution: spec.distribution as Distribution, kubectl, facts,
        targets: new Map(spec.nodes.map((n) => [n.name, nodeTarget(spec, n, loaded.dir)])),
      })
    }
    const runDir = shownPath(join(runsDir(loaded.dir), runId), req.cwd)
    // What `plan --live` would warn of, said before anything runs; a resumed run said it when it started.
    const outline = plan.stages.filter((s) => !selection.stages || selection.stages.includes(s.name)).map((s) => ({
      stage: s.name,
      clusters: s.clusters.filter((c) => !selection.clusters || selection.clusters.includes(c.name)).map((c) => ({ name: c.name, distribution: c.distribution, nodes: [...c.controlPlane, ...c.batches.flat()] })),
    }))
    // A warning a pre-gate of this run reports too is left to the gate; one about a cluster the run does not cover
    // (`--stage production` and the staging cluster's) is not this run's.
    const gated = { gates: preGateIds(loaded.plan.spec.gates), clusters: outline.flatMap((s) => s.clusters.map((c) => c.name)) }
    const ours = (w: Problem) => !saidByGate(w, gated) && (w.cluster === undefined || gated.clusters.includes(w.cluster))
    // A rollback that restores a control plane from its snapshot loses what the cluster's API got since: said first.
    const restores = req.rollback ? datastoreRestores(plan, (id) => resumedStates!.get(id), selection.clusters).map((r) => restoreNotice(r)) : []
    const warnings = req.rollback ? restores : resumed ? [] : [...loaded.warnings.filter(ours).map((w) => w.message), ...live.warnings, ...plan.warnings]
    req.emit({ type: 'run-started', time: now(), runId, plan: planFile, journal: journal.path, dryRun: req.dryRun, resumed: Boolean(resumed), ...(req.rollback ? { rollback: true as const } : {}), stages: plan.stages.map((s) => s.name), warnings, outline })
    const executor = new Executor({
      plan, planFile, planDir: loaded.dir, runId, journal, ssh, clusters, emit: req.emit, dryRun: req.dryRun,
      approve: new Set(req.approve), ...(req.confirm ? { confirm: req.confirm } : {}),
      resumeCommand: (stage) => `kupgrade resume ${runDir}${stage ? ` --approve ${stage}` : ''}`, runDir,
      forceUnlock: req.forceUnlock, leaseSeconds: req.leaseSeconds ?? 30, holder: holderIdentity(runId, user, host),
      gateRunner: withFacts(req.gateRunner ?? registryGateRunner, clusters), gateWait: gateWaitPolicy(loaded.plan.spec.gates.wait), programFor, interrupt: req.interrupt, env: req.env, selection,
      ...(req.pollMs ? { pollMs: req.pollMs } : {}),
    })
    const result = req.rollback ? await executor.rollbackRun() : await executor.run()
    if (!req.dryRun) {
      const state = result.exitCode === ExitCode.ok ? 'done' : result.outcome === 'failed' ? 'failed' : 'paused'
      const status = req.rollback && result.outcome === 'done' ? 'rolled-back' : statusOf(result.outcome)
      journal.append({ step: 'run', state, attempt: 1, evidence: [status], error: result.message })
      // After the run's end is journaled: a hook that hangs or is killed leaves the run's outcome recorded.
      await executor.afterFailure(result)
    }
    if (req.dryRun) {
      // The kubectl channels are per cluster; put the writes back in the order they were made per kind.
      const writes = [
        ...(ssh instanceof RecordingTransport ? ssh.recorded.map((r) => ({ channel: 'ssh' as const, ...(r.cluster ? { cluster: r.cluster } : {}), node: r.node, why: r.why, command: r.command })) : []),
        ...kubectls.flatMap((k) => k.recorded.map((r) => ({ channel: 'kubectl' as const, cluster: r.cluster, why: r.why, command: r.command }))),
      ]
      req.emit({ type: 'dry-run-recorded', time: now(), writes })
    }
    if (!req.dryRun) req.emit({ type: 'nodes-final', time: now(), clusters: await finalNodes(loaded.plan.spec.clusters.map((c) => c.name).filter((c) => !selection.clusters || selection.clusters.includes(c)), clusters) })
    const report: RunReport = {
      ...result, runId, journal: journal.path, durationMs: Date.now() - t0,
      ...(ssh instanceof RecordingTransport ? { recorded: { ssh: ssh.recorded, kubectl: kubectls.flatMap((k) => k.recorded) } } : {}),
    }
    req.emit({ type: 'run-finished', time: now(), runId, outcome: result.outcome, exitCode: result.exitCode, durationMs: report.durationMs, journal: journal.path, message: result.message, ...(result.resume ? { resume: result.resume } : {}) })
    return report
  } finally {
    journal?.close()
    releaseLocal()
    if (!req.transport) await inner.close()
  }
}

/** Read-only: each cluster's planned nodes as the API shows them after the run (version, Ready, cordoned). */
async function finalNodes(names: string[], clusters: Map<string, ClusterRuntime>): Promise<{ cluster: string; nodes: FinalNode[]; error?: string }[]> {
  return Promise.all(names.map(async (name) => {
    const rt = clusters.get(name)!
    try {
      const list = JSON.parse(await rt.kubectl.read(['get', 'nodes', '-o', 'json'])) as { items?: Node[] }
      const byName = new Map((list.items ?? []).map((n) => [n.metadata?.name ?? '', n]))
      const nodes = rt.spec.nodes.flatMap((p): FinalNode[] => {
        const n = byName.get(p.name)
        if (!n) return []
        const r = nodeReadiness(n)
        return [{ node: p.name, kubelet: r.version, ready: r.ready, cordoned: n.spec?.unschedulable === true }]
      })
      return { cluster: name, nodes }
    } catch (err) {
      return { cluster: name, nodes: [], error: (err as Error).message.split('\n')[0]! }
    }
  }))
}

const statusOf = (o: RunOutcome): string => (o === 'nothing-to-do' ? 'done' : o === 'lock-lost' ? 'paused' : o)

/** The clusters `kupgrade rollback --cluster` names, each one the run covered; without --cluster, the run's own. */
function narrowedForRollback(run: JournalHeader, asked: Selection, stages: { name: string; clusters: string[] }[]): Selection {
  if (!asked.clusters) return run.selection
  const { clusters, stages: ran } = run.selection
  const covered = (c: string) => (!clusters || clusters.includes(c)) && (!ran || stages.some((s) => ran.includes(s.name) && s.clusters.includes(c)))
  const outside = asked.clusters.filter((c) => !covered(c))
  if (outside.length > 0) {
    const only = [...(ran ? [`stage ${ran.join(', ')}`] : []), ...(clusters ? [`cluster ${clusters.join(', ')}`] : [])].join(' and ')
    throw new KupgradeError(`run ${run.runId} did not cover cluster ${outside.join(', ')} (it ran only ${only}): it changed nothing there to roll back`, {
      exitCode: ExitCode.invalid, hint: 'name a cluster of that run with --cluster, or the run that upgraded it (kupgrade runs lists them)',
    })
  }
  return { ...run.selection, clusters: asked.clusters }
}

/**
 * The flags as given, against the plan, before anything is read: every name one the plan has (a misspelt --approve
 * would be dropped in silence, and the stage it meant would stop the run awaiting approval), and --stage and
 * --cluster together must meet (a cluster of no stage named selects nothing, and a run that did nothing would pass).
 */
function checkFlags(spec: { stages: { name: string; clusters: string[] }[]; clusters: { name: string }[] }, sel: Selection, approve: string[]): void {
  const stages = spec.stages.map((s) => s.name)
  const clusters = spec.clusters.map((c) => c.name)
  const named: [flag: string, given: string[], kind: string, known: string[]][] = [
    ['--stage', sel.stages ?? [], 'stage', stages], ['--approve', approve, 'stage', stages], ['--cluster', sel.clusters ?? [], 'cluster', clusters],
  ]
  for (const [flag, given, kind, known] of named) {
    for (const n of given) if (!known.includes(n)) throw new KupgradeError(`${flag} ${n}: the plan has no such ${kind} (${kind}s: ${known.join(', ')})`, { exitCode: ExitCode.invalid })
  }
  if (sel.stages && sel.clusters) {
    const chosen = spec.stages.filter((s) => sel.stages!.includes(s.name))
    const outside = sel.clusters.filter((c) => !chosen.some((s) => s.clusters.includes(c)))
    if (outside.length > 0) {
      throw new KupgradeError(`--cluster ${outside.join(', ')}: not in stage ${sel.stages.join(', ')} (its clusters: ${[...new Set(chosen.flatMap((s) => s.clusters))].join(', ')})`, {
        exitCode: ExitCode.invalid, hint: 'name the stage the cluster belongs to, or leave --stage out',
      })
    }
  }
}
