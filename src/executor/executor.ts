import { join, relative } from 'node:path'
import type { ReadsBackup, StepProgram } from '../drivers/program.js'
import { addToHeadline, ExitCode } from '../errors.js'
import type { NodeFacts } from '../facts/types.js'
import type { GateContext, GateResult, GateStatus } from '../gates/types.js'
import type { WaitedResult } from '../gates/wait.js'
import type { ClusterSpec } from '../plan/schema.js'
import type { Distribution } from '../plan/versions.js'
import type { ClusterPlan, ClusterRestore, ExecutionPlan, StagePlan, Step } from '../planner/types.js'
import { sleep } from '../transport/backoff.js'
import type { NodeTarget, Transport } from '../transport/types.js'
import { parseDuration } from '../util/duration.js'
import { raiseListenerLimit } from '../util/signal.js'
import { now, reportWaiting, stepRef, type EventSink, type ExecutorEvent, type RunOutcome } from './events.js'
import { defaultServiceCIDR } from '../gates/context.js'
import { gateWait, type GateRunner, type GateWaitPolicy } from './gates.js'
import { HOOK_TIMEOUT, runHook, type HookFailure } from './hooks.js'
import type { Journal, JournalEntry, Selection, UndoRecord } from './journal.js'
import type { KubectlChannel } from './kubectl-channel.js'
import { ClusterLease, LockRefusedError, noAnswer } from './lease.js'
import { describeCommand, runProgram, StepFailure } from './run-program.js'
import { gateGroups, nodeRuns, segmentSteps, segments, type Segment } from './segments.js'
import { rebuildNode } from './rebuild.js'
import { appendBackupIndex, backupCopiesFor, backupIndexPath, backupsDir, copyBackupOffNode, putBackupBackOnNode } from './backup-copy.js'
import { nothingToTakeBack, rollbackNode, type NodeRunRef } from './rollback.js'
import { waitNodeReady } from './waits.js'
import { earlierSoak } from './earlier-soak.js'
import { drainGroups } from '../planner/drains.js'
import { releaseFetches, repoSwitches } from '../planner/fetches.js'

/** Everything the executor needs to act on one cluster. */
export interface ClusterRuntime {
  spec: ClusterSpec
  distribution: Distribution
  kubectl: KubectlChannel
  targets: Map<string, NodeTarget>
  facts: Map<string, NodeFacts>
}

export interface ExecutorOptions {
  plan: ExecutionPlan
  planFile: string
  planDir: string
  runId: string
  journal: Journal
  ssh: Transport
  clusters: Map<string, ClusterRuntime>
  emit: EventSink
  dryRun: boolean
  /** Stages approved on the command line (`--approve STAGE`). */
  approve: ReadonlySet<string>
  /** TTY confirmation of a stage's approval; absent without a TTY (then the run stops, exit 4). */
  confirm?: (stage: string) => Promise<boolean>
  /** The exact command that continues this run (printed when it stops for approval or is interrupted). */
  resumeCommand: (approveStage?: string) => string
  /** The run's directory as the user would type it (`kupgrade rollback DIR`). */
  runDir: string
  forceUnlock: boolean
  leaseSeconds: number
  holder: string
  gateRunner: GateRunner
  /** `spec.gates.wait`: how gates after a change are polled. */
  gateWait: GateWaitPolicy
  programFor: (step: Step, cluster: ClusterRuntime) => StepProgram | undefined
  /** Aborted on SIGINT/SIGTERM: the step in flight finishes or stops safely, nothing new starts. */
  interrupt: AbortSignal
  env: NodeJS.ProcessEnv
  selection: Selection
  pollMs?: number
}

export interface RunResult {
  outcome: RunOutcome
  exitCode: number
  message: string
  resume?: string
}

/** Why a cluster stopped. */
type Stop =
  | {
    kind: 'failed'; message: string; gateBeforeChange: boolean; node?: string; cordoned?: boolean; cluster?: string; rollback?: { ok: boolean; nodes: string[]; unchanged: string[]; reason?: string; how: 'rollback' | 'rebuild' }
    /** A node whose rollback an earlier process of this run already finished (ok) or stopped at (the reason). */
    rolledBackEarlier?: { ok: true } | { ok: false; reason: string }
  }
  | { kind: 'interrupted'; message: string }
  | { kind: 'lock-lost'; message: string }
  | { kind: 'lock-refused'; message: string }

/**
 * A cluster's run lock during its run. `retake`: the Lease is not held and is taken before each next segment — a
 * restore's lock whose API did not answer, or one a datastore restore brought back as its snapshot had it.
 * `restoredBefore`: when this run's datastore restore began; a Lease last renewed before then is the snapshot's.
 */
interface ClusterLock {
  lease: ClusterLease
  step?: Step
  held: boolean
  retake: boolean
  restoredBefore?: Date
}

/** The journal id of one node run's rollback (not a plan step: the plan cannot know which node will fail). */
export const rollbackId = (cluster: string, n: { node: string; hop?: number }): string => `${cluster}/${n.node}${n.hop !== undefined ? `/hop${n.hop}` : ''}/rollback`
/** The journal id of one node run's onFailure: rebuild (its steps are plan steps with their own entries). */
export const rebuildId = (cluster: string, n: { node: string; hop?: number }): string => `${cluster}/${n.node}${n.hop !== undefined ? `/hop${n.hop}` : ''}/rebuild`
/**
 * Whether a step's latest journal entry came after what the node run's own onFailure took back: after its newest
 * rollback or rebuild mark, or any time while that mark is unfinished (a rollback stopped mid-undo is taken up again).
 * `kupgrade rollback` and the notice of what it restores decide by this one rule.
 */
export const sinceTakenBack = (last: (id: string) => JournalEntry | undefined, cluster: string, n: { node: string; hop?: number }) => {
  const marks = [last(rollbackId(cluster, n)), last(rebuildId(cluster, n))].filter((e) => e !== undefined)
  const mark = marks.sort((a, b) => b.seq - a.seq)[0]
  return (stepId: string): boolean => mark?.state !== 'done' || (last(stepId)?.seq ?? 0) > mark.seq
}
/** What onFailure does to a failed node run, journaled under that id: take it back, rebuild it, or nothing. */
const recoveryOf = (c: ClusterPlan): 'rollback' | 'rebuild' | undefined => (c.onFailure === 'rollback' || c.onFailure === 'rebuild' ? c.onFailure : undefined)
const recoveryId = (c: ClusterPlan, n: { node: string; hop?: number }): string => (recoveryOf(c) === 'rebuild' ? rebuildId(c.name, n) : rollbackId(c.name, n))

/** The ends of a run the onFailure hooks hear of: all but success, an approval it waits for, and an interrupt. */
const FAILURE_OUTCOMES: ReadonlySet<RunOutcome> = new Set(['failed', 'blocked', 'paused', 'lock-lost'])

/** kupgrade restore's steps (planner/restore.ts): undo actions as steps of their own, which only a restore plan has. */
const RESTORE_ACTIONS: ReadonlySet<Step['action']> = new Set<Step['action']>(['restore-datastore', 'rejoin-datastore', 'restore-binary', 'downgrade-packages'])

export const NODE_WRITE_ACTIONS: ReadonlySet<Step['action']> = new Set<Step['action']>([
  'backup', 'cordon', 'drain', 'os-upgrade', 'reboot', 'upgrade-package', 'upgrade-control-plane', 'replace-binary', 'restart', 'uncordon',
  ...RESTORE_ACTIONS,
])

class Stopped extends Error {
  constructor(readonly stop: Stop) {
    super(stop.message)
  }
}

/**
 * The one executor (execution.md): `apply`, `apply --dry-run` and `resume` all run this over the planner's steps; only
 * the channels differ. Order comes from the plan; the executor adds only what the plan states — worker batches run
 * at once, clusters of a stage run up to `parallelClusters` at once — and what is its own: approval, the lock, gates,
 * hooks, soak and waits. Every state change is journaled (fsynced) before the next action.
 */
export class Executor {
  private readonly done: Map<string, JournalEntry>
  private readonly attempts = new Map<string, number>()
  private readonly touched = new Set<string>()
  /** Gate steps that follow a change (after-node, post): they poll until stable; the others check once. */
  private readonly afterChange = new Set<string>()
  /** Dry-run: nodes with a recorded (not made) write, whose live state no longer predicts later steps. */
  private readonly dryAhead = new Set<string>()
  private changedAny: boolean
  /** Steps an earlier process of this run journaled, and when it journaled its last entry (a resume's re-check). */
  private readonly earlier: ReadonlySet<string>
  private readonly earlierUntil?: string
  private lockLost?: string
  /** Each running cluster's run lock, where a datastore restore (act, rollback) must reach it. */
  private readonly locks = new Map<string, ClusterLock>()
  /** Per cluster, the nodes of the batch under way (GateContext.inFlight). */
  private readonly inFlight = new Map<string, Set<string>>()
  /** Per cluster, the finished control-plane nodes an onFailure rollback's restore of the control plane took back. */
  private readonly restoredAlong = new Map<string, string[]>()
  /** Aborted by an interrupt or a lost lock: waits and soaks stop at once; commands in flight finish. */
  private readonly halt = new AbortController()
  /** The stage the run is in, and the first step that failed in it: where the onFailure hooks say it stopped. */
  private stageNow?: StagePlan
  private firstFailed?: { step: Step; error: string }
  /** What the onFailure hooks are told (afterFailure). */
  private failure?: HookFailure

  constructor(private readonly o: ExecutorOptions) {
    this.done = o.journal.lastStates()
    for (const e of o.journal.entries) if (e.state === 'started') this.attempts.set(e.step, (this.attempts.get(e.step) ?? 0) + 1)
    this.changedAny = o.journal.entries.some((e) => e.state === 'done' && e.changed === true && !/\/(lock|unlock)$/.test(e.step))
    this.earlier = new Set(o.journal.entries.map((e) => e.step))
    const lastEarlier = o.journal.entries.at(-1)?.time
    if (lastEarlier !== undefined) this.earlierUntil = lastEarlier
    // A node this run already worked on is judged by the journal and verify, never by the planner's live-facts skip:
    // a node whose kubelet is at the target may still be cordoned from an interrupted attempt.
    const byId = new Map(o.plan.steps.map((s) => [s.id, s]))
    for (const e of o.journal.entries) {
      const s = byId.get(e.step)
      if (s?.node !== undefined && e.state !== 'skipped') this.touched.add(nodeKey(s))
    }
    for (const c of o.plan.stages.flatMap((st) => st.clusters)) {
      const changedNodes = new Set<string>()
      for (const s of c.steps) {
        if (s.node !== undefined && s.mutates && s.action !== 'gate') changedNodes.add(nodeKey(s))
        if (s.action === 'gate' && (s.phase === 'postflight' || (s.node !== undefined && changedNodes.has(nodeKey(s))))) this.afterChange.add(s.id)
      }
    }
    // Every kubectl and SSH command in flight listens on it: a 50-node batch is not a leak.
    raiseListenerLimit(this.halt.signal)
    if (o.interrupt.aborted) this.halt.abort()
    else o.interrupt.addEventListener('abort', () => this.halt.abort(), { once: true })
  }

  private emit(e: ExecutorEvent): void {
    this.o.emit(e)
  }

  private isDone(id: string): boolean {
    const s = this.o.journal.last(id)?.state
    return s === 'done' || s === 'skipped' || s === 'approved'
  }

  private selectedStages(): StagePlan[] {
    return this.o.plan.stages.filter((s) => !this.o.selection.stages || this.o.selection.stages.includes(s.name))
  }

  private selectedClusters(stage: StagePlan): ClusterPlan[] {
    return stage.clusters.filter((c) => !this.o.selection.clusters || this.o.selection.clusters.includes(c.name))
  }

  /** Whether a node step of the cluster is left to run: not done in this run, nor already in effect by live facts. */
  private clusterHasWork(c: ClusterPlan): boolean {
    return c.steps.some((s) => NODE_WRITE_ACTIONS.has(s.action) && !this.isDone(s.id) && this.skipOf(s) === undefined)
  }

  private stageHasWork(stage: StagePlan): boolean {
    return this.selectedClusters(stage).some((c) => this.clusterHasWork(c))
  }

  /**
   * Whether a stage of the plan after this one still has a node to upgrade: then a soak holds it back, whether it runs
   * in this process or in a later one (a CI job per stage runs `apply --stage`, and its soak is what the next job's
   * promotion rests on), and whatever --cluster selected.
   */
  private laterStagesHaveWork(stage: StagePlan): boolean {
    const stages = this.o.plan.stages
    return stages.slice(stages.indexOf(stage) + 1).some((st) => st.clusters.some((c) => this.clusterHasWork(c)))
  }

  async run(): Promise<RunResult> {
    const stages = this.selectedStages()
    try {
      let anything = false
      for (const stage of stages) {
        this.stageNow = stage
        const r = await this.runStage(stage)
        if (r === 'stopped-for-approval') {
          const cmd = this.o.resumeCommand(stage.name)
          return { outcome: 'awaiting-approval', exitCode: ExitCode.paused, message: `stage ${stage.name} needs approval; nothing in it has started`, resume: cmd }
        }
        anything ||= r === 'changed'
      }
      if (!anything && !this.changedAny) {
        return { outcome: 'nothing-to-do', exitCode: ExitCode.ok, message: this.o.dryRun ? 'nothing to do: every step\'s effect is already present' : 'nothing to do: every step\'s effect is already present; nothing was changed' }
      }
      return { outcome: 'done', exitCode: ExitCode.ok, message: this.o.dryRun ? 'dry-run complete: the recorded commands are what apply would run' : 'every stage is done' }
    } catch (err) {
      if (!(err instanceof Stopped)) throw err
      const s = err.stop
      const resume = this.o.dryRun ? undefined : this.o.resumeCommand()
      if (s.kind === 'interrupted') return { outcome: 'interrupted', exitCode: ExitCode.interrupted, message: s.message, ...(resume ? { resume } : {}) }
      if (s.kind === 'lock-lost') return { outcome: 'lock-lost', exitCode: ExitCode.paused, message: s.message, ...(resume ? { resume } : {}) }
      if (s.kind === 'lock-refused') return { outcome: 'paused', exitCode: ExitCode.paused, message: s.message }
      if (s.gateBeforeChange && !this.changedAny) return { outcome: 'blocked', exitCode: ExitCode.blocked, message: addToHeadline(s.message, '; nothing was changed') }
      const how = this.planOf(s.cluster)?.onFailure ?? 'pause'
      const cluster = s.cluster ? ` --cluster ${s.cluster}` : ''
      if (s.rollback?.ok) {
        const { nodes, unchanged } = s.rollback
        const restored = this.restoredAlong.get(s.cluster ?? '') ?? []
        const done = [
          ...(nodes.length ? [s.rollback.how === 'rebuild'
            ? `rebuilt (or, where only the cordon had changed, rolled back): ${nodes.join(', ')} Ready again, uncordoned, post-gates passing`
            : `rolled back: ${nodes.join(', ')} back at the old version, uncordoned, post-gates passing`] : []),
          ...(unchanged.length ? [`nothing to ${s.rollback.how === 'rebuild' ? 'rebuild' : 'roll back'}: this run had not changed ${unchanged.join(', ')}`] : []),
          ...(restored.length ? [`${restored.join(', ')} back at the old version too, with the control plane restored from the pre-hop snapshot`] : []),
        ]
        // Every failed node is as it was before the run: fixed, the run goes on from there (`status` says the same).
        return { outcome: 'failed', exitCode: ExitCode.failed, message: addToHeadline(s.message, `; ${done.join('; ')}`), ...(resume ? { resume } : {}) }
      }
      if (s.rollback) {
        const what = s.rollback.how === 'rebuild' ? 'rebuild' : 'rollback'
        return {
          outcome: 'failed', exitCode: ExitCode.failed,
          message: addToHeadline(s.message, `; the ${what} stopped: ${s.rollback.reason}. Nothing more was done (a ${what} is never rolled back or retried). Fix it, then: kupgrade rollback ${this.o.runDir}${cluster} (or kupgrade resume ${this.o.runDir} to go forward)`),
        }
      }
      if (how === 'abort') return { outcome: 'failed', exitCode: ExitCode.failed, message: s.message }
      const choices = resume ? `; to go on after fixing it: ${resume}; to undo this run's nodes instead: kupgrade rollback ${this.o.runDir}${cluster}` : ''
      return { outcome: 'paused', exitCode: ExitCode.paused, message: addToHeadline(s.message, choices), ...(resume ? { resume } : {}) }
    }
  }

  /**
   * `kupgrade rollback RUN`: every node this run changed is rolled back, newest first (clusters in reverse order,
   * within each the node runs in reverse, the last hop first), each through the same node rollback as onFailure, under
   * the cluster's lock. The first rollback that fails stops everything and says where.
   */
  async rollbackRun(): Promise<RunResult> {
    const rolled: string[] = []
    const order = this.o.plan.stages.flatMap((stage) => stage.clusters.map((c) => ({ stage, c })))
      .filter(({ c }) => !this.o.selection.clusters || this.o.selection.clusters.includes(c.name))
      .reverse()
    for (const { stage, c } of order) {
      const rt = this.o.clusters.get(c.name)
      if (!rt) continue
      this.stageNow = stage
      // Changed, failed (it may have half-happened), or undoing: a rollback that stopped mid-undo is taken up again.
      // What the node's own onFailure rollback already took back in this run is not rolled back twice.
      const toTakeBack = (n: NodeRunRef): boolean => {
        const since = sinceTakenBack((id) => this.o.journal.last(id), c.name, n)
        return n.steps.some((s) => s.mutates && since(s.id) && ((this.isDone(s.id) && this.o.journal.last(s.id)?.changed === true) || ['failed', 'undoing'].includes(this.o.journal.last(s.id)?.state ?? '')))
      }
      const runs = segments(c.steps)
        .flatMap(nodeRuns)
        .filter(toTakeBack)
        .reverse()
      if (runs.length === 0) {
        this.emit({ type: 'cluster-skipped', time: now(), stage: stage.name, cluster: c.name, reason: 'this run changed no node here' })
        continue
      }
      this.emit({ type: 'cluster-started', time: now(), stage: stage.name, cluster: c.name })
      const t0 = Date.now()
      const lease = new ClusterLease({ kubectl: rt.kubectl, holder: this.o.holder, durationSeconds: this.o.leaseSeconds, forceUnlock: this.o.forceUnlock, dryRun: false })
      try {
        const r = await lease.acquire()
        this.emit({ type: 'lock-acquired', time: now(), cluster: c.name, holder: this.o.holder, ...(r.takenOverFrom ? { takenOverFrom: r.takenOverFrom } : {}) })
      } catch (err) {
        this.lockStop(c.name, err, true)
        return { outcome: 'paused', exitCode: ExitCode.paused, message: `cluster ${c.name}: could not take the run lock: ${(err as Error).message}; nothing was rolled back there` }
      }
      this.renewLock(c.name, lease)
      const lock: ClusterLock = { lease, held: true, retake: false }
      this.locks.set(c.name, lock)
      let restoredWith: string | undefined
      try {
        for (const n of runs) {
          if (this.halt.signal.aborted) return { outcome: 'interrupted', exitCode: ExitCode.interrupted, message: `interrupted; rolled back so far: ${rolled.join(', ') || 'nothing'}` }
          // A node before it restored the datastore: the Lease came back as the snapshot had it and is taken again.
          try {
            await this.retakeLock(lock, c.name)
          } catch (err) {
            const stop = err instanceof Stopped ? err.stop : undefined
            return { outcome: 'failed', exitCode: ExitCode.failed, message: `${stop?.message ?? (err as Error).message}; rolled back before it: ${rolled.join(', ') || 'nothing'}` }
          }
          // Only a restore of the whole control plane, run in an earlier node's rollback here, leaves a node listed
          // with nothing left to take back: said so, without a second round of post-gates over an unchanged cluster.
          if (restoredWith && !toTakeBack(n)) {
            this.sayRestoredWith(c, n, restoredWith, 'kupgrade rollback')
            rolled.push(rolledName(c, n))
            continue
          }
          // (No rollback entry: `kupgrade rollback` stopped halfway is simply run again; its nodes are found the same way.)
          // The nodes a restore here takes back are said below, in this command's order (newest first).
          const rb = await this.rollbackNode(c, rt, n, 'kupgrade rollback', { sayRestored: false })
          restoredWith = n.node
          if (!rb.ok) {
            this.emit({ type: 'cluster-failed', time: now(), stage: stage.name, cluster: c.name, error: rb.reason })
            return { outcome: 'failed', exitCode: ExitCode.failed, message: `rollback of ${c.name}/${n.node} stopped: ${rb.reason}${rolled.length ? `; rolled back before it: ${rolled.join(', ')}` : ''}` }
          }
          rolled.push(rolledName(c, n))
        }
      } finally {
        this.locks.delete(c.name)
        await this.retakeLock(lock, c.name).catch(() => {})
        if (lock.held) await lease.release().then(() => this.emit({ type: 'lock-released', time: now(), cluster: c.name }), () => lease.stopRenewing())
        else lease.stopRenewing()
      }
      this.emit({ type: 'cluster-done', time: now(), stage: stage.name, cluster: c.name, durationMs: Date.now() - t0, changed: true })
    }
    return rolled.length
      ? { outcome: 'done', exitCode: ExitCode.ok, message: `rolled back: ${rolled.join(', ')} (each Ready at its old version, uncordoned, post-gates passing)` }
      : { outcome: 'nothing-to-do', exitCode: ExitCode.ok, message: 'nothing to roll back: this run changed no node' }
  }

  /**
   * The onFailure hooks of the stage the run stopped in, once the run has ended because something failed or refused
   * it (not for an approval it waits for, nor an interrupt: the user chose those). Each runs as a step of its own, told
   * how the run ended and what failed first; a hook that fails is reported and changes nothing about the outcome.
   */
  async afterFailure(result: RunResult): Promise<void> {
    if (this.o.dryRun || !FAILURE_OUTCOMES.has(result.outcome)) return
    const first = this.firstFailed
    const stage = this.o.plan.stages.find((st) => st.name === (first?.step.stage ?? this.stageNow?.name))
    if (!stage) return
    this.failure = {
      outcome: result.outcome, exitCode: result.exitCode, message: result.message, ...(result.resume ? { resume: result.resume } : {}),
      ...(first ? { step: first.step.id, error: first.error, ...(first.step.cluster ? { cluster: first.step.cluster } : {}), ...(first.step.node ? { node: first.step.node } : {}) } : {}),
    }
    for (const s of stage.onFailureHooks) await this.step(s, undefined, stage, { again: true })
  }

  /** 'changed' | 'unchanged' when the stage finished; 'stopped-for-approval' when it waits for one. */
  private async runStage(stage: StagePlan): Promise<'changed' | 'unchanged' | 'stopped-for-approval'> {
    const started = Date.now()
    const approval = stage.before.find((s) => s.action === 'approval')
    if (approval && !(await this.approve(stage, approval))) return 'stopped-for-approval'
    this.emit({ type: 'stage-started', time: now(), stage: stage.name })
    let changed = false
    try {
      for (const s of stage.before) if (s !== approval) await this.stepOrStop(s, undefined)
      const clusters = this.selectedClusters(stage)
      const results = await pool(clusters, Math.max(1, stage.parallelClusters), {}, (c) => this.runCluster(stage, c))
      const stop = results.find((r): r is Stop => typeof r === 'object')
      if (stop) throw new Stopped(stop)
      changed = results.some((r) => r === true)
      for (const s of stage.after) await this.stepOrStop(s, undefined, stage)
    } catch (err) {
      this.emit({ type: 'stage-failed', time: now(), stage: stage.name, error: (err as Error).message })
      throw err
    }
    this.emit({ type: 'stage-done', time: now(), stage: stage.name, durationMs: Date.now() - started })
    return changed ? 'changed' : 'unchanged'
  }

  private async approve(stage: StagePlan, step: Step): Promise<boolean> {
    if (this.isDone(step.id)) {
      this.emit({ type: 'approved', time: now(), stage: stage.name, by: 'journal' })
      return true
    }
    // Re-running a finished plan must not stop to ask for a stage that would change nothing.
    if (!this.stageHasWork(stage)) {
      const reason = `nothing to approve: no node of stage ${stage.name} is left to upgrade`
      this.o.journal.append({ step: step.id, state: 'skipped', attempt: 1, evidence: [reason] })
      this.emit({ type: 'step-skipped', time: now(), step: stepRef(step), reason, evidence: [] })
      return true
    }
    if (this.o.dryRun) {
      this.emit({ type: 'step-skipped', time: now(), step: stepRef(step), reason: `dry-run: apply would wait here for approval of stage ${stage.name}`, evidence: [] })
      return true
    }
    let by: 'flag' | 'tty' | undefined = this.o.approve.has(stage.name) ? 'flag' : undefined
    if (!by && this.o.confirm) by = (await this.o.confirm(stage.name)) ? 'tty' : undefined
    if (!by) {
      this.o.journal.append({ step: step.id, state: 'paused', attempt: 1, error: `awaiting approval of stage ${stage.name}` })
      this.emit({ type: 'approval-needed', time: now(), stage: stage.name, command: this.o.resumeCommand(stage.name) })
      return false
    }
    this.o.journal.append({ step: step.id, state: 'approved', attempt: 1, evidence: [by === 'flag' ? `--approve ${stage.name}` : 'confirmed on the terminal'] })
    this.emit({ type: 'approved', time: now(), stage: stage.name, by })
    return true
  }

  /** A cluster: true if something changed, false if nothing had to, or why it stopped. */
  private async runCluster(stage: StagePlan, c: ClusterPlan): Promise<boolean | Stop> {
    const rt = this.o.clusters.get(c.name)
    if (!rt) return { kind: 'failed', message: `cluster ${c.name}: not set up for this run`, gateBeforeChange: false }
    const pending = c.steps.filter((s) => s.action !== 'lock' && s.action !== 'unlock' && !this.isDone(s.id))
    if (pending.length === 0) {
      await this.releaseLeftLock(c, rt)
      this.emit({ type: 'cluster-skipped', time: now(), stage: stage.name, cluster: c.name, reason: 'done earlier in this run' })
      return false
    }
    if (!this.clusterHasWork(c)) {
      const osKept = pending.some((s) => s.action === 'os-upgrade')
      const reason = pending.some((s) => NODE_WRITE_ACTIONS.has(s.action)) ? osKept ? 'every node is already at the Kubernetes target; their OS packages are left as they are' : 'every node is already at the target' : 'no node step to run'
      const busy = await this.heldElsewhere(c, rt, reason)
      if (busy) {
        this.emit({ type: 'cluster-failed', time: now(), stage: stage.name, cluster: c.name, error: busy.message })
        return busy
      }
      for (const s of pending) this.o.journal.append({ step: s.id, state: 'skipped', attempt: 1, evidence: [reason] })
      await this.releaseLeftLock(c, rt)
      this.emit({ type: 'cluster-skipped', time: now(), stage: stage.name, cluster: c.name, reason })
      return false
    }
    const started = Date.now()
    this.emit({ type: 'cluster-started', time: now(), stage: stage.name, cluster: c.name })
    const lease = new ClusterLease({ kubectl: rt.kubectl, holder: this.o.holder, durationSeconds: this.o.leaseSeconds, forceUnlock: this.o.forceUnlock, dryRun: this.o.dryRun })
    const lock: ClusterLock = { lease, held: false, retake: false, ...this.restoredEarlier(c) }
    this.locks.set(c.name, lock)
    let changed = false
    let failedNodes = 0
    const rolledBack: string[] = []
    /** Nodes that failed before this run changed anything on them (a beforeNode gate or hook): nothing to take back. */
    const unchanged: string[] = []
    let firstFailure: Extract<Stop, { kind: 'failed' }> | undefined
    let otherStop: Stop | undefined
    let rollbackFailure: string | undefined
    const stopWith = (): Stop => otherStop ?? {
      ...firstFailure!,
      ...(recoveryOf(c) && !this.o.dryRun && firstFailure!.node
        ? { rollback: { ok: rollbackFailure === undefined, nodes: rolledBack, unchanged, how: recoveryOf(c)!, ...(rollbackFailure ? { reason: rollbackFailure } : {}) } }
        : {}),
    }
    /** A resumed cluster is checked again once, before its first segment left to run (recheckOnResume). */
    let rechecked = false
    try {
      const segs = segments(c.steps)
      for (const [at, seg] of segs.entries()) {
        if (this.halt.signal.aborted) throw new Stopped(this.haltStop())
        await this.retakeLock(lock, c.name)
        if (!rechecked && !(seg.kind === 'step' && (seg.step.action === 'lock' || seg.step.action === 'unlock')) && segmentSteps(seg).some((s) => !this.isDone(s.id))) {
          rechecked = true
          await this.recheckOnResume(stage, c, rt, segs, at)
        }
        if (seg.kind === 'step') {
          const s = seg.step
          if (s.action === 'lock') {
            lock.step = s
            lock.held = await this.lockStep(s, lock)
            lock.retake = !lock.held
            continue
          }
          if (s.action === 'unlock') {
            if (lock.retake) throw new Stopped({ kind: 'failed', message: `cluster ${c.name}: the API never answered, so the run lock was not taken again (the restore's steps ran under the local lock only)`, gateBeforeChange: false })
            await this.unlockStep(s, lease)
            lock.held = false
            continue
          }
          const r = await this.step(s, rt)
          if (r !== true && r !== false) throw new Stopped(r)
          changed ||= r
          continue
        }
        if (seg.kind === 'gates') {
          await this.together(seg.steps, rt)
          continue
        }
        const runs = seg.kind === 'node' ? [seg] : seg.nodes
        // The batch's nodes under way: each leaves when it is done; one that failed stays until its rollback is over.
        const underWay = new Set(runs.map((n) => n.node))
        this.inFlight.set(c.name, underWay)
        const results = await Promise.all(runs.map(async (n) => {
          const r = await (this.rollbackOfThisRun(c, n) ?? this.nodeRun(stage, c, rt, n))
          if (r === true || r === false) underWay.delete(n.node)
          return r
        }))
        let stopNow = false
        for (const [i, r] of results.entries()) {
          if (r === true) changed = true
          else if (r !== false) {
            stopNow ||= r.kind !== 'failed'
            if (r.kind !== 'failed') {
              otherStop ??= r
              continue
            }
            failedNodes++
            firstFailure ??= { ...r, cluster: c.name }
            if (r.rolledBackEarlier?.ok) rolledBack.push(r.node!)
            else if (r.rolledBackEarlier) {
              rollbackFailure ??= `${r.node}: ${r.rolledBackEarlier.reason}`
              stopNow = true
            } else if (recoveryOf(c) && !this.o.dryRun && r.node) {
              if (nothingToTakeBack(runs[i]!, (id) => this.o.journal.last(id)?.state)) {
                // Rolling back (or rebuilding) a node no step of this run changed would only claim a rollback that
                // did nothing, and a rebuild would wipe a healthy node. Its steps are journaled taken back so that a
                // resume checks its gates again.
                unchanged.push(r.node)
                this.takenBack(runs[i]!, `nothing to take back: this run had not changed ${r.node}`)
              } else {
                const rb = recoveryOf(c) === 'rebuild' ? await this.rebuild(c, rt, runs[i]!, r.message) : await this.rollback(c, rt, runs[i]!, r.message)
                if (rb.ok) rolledBack.push(r.node)
                else {
                  rollbackFailure ??= `${r.node}: ${rb.reason}`
                  stopNow = true
                }
              }
            } else stopNow = true
            // A control-plane node that failed stops the cluster even when rolled back: no worker may move past it.
            if (runs[i]!.steps[0]?.role === 'control-plane') stopNow = true
          }
        }
        this.inFlight.delete(c.name)
        // Nodes of a batch finish together. With pause or abort the first failure stops the cluster; with rollback,
        // a rolled-back node lets the cluster go on until maxFailedNodes nodes failed (the circuit breaker), and a
        // rollback that itself failed stops at once.
        if (otherStop || (firstFailure && (stopNow || failedNodes >= c.maxFailedNodes))) throw new Stopped(stopWith())
      }
      // Every node was tried, some failed and were rolled back: the cluster failed (later stages never start).
      if (firstFailure) throw new Stopped(stopWith())
    } catch (err) {
      const raw: Stop = err instanceof Stopped ? err.stop : { kind: 'failed', message: (err as Error).message, gateBeforeChange: false }
      // The cluster's onFailure decides what the run does about it.
      // Whether the node stays cordoned is known only now: a rollback or rebuild that follows the failure uncordons it
      // (or says where it stopped), so only a failure nothing recovers from leaves it cordoned.
      const stop: Stop = raw.kind === 'failed'
        ? { ...raw, cluster: raw.cluster ?? c.name, ...(raw.cordoned && raw.node && !raw.rollback ? { message: addToHeadline(raw.message, ` (${raw.node} is left cordoned)`) } : {}) }
        : raw
      this.emit({ type: 'cluster-failed', time: now(), stage: stage.name, cluster: c.name, error: stop.message })
      // A Lease a datastore restore brought back is taken again first, so that it is released rather than left held.
      if (lock.retake && stop.kind !== 'lock-lost' && stop.kind !== 'lock-refused') await this.retakeLock(lock, c.name).catch(() => {})
      if (lock.held && stop.kind !== 'lock-lost') await lease.release().then(() => this.emit({ type: 'lock-released', time: now(), cluster: c.name }), () => {})
      else lease.stopRenewing()
      return stop
    } finally {
      this.locks.delete(c.name)
      this.inFlight.delete(c.name)
    }
    this.emit({ type: 'cluster-done', time: now(), stage: stage.name, cluster: c.name, durationMs: Date.now() - started, changed })
    return changed
  }

  private haltStop(): Stop {
    return this.lockLost ? { kind: 'lock-lost', message: `the run lock was lost: ${this.lockLost}` } : { kind: 'interrupted', message: 'interrupted' }
  }

  /**
   * Takes the cluster's Lease; true once held. false: a restore's lock (`whileApiDown: 'defer'`), or the lock of a run
   * resumed after an earlier process of it began a datastore restore (killed halfway through one, it left the API
   * down: what it was doing is what brings the API back), whose API did not answer — the step is journaled done under
   * the local lock and retakeLock tries again before each next segment.
   */
  private async lockStep(s: Step, lock: ClusterLock): Promise<boolean> {
    const defer = (s.action === 'lock' && s.params.whileApiDown === 'defer') || lock.restoredBefore !== undefined
    const attempt = this.nextAttempt(s.id)
    const t0 = Date.now()
    this.o.journal.append({ step: s.id, state: 'started', attempt })
    this.emit({ type: 'step-started', time: now(), step: stepRef(s), attempt })
    try {
      const r = await lock.lease.acquire(lock.restoredBefore)
      const evidence = [`Lease kube-system/kupgrade-lock held by "${this.o.holder}"${r.takenOverFrom ? ` (${tookOver(r)})` : ''}`]
      this.o.journal.append({ step: s.id, state: 'done', attempt, evidence, changed: true, undo: { commands: ['release the lock'] } })
      this.emit({ type: 'lock-acquired', time: now(), cluster: s.cluster!, holder: this.o.holder, ...(r.takenOverFrom ? { takenOverFrom: r.takenOverFrom } : {}) })
      this.emit({ type: 'step-done', time: now(), step: stepRef(s), attempt, durationMs: Date.now() - t0, changed: true, evidence })
    } catch (err) {
      const msg = (err as Error).message
      if (defer && noAnswer(err)) {
        const evidence = [`the API does not answer (${msg.split('\n')[0]}): going on under the local lock; the Lease is taken as soon as the API answers`]
        this.o.journal.append({ step: s.id, state: 'done', attempt, evidence, changed: false })
        this.emit({ type: 'step-done', time: now(), step: stepRef(s), attempt, durationMs: Date.now() - t0, changed: false, evidence })
        return false
      }
      this.o.journal.append({ step: s.id, state: 'failed', attempt, error: msg })
      this.emit({ type: 'step-failed', time: now(), step: stepRef(s), attempt, durationMs: Date.now() - t0, error: msg, evidence: [] })
      throw new Stopped(this.lockStop(s.cluster!, err, true))
    }
    this.renewLock(s.cluster!, lock.lease)
    return true
  }

  /**
   * The Lease taken again where it is not held (lock.retake), quietly while the API gives no answer. Another run's
   * answer (the lock is held) stops the cluster. Once taken it is journaled on the lock step and renewed as any.
   */
  private async retakeLock(lock: ClusterLock, cluster: string): Promise<void> {
    if (!lock.retake) return
    const s = lock.step
    let r: Awaited<ReturnType<ClusterLease['acquire']>>
    try {
      r = await lock.lease.acquire(lock.restoredBefore)
    } catch (err) {
      if (noAnswer(err)) return
      throw new Stopped(this.lockStop(cluster, err, false))
    }
    lock.retake = false
    lock.held = true
    const evidence = [`Lease kube-system/kupgrade-lock held by "${this.o.holder}" (taken once the API answered${r.takenOverFrom ? `, ${tookOver(r)}` : ''})`]
    if (s) this.o.journal.append({ step: s.id, state: 'done', attempt: this.nextAttempt(s.id), evidence, changed: true, undo: { commands: ['release the lock'] } })
    this.emit({ type: 'lock-acquired', time: now(), cluster, holder: this.o.holder, ...(r.takenOverFrom ? { takenOverFrom: r.takenOverFrom } : {}), afterRestore: true })
    this.renewLock(cluster, lock.lease)
  }

  /**
   * An earlier process of this run stopped after the cluster's last step but before its unlock (a kill, a crash): the
   * Lease it held is still this run's, so a resume that finds nothing left to do releases it, as the unlock step,
   * rather than leave it held until it expires (refusing every other run meanwhile). acquire() takes it only where it
   * is still this run's; another run's, or an API that does not answer, is left alone and the unlock stays to do.
   */
  private async releaseLeftLock(c: ClusterPlan, rt: ClusterRuntime): Promise<void> {
    const lockStep = c.steps.find((s) => s.action === 'lock')
    const unlock = c.steps.find((s) => s.action === 'unlock')
    if (this.o.dryRun || !lockStep || !unlock || this.isDone(unlock.id) || this.o.journal.last(lockStep.id) === undefined) return
    const lease = new ClusterLease({ kubectl: rt.kubectl, holder: this.o.holder, durationSeconds: this.o.leaseSeconds, forceUnlock: false, dryRun: false })
    try {
      await lease.acquire(this.restoredEarlier(c).restoredBefore)
    } catch {
      return
    }
    await this.unlockStep(unlock, lease)
  }

  /**
   * A cluster with nothing left to do is still another run's while that run holds its lock (it may be at its
   * post-gates, or about to roll it back): this run does not count it as done, nor promote past it. Read only: a
   * finished plan run again writes nothing. A dry-run does not look (it takes no lock either).
   */
  private async heldElsewhere(c: ClusterPlan, rt: ClusterRuntime, reason: string): Promise<Stop | undefined> {
    if (this.o.dryRun || !c.steps.some((s) => s.action === 'lock')) return undefined
    const lease = new ClusterLease({ kubectl: rt.kubectl, holder: this.o.holder, durationSeconds: this.o.leaseSeconds, forceUnlock: this.o.forceUnlock, dryRun: false })
    let refusal: LockRefusedError | undefined
    try {
      refusal = await lease.refusedBy()
    } catch (err) {
      return { kind: 'failed', message: `cluster ${c.name}: ${reason}, but its run lock could not be read, so whether another run is still working on it is not known: ${(err as Error).message}`, gateBeforeChange: true }
    }
    if (!refusal) return undefined
    const stop = this.lockStop(c.name, refusal, true)
    return { ...stop, message: addToHeadline(stop.message, ` (${reason}, but that run has not finished with it: this run does not count it as done)`) }
  }

  /** Why a cluster stops when its Lease could not be taken; another run holding it is reported as such (lock-refused). */
  private lockStop(cluster: string, err: unknown, gateBeforeChange: boolean): Stop {
    const msg = (err as Error).message
    if (err instanceof LockRefusedError) {
      this.emit({ type: 'lock-refused', time: now(), cluster, holder: err.holder, since: err.since, expired: err.expired })
      return { kind: 'lock-refused', message: `${msg}${err.hint ? `\n${err.hint}` : ''}` }
    }
    return { kind: 'failed', message: `cluster ${cluster}: could not take the run lock: ${msg}`, gateBeforeChange }
  }

  /**
   * A datastore restore brings the Lease back as its snapshot had it (the lock of the run that took it, at an older
   * resourceVersion): renewing across it would be refused (409) and lose the lock. So renewal stops before it, and the
   * Lease is taken again before the cluster's next segment (a Lease last renewed before the restore began is the
   * snapshot's and is taken over). The local lock holds throughout.
   */
  private async acrossDatastoreRestore<T>(cluster: string, restore: () => Promise<T>): Promise<T> {
    const lock = this.locks.get(cluster)
    if (!lock || this.o.dryRun) return restore()
    lock.restoredBefore ??= new Date()
    if (lock.held) {
      await lock.lease.pauseRenewing()
      lock.held = false
      lock.retake = true
    }
    return restore()
  }

  /** A resumed run whose earlier process restored the datastore: when that began (its Lease may be the snapshot's). */
  private restoredEarlier(c: ClusterPlan): { restoredBefore?: Date } {
    // A restore's own steps (kupgrade restore), a hop's control-plane restore (a rollback ran it), or a step whose
    // undo restores the datastore being undone (the only control-plane node's rollback).
    const restores = [...c.steps, ...(c.restore ?? []).flatMap((r) => (r.automatic ? r.steps : []))].filter((s) => s.action === 'restore-datastore' && this.o.journal.last(s.id))
    const undone = c.steps.filter((s) => s.undo !== undefined && 'action' in s.undo && s.undo.action === 'restore-datastore' && ['undoing', 'undone'].includes(this.o.journal.last(s.id)?.state ?? ''))
    const times = [...restores, ...undone].map((s) => Date.parse(this.o.journal.last(s.id)!.time))
    return times.length ? { restoredBefore: new Date(Math.min(...times)) } : {}
  }

  private renewLock(cluster: string, lease: ClusterLease): void {
    lease.startRenewing(
      (rv) => this.emit({ type: 'lock-renewed', time: now(), cluster, resourceVersion: rv }),
      (reason) => {
        this.lockLost = `cluster ${cluster}: ${reason}`
        this.emit({ type: 'lock-lost', time: now(), cluster, reason })
        this.halt.abort()
      },
    )
  }

  private async unlockStep(s: Step, lease: ClusterLease): Promise<void> {
    const attempt = this.nextAttempt(s.id)
    this.o.journal.append({ step: s.id, state: 'started', attempt })
    this.emit({ type: 'step-started', time: now(), step: stepRef(s), attempt })
    const t0 = Date.now()
    await lease.release()
    this.o.journal.append({ step: s.id, state: 'done', attempt, changed: true })
    this.emit({ type: 'lock-released', time: now(), cluster: s.cluster! })
    this.emit({ type: 'step-done', time: now(), step: stepRef(s), attempt, durationMs: Date.now() - t0, changed: true, evidence: [] })
  }

  private async nodeRun(stage: StagePlan, c: ClusterPlan, rt: ClusterRuntime, n: { node: string; hop?: number; steps: Step[] }): Promise<boolean | Stop> {
    if (n.steps.every((s) => this.isDone(s.id))) return false
    const t0 = Date.now()
    const ids = { stage: stage.name, cluster: c.name, node: n.node, ...(n.hop !== undefined ? { hop: n.hop } : {}) }
    this.emit({ type: 'node-started', time: now(), ...ids, ...(n.steps[0]?.batch !== undefined ? { batch: n.steps[0].batch } : {}) })
    let changed = false
    for (const group of gateGroups(n.steps)) {
      if (this.halt.signal.aborted) return this.haltStop()
      const r = group.length === 1 ? await this.step(group[0]!, rt) : await this.together(group, rt).then(() => false, (err) => {
        if (err instanceof Stopped) return err.stop
        throw err
      })
      if (r === true) changed = true
      else if (r !== false) {
        if (r.kind === 'failed') {
          const cordoned = n.steps.some((x) => x.action === 'cordon' && this.isDone(x.id)) && !n.steps.some((x) => x.action === 'uncordon' && this.isDone(x.id))
          this.emit({ type: 'node-failed', time: now(), ...ids, error: r.message, cordoned })
          return { ...r, node: n.node, cordoned, message: `${c.name}/${n.node}: ${r.message}` }
        }
        return r
      }
    }
    this.emit({ type: 'node-done', time: now(), ...ids, durationMs: Date.now() - t0 })
    return changed
  }

  /**
   * A node this run already failed and began rolling back, before the process stopped (killed, lock lost) — read from
   * its rollback entry, which a later end of the run supersedes. Its resume does what the run was doing, not go forward
   * on a node it decided to take back: a rollback cut short is finished (every undo is verify → run → verify, so
   * what was undone runs nothing); a finished one, or one that stopped, is the node's result as it was. After the run
   * ended (failed, rolled back), `resume` is the user's "go on after fixing it": the node is tried forward again.
   */
  private rollbackOfThisRun(c: ClusterPlan, n: NodeRunRef): Promise<Stop> | undefined {
    if (this.o.dryRun) return undefined
    const entry = this.o.journal.last(recoveryId(c, n))
    const ended = this.o.journal.last('run')
    if (!entry || (ended && ended.seq > entry.seq)) return undefined
    const why = entry.evidence?.[0] ?? 'failed'
    const failed = { kind: 'failed' as const, node: n.node, cordoned: true, gateBeforeChange: false, message: why }
    if (entry.state === 'started') {
      this.emit({ type: 'node-failed', time: now(), stage: n.steps[0]?.stage ?? '', cluster: c.name, node: n.node, ...(n.hop !== undefined ? { hop: n.hop } : {}), error: `${why} (the run stopped during its ${recoveryOf(c) ?? 'rollback'}: finishing it)`, cordoned: true })
      return Promise.resolve(failed)
    }
    return Promise.resolve({ ...failed, rolledBackEarlier: entry.state === 'done' ? { ok: true } : { ok: false, reason: entry.error ?? 'the rollback failed' } })
  }

  /**
   * onFailure: rollback for one failed node run (rollback.ts); the hop's post-gates re-run after it. Journaled as one
   * entry per node run (started, then done or failed), so a run stopped halfway through a rollback resumes it.
   */
  private async rollback(c: ClusterPlan, rt: ClusterRuntime, run: NodeRunRef, why: string) {
    const id = rollbackId(c.name, run)
    const attempt = (this.o.journal.last(id)?.attempt ?? 0) + 1
    await this.o.journal.appendDurable({ step: id, state: 'started', attempt, evidence: [why] })
    const rb = await this.rollbackNode(c, rt, run, why)
    if (rb.ok) this.takenBack(run, `taken back by the rollback of ${run.node}`)
    await this.o.journal.appendDurable(rb.ok ? { step: id, state: 'done', attempt, evidence: [why, ...rb.evidence], changed: true } : { step: id, state: 'failed', attempt, error: rb.reason, evidence: [why, ...rb.evidence] })
    return rb
  }

  /**
   * A node taken back to before its run (rolled back, rebuilt): its forward steps are journaled undone, so a later
   * resume (the user's "go on after fixing it") upgrades it again instead of finding them done. The rollback's undos
   * took back only the steps that have one; a restart or a gate has none, and left done, a resume would skip the
   * restart after putting the new binary back, and wait in vain for the new version. A step that cannot be undone
   * (an OS upgrade) stays done: it was not taken back.
   */
  private takenBack(run: NodeRunRef, why: string): void {
    for (const s of run.steps) {
      const last = this.o.journal.last(s.id)
      if ((last?.state === 'done' && !(last.undo && 'irreversible' in last.undo)) || last?.state === 'failed') this.o.journal.append({ step: s.id, state: 'undone', attempt: 1, evidence: [why], changed: false })
    }
  }

  /**
   * onFailure: rebuild for one failed node run (rebuild.ts), journaled like a rollback: one entry per node run, so a
   * run stopped halfway through a rebuild resumes it (its finished steps stand) instead of going forward.
   */
  private async rebuild(c: ClusterPlan, rt: ClusterRuntime, run: NodeRunRef, why: string) {
    const id = rebuildId(c.name, run)
    const before = this.o.journal.last(id)
    const ended = this.o.journal.last('run')
    const resuming = before?.state === 'started' && !(ended && ended.seq > before.seq)
    const attempt = (before?.attempt ?? 0) + 1
    await this.o.journal.appendDurable({ step: id, state: 'started', attempt, evidence: [why] })
    const rb = await rebuildNode({
      emit: (e) => this.emit(e),
      runStep: async (s, again) => {
        const r = await this.step(s, rt, undefined, { again })
        return typeof r === 'boolean' ? r : { message: r.message }
      },
      postGates: (hop) => this.postGatesAgain(c, rt, hop),
      rollback: () => this.rollbackNode(c, rt, run, why),
      stateOf: (x) => this.o.journal.last(x)?.state,
      changed: (x) => this.o.journal.last(x)?.changed === true,
    }, c, run, why, resuming)
    if (rb.ok) this.takenBack(run, `taken back by the ${rb.how === 'rebuilt' ? 'rebuild' : 'rollback'} of ${run.node}`)
    await this.o.journal.appendDurable(rb.ok ? { step: id, state: 'done', attempt, evidence: [why, ...rb.evidence], changed: true } : { step: id, state: 'failed', attempt, error: rb.reason, evidence: [why, ...rb.evidence] })
    return rb
  }

  /** The hop's post-gates once more after a rollback or rebuild: the cluster must be healthy, part old, part new. */
  private async postGatesAgain(c: ClusterPlan, rt: ClusterRuntime, hop: number | undefined): Promise<string[]> {
    const posts = c.steps.filter((x) => x.action === 'gate' && x.phase === 'postflight' && x.hop === hop)
    const rs = await Promise.allSettled(posts.map((g) => this.gate(g, rt, 'rollback')))
    const bad = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (bad) throw bad.reason
    return rs.flatMap((r) => (r.status === 'fulfilled' ? [r.value.evidence[0]!] : []))
  }

  /**
   * A resumed run does not take up a cluster where an earlier process left it without looking at it again: minutes or
   * days may have passed, and what its gates said then (etcd, the VIP, CoreDNS) may no longer hold. Before the first
   * segment left to run, the last gates the run passed in this cluster (a node's after-node gates, a hop's post-gates,
   * or the pre-gates) are checked once more, as they were, and a failure stops the cluster before anything more is
   * changed (kubeadm runs its preflight again on every `upgrade apply`). Not when that segment is a node run whose
   * upgrade an earlier process began (past its cordon and drain: its own after-node gates judge it; a cluster step
   * begun, a backup, is checked before) and its onFailure did not take back, nor in a dry-run or a restore (its API
   * is meant to be down). The re-checks are events, not journal entries: the next resume checks again.
   */
  private async recheckOnResume(stage: StagePlan, c: ClusterPlan, rt: ClusterRuntime, segs: Segment[], at: number): Promise<void> {
    if (this.o.dryRun || !c.steps.some((s) => this.earlier.has(s.id)) || c.steps.some((s) => RESTORE_ACTIONS.has(s.action))) return
    const nextSeg = segs[at]!
    const next = segmentSteps(nextSeg)
    // A node run its onFailure took back (rolled back, or rebuilt at its old version) is as it was: it starts afresh.
    const last = (id: string) => this.o.journal.last(id)
    const begun = nodeRuns(nextSeg).flatMap((n) => {
      const since = sinceTakenBack(last, c.name, n)
      return n.steps.filter((s) => NODE_WRITE_ACTIONS.has(s.action) && last(s.id) !== undefined && since(s.id))
    })
    // Cordoned or drained, a node still runs what it ran: the cluster is checked before its upgrade goes on.
    if (begun.some((s) => s.action !== 'cordon' && s.action !== 'drain')) return
    const passed = (s: Step): boolean => s.action === 'gate' && this.o.journal.last(s.id)?.state === 'done'
    let point: { what: string; gates: Step[]; afterNode: boolean } | undefined
    // A point an earlier process was checking when it stopped: the gates it had passed are checked again, beside the
    // others, which run as they would have.
    for (const seg of nextSeg.kind === 'gates' ? [nextSeg] : segs.slice(0, at).reverse()) {
      if (seg.kind === 'step') continue
      // A node run's last gates are its after-node gates (its before-node ones may follow a change too: the hop's backup).
      const gates = seg.kind === 'gates' ? seg.steps.filter(passed) : nodeRuns(seg).flatMap((n) => gateGroups(n.steps).filter((g) => g[0]!.action === 'gate').at(-1) ?? []).filter((s) => this.afterChange.has(s.id) && passed(s))
      if (gates.length === 0) continue
      const what = seg.kind === 'gates'
        ? seg.steps[0]!.phase === 'preflight' ? 'the pre-gates' : `the post-gates${seg.steps[0]!.hop !== undefined && c.hops.length > 1 ? ` of hop ${seg.steps[0]!.hop}` : ''}`
        : `the after-node gates of ${[...new Set(gates.map((g) => g.node!))].join(', ')}`
      point = { what, gates, afterNode: seg.kind !== 'gates' }
      break
    }
    // The pre-gates and a hop's post-gates judge a cluster with no node cordoned (capacity, pending pods): with the run's
    // own cordon in place they would stop it for what it did itself. A node's after-node gates hold beside a batch.
    if (!point || (begun.length > 0 && !point.afterNode)) return
    const nodes = [...new Set(next.flatMap((s) => (s.node !== undefined ? [s.node] : [])))]
    const before = nextSeg.kind === 'gates' ? `the rest of ${point.what}` : nodes.length ? nodes.join(', ') : `step ${next[0]!.id}`
    this.emit({ type: 'resume-check', time: now(), stage: stage.name, cluster: c.name, point: point.what, before, gates: point.gates.map((g) => g.id), ...(this.earlierUntil ? { since: this.earlierUntil } : {}) })
    const failures: string[] = []
    await pool(point.gates, GATES_AT_ONCE, { keepGoing: true }, async (g) => {
      try {
        await this.gate(g, rt, 'resume')
      } catch (err) {
        if (this.halt.signal.aborted) throw new Stopped(this.haltStop())
        failures.push((err as Error).message)
      }
    })
    if (failures.length) {
      throw new Stopped({ kind: 'failed', cluster: c.name, gateBeforeChange: true, message: `cluster ${c.name}: checked again on resume, before ${before}: ${failures.join('; ')}${this.changedAny ? '; nothing more was changed' : ''}` })
    }
  }

  private rollbackNode(c: ClusterPlan, rt: ClusterRuntime, run: NodeRunRef, why: string, o: { sayRestored: boolean } = { sayRestored: true }) {
    return rollbackNode({
      journal: this.o.journal, emit: (e) => this.emit(e), ssh: this.o.ssh, signal: this.halt.signal, pollMs: this.o.pollMs ?? 250,
      programFor: (s, r) => this.o.programFor(s, r),
      backupBackOnNode: (r, node, reads) => this.backupBackOnNode(r, node, reads),
      acrossDatastoreRestore: (restore) => this.acrossDatastoreRestore(c.name, restore),
      stateOf: (id) => this.o.journal.last(id)?.state,
      changed: (id) => this.o.journal.last(id)?.changed === true,
      postGates: (hop) => this.postGatesAgain(c, rt, hop),
      restoreControlPlane: (r, node) => this.restoreControlPlane(c, rt, r, node, o.sayRestored ? why : undefined),
    }, rt, c, run, why)
  }

  /**
   * The hop's control plane back from its pre-hop snapshot on every control-plane node (ClusterRestore): its planned
   * steps through the executor (journaled, verify → run → verify, so a run stopped halfway resumes it), then the
   * other control-plane nodes' forward steps of the hop journaled undone: the restore took them back too, and a later
   * resume upgrades them again rather than finding them done. (`rolledBack`'s own steps are its rollback's to journal.)
   * Each such node is said to be rolled back with the restore (`restoredWith`) when `sayFor` gives the reason: the
   * summary must not list a node back at the old version as upgraded.
   */
  private async restoreControlPlane(c: ClusterPlan, rt: ClusterRuntime, r: Extract<ClusterRestore, { automatic: true }>, rolledBack: string, sayFor: string | undefined): Promise<{ ok: true; evidence: string[] } | { ok: false; reason: string; evidence: string[] }> {
    const evidence: string[] = []
    for (const s of r.steps) {
      const res = await this.step(s, rt)
      if (typeof res === 'object') return { ok: false, reason: `${s.id}: ${res.message}`, evidence }
      evidence.push(`${s.id}: ${res ? 'done' : 'already in place'}`)
    }
    const restored = new Set(r.steps.map((s) => s.node))
    const takenBack = new Map<string, number | undefined>()
    for (const s of c.steps) {
      if (s.hop !== r.hop || s.role !== 'control-plane' || !s.mutates || !s.node || s.node === rolledBack || !restored.has(s.node) || s.phase !== 'control-plane') continue
      if (this.o.journal.last(s.id)?.state !== 'done') continue
      this.o.journal.append({ step: s.id, state: 'undone', attempt: 1, evidence: [`taken back by the control-plane restore from the pre-hop snapshot`], changed: false })
      takenBack.set(s.node, s.hop)
    }
    if (sayFor !== undefined) {
      for (const [node, hop] of takenBack) this.sayRestoredWith(c, { node, ...(hop !== undefined ? { hop } : {}) }, rolledBack, sayFor)
      this.restoredAlong.set(c.name, [...new Set([...(this.restoredAlong.get(c.name) ?? []), ...takenBack.keys()])])
    }
    return { ok: true, evidence }
  }

  /** A control-plane node the restore in `rolledBack`'s rollback took back: rolled back with it, no undo of its own. */
  private sayRestoredWith(c: ClusterPlan, n: { node: string; hop?: number }, rolledBack: string, reason: string): void {
    const ids = { cluster: c.name, node: n.node, ...(n.hop !== undefined ? { hop: n.hop } : {}), restoredWith: rolledBack }
    const by = `taken back by the restore of the whole control plane from the pre-hop snapshot, run in the rollback of ${rolledBack}`
    this.emit({ type: 'rollback-started', time: now(), ...ids, path: c.rollback.find((p) => p.node === n.node)?.path ?? 'snapshot-restore', detail: by, reason })
    this.emit({ type: 'rollback-done', time: now(), ...ids, durationMs: 0, evidence: [by] })
  }

  /**
   * Read-only steps (a point's gates) side by side, at most GATES_AT_ONCE (each gate fans out over every node and
   * starts kubectl processes and probe pods). The first that blocks decides the point: no further one starts, and those
   * still checking stop re-checking rather than hold the cluster and its lock through re-checks that cannot change the
   * verdict (a capacity block kept a run waiting 4½ min for two probe pods that could not be scheduled).
   */
  private async together(steps: Step[], rt: ClusterRuntime): Promise<void> {
    const decided = new AbortController()
    let first: Stop | undefined
    // Before anything changed, every gate of the point answers (its first check), as kubeadm's preflight lists every
    // error at once: the user mends all before the next attempt, and the report does not depend on which gate happened
    // to fail first. After a change, a blocked point starts no more gates: the failure handling waits on them.
    const everyGateAnswers = steps.every((s) => s.phase === 'preflight')
    await pool(steps, GATES_AT_ONCE, { keepGoing: everyGateAnswers }, async (s) => {
      const r = await this.step(s, rt, undefined, { cutShort: decided.signal })
      if (typeof r === 'object' && !first) {
        first = r
        decided.abort(new Error(`gate ${String(loose(s).gate ?? s.id)} blocked this point first`))
      }
      return r
    })
    if (first) throw new Stopped(first)
  }

  private async stepOrStop(s: Step, rt: ClusterRuntime | undefined, stage?: StagePlan): Promise<void> {
    const r = await this.step(s, rt, stage)
    if (r !== true && r !== false) throw new Stopped(r)
  }

  private skipOf(s: Step): string | undefined {
    return s.skip !== undefined && !(s.node !== undefined && this.touched.has(nodeKey(s))) ? s.skip : undefined
  }

  private nextAttempt(id: string): number {
    const n = (this.attempts.get(id) ?? 0) + 1
    this.attempts.set(id, n)
    return n
  }

  /**
   * One step: journal `started`, act, journal `done`/`failed`. true/false = changed or not; a Stop when it failed.
   * `again`: run it even if the journal has it done (a rebuild of a node an earlier attempt of the run rebuilt too).
   */
  private async step(s: Step, rt: ClusterRuntime | undefined, stage?: StagePlan, opts: { again?: boolean; cutShort?: AbortSignal } = {}): Promise<boolean | Stop> {
    if (!opts.again && this.isDone(s.id)) {
      this.emit({ type: 'step-skipped', time: now(), step: stepRef(s), reason: `already ${this.o.journal.last(s.id)!.state} earlier in this run`, evidence: [] })
      return false
    }
    const skip = this.skipOf(s)
    if (skip) {
      await this.o.journal.appendDurable({ step: s.id, state: 'skipped', attempt: 1, evidence: [skip] })
      this.emit({ type: 'step-skipped', time: now(), step: stepRef(s), reason: skip, evidence: [] })
      return false
    }
    // The run may have been halted (the lock lost, a signal) since the caller looked, or while `started` was being
    // written (the Lease's renewal runs beside the steps): no step starts after that. A `started` without an end is
    // what a killed process leaves too; a resume verifies such a step first.
    if (this.halt.signal.aborted) return this.haltStop()
    const attempt = this.nextAttempt(s.id)
    const t0 = Date.now()
    // Before `started` is journaled: whether an earlier process of this run began this step.
    const begunBefore = this.o.journal.last(s.id) !== undefined
    await this.o.journal.appendDurable({ step: s.id, state: 'started', attempt })
    if (this.halt.signal.aborted) return this.haltStop()
    this.emit({ type: 'step-started', time: now(), step: stepRef(s), attempt })
    try {
      const r = await this.act(s, rt, stage, { begunBefore, ...(opts.cutShort ? { cutShort: opts.cutShort } : {}) })
      if (r.skipped) {
        await this.o.journal.appendDurable({ step: s.id, state: 'skipped', attempt, evidence: r.evidence })
        this.emit({ type: 'step-skipped', time: now(), step: stepRef(s), reason: r.skipped, evidence: r.evidence })
        return false
      }
      await this.o.journal.appendDurable({ step: s.id, state: 'done', attempt, evidence: r.evidence, changed: r.changed, ...(r.undo ? { undo: r.undo } : {}) })
      this.emit({ type: 'step-done', time: now(), step: stepRef(s), attempt, durationMs: Date.now() - t0, changed: r.changed, evidence: r.evidence })
      if (r.changed && NODE_WRITE_ACTIONS.has(s.action)) this.changedAny = true
      return r.changed
    } catch (err) {
      if (this.halt.signal.aborted && !(err instanceof StepFailure && !isAbort(err))) {
        const stop = this.haltStop()
        await this.o.journal.appendDurable({ step: s.id, state: 'paused', attempt, error: stop.message })
        this.emit({ type: 'step-failed', time: now(), step: stepRef(s), attempt, durationMs: Date.now() - t0, error: stop.message, evidence: [] })
        return stop
      }
      const evidence = err instanceof StepFailure ? err.evidence : []
      const msg = (err as Error).message
      if (!(s.action === 'hook' && s.params.point === 'onFailure')) this.firstFailed ??= { step: s, error: msg }
      await this.o.journal.appendDurable({ step: s.id, state: 'failed', attempt, error: msg, evidence })
      this.emit({ type: 'step-failed', time: now(), step: stepRef(s), attempt, durationMs: Date.now() - t0, error: msg, evidence })
      return { kind: 'failed', message: `step ${s.id} failed: ${msg}`, gateBeforeChange: s.action === 'gate' && s.phase === 'preflight' }
    }
  }

  private async act(s: Step, rt: ClusterRuntime | undefined, stage: StagePlan | undefined, { begunBefore, cutShort }: { begunBefore: boolean; cutShort?: AbortSignal }): Promise<{ changed: boolean; evidence: string[]; undo?: UndoRecord; skipped?: string }> {
    const dry = this.o.dryRun
    switch (s.action) {
      case 'gate': {
        if (!rt) throw new StepFailure(`gate ${s.id} has no cluster`, [])
        // A dry-run changes nothing, so only the checks of the state before any change (pre-gates) mean anything.
        if (dry && s.phase !== 'preflight') return { changed: false, evidence: [], skipped: 'dry-run: checked during apply, after the change it guards' }
        return this.gate(s, rt, undefined, cutShort)
      }
      case 'hook':
        return this.hook(s, dry)
      case 'soak':
        // A soak holds back the next stages; when none has a node left to upgrade, nothing waits for it (as on the
        // last stage, where the planner leaves it out).
        if (!this.laterStagesHaveWork(stage!)) {
          return { changed: false, evidence: [], skipped: 'no later stage has a node left to upgrade: nothing waits for this soak' }
        }
        if (dry) {
          const earlier = this.earlierSoakStands(s, stage!)
          return { changed: false, evidence: [], skipped: earlier ? `dry-run: apply would re-check the post-gates of stage ${stage!.name} once, not soak again: run ${earlier.runId} of this plan soaked it (done ${earlier.at})` : `dry-run: apply would soak ${String(loose(s).duration)} here` }
        }
        return this.soak(s, stage!)
      case 'wait-ready': {
        if (dry) return { changed: false, evidence: [], skipped: 'dry-run: apply would wait for Ready here' }
        const timeoutMs = parseDuration(String(s.params?.timeout ?? '5m')) ?? 300_000
        const line = await waitNodeReady(rt!.kubectl, s.node!, String(s.params?.kubelet ?? ''), timeoutMs, { signal: this.halt.signal, pollMs: this.o.pollMs ?? 250, onWaiting: reportWaiting((e) => this.emit(e), s) })
        return { changed: false, evidence: [line] }
      }
      case 'approval':
      case 'lock':
      case 'unlock':
        throw new StepFailure(`${s.action} step ${s.id} in an unexpected place`, [])
      default: {
        if (!rt) throw new StepFailure(`step ${s.id} has no cluster`, [])
        const program = this.o.programFor(s, rt)
        if (!program) throw new StepFailure(`no driver program for action ${s.action} on ${rt.distribution}`, [])
        const target = s.node ? rt.targets.get(s.node) : undefined
        const ahead = `${rt.spec.name}|${s.node ?? ''}`
        // A restore reads the hop's backup on its node: put back from the kept copy if gone.
        const putBack = program.readsBackup ? await this.backupBackOnNode(rt, s.node, program.readsBackup) : []
        const firstCp = rt.spec.nodes.find((n) => n.role === 'control-plane')
        const firstControlPlane = firstCp ? rt.targets.get(firstCp.name) : undefined
        const peerCp = rt.spec.nodes.find((n) => n.role === 'control-plane' && n.name !== s.node)
        const peerControlPlane = peerCp ? rt.targets.get(peerCp.name) : undefined
        const run = () => runProgram(program, {
          ssh: this.o.ssh, kubectl: rt.kubectl, ...(target ? { target } : {}), ...(firstControlPlane ? { firstControlPlane } : {}), ...(peerControlPlane ? { peerControlPlane } : {}), dryRun: dry, stateAhead: this.dryAhead.has(ahead), ...forced(s, begunBefore),
          onOutput: (l) => this.emit({ type: 'step-output', time: now(), step: stepRef(s), stream: l.stream, line: l.line }),
          onRetry: (r) => this.emit({ type: 'step-retrying', time: now(), step: stepRef(s), ...r }),
        }, { ssh: this.o.ssh, kubectl: rt.kubectl, ...(target ? { target } : {}), signal: this.halt.signal, pollMs: this.o.pollMs ?? 250, onWaiting: reportWaiting((e) => this.emit(e), s) })
        const r = s.action === 'restore-datastore' ? await this.acrossDatastoreRestore(rt.spec.name, run) : await run()
        if (dry && r.changed) this.dryAhead.add(ahead)
        if (program.offNode && target) r.evidence.push(await this.copyOffNode(s, rt, target, program.offNode.sums, dry))
        r.evidence.unshift(...putBack)
        const undo: UndoRecord = 'irreversible' in program.undo ? { irreversible: program.undo.irreversible }
          : 'nothing' in program.undo ? { nothing: true } : { commands: program.undo.run.map(describeCommand) }
        return { changed: r.changed, evidence: r.evidence, ...(r.changed ? { undo } : {}) }
      }
    }
  }

  /** A backup step's files copied off its node into .kupgrade/backups and indexed (backup-copy.ts); its evidence line. */
  private async copyOffNode(s: Step, rt: ClusterRuntime, target: NodeTarget, sums: string[], dry: boolean): Promise<string> {
    const into = join(backupsDir(this.o.planDir), rt.spec.name, this.o.runId, s.node!, s.hop !== undefined ? `hop-${s.hop}` : 'run')
    const shown = relative(this.o.planDir, into)
    if (dry) return `dry-run: apply would copy the backup off ${s.node} into ${shown}`
    const { sums: lists, files } = await copyBackupOffNode(this.o.ssh, target, sums, into, this.o.planDir, this.halt.signal)
    const hop = s.hop !== undefined ? this.planOf(rt.spec.name)?.hops.find((h) => h.index === s.hop) : undefined
    appendBackupIndex(this.o.planDir, {
      run: this.o.runId, cluster: rt.spec.name, node: s.node!, ...(s.hop !== undefined ? { hop: s.hop } : {}), step: s.id,
      version: hop?.from ?? '', time: new Date().toISOString(), dir: shown, sums: lists, files,
    })
    const bytes = files.reduce((n, f) => n + f.bytes, 0)
    return `copied off the node: ${files.length} file(s), ${bytes} bytes, each matching its sha256, into ${shown} (indexed in ${relative(this.o.planDir, backupIndexPath(this.o.planDir))})`
  }

  /** The backup a restore reads, back on its node from the copy kept next to the plan where the node lost it (backup-copy.ts). */
  private async backupBackOnNode(rt: ClusterRuntime, node: string | undefined, reads: ReadsBackup): Promise<string[]> {
    const target = node ? rt.targets.get(node) : undefined
    if (!target || this.o.dryRun) return []
    const evidence: string[] = []
    for (const entry of backupCopiesFor(this.o.planDir, rt.spec.name, node!, reads)) evidence.push(...(await putBackupBackOnNode(this.o.ssh, target, this.o.planDir, entry, this.halt.signal)))
    return evidence
  }

  /** The planned cluster of this name. */
  private planOf(cluster: string | undefined): ClusterPlan | undefined {
    return this.o.plan.stages.flatMap((x) => x.clusters).find((c) => c.name === cluster)
  }

  private gateContext(rt: ClusterRuntime, s: Step, expectedVersion?: string): GateContext {
    const others = s.node ? [...(this.inFlight.get(rt.spec.name) ?? [])].filter((n) => n !== s.node) : []
    return {
      cluster: rt.spec.name, distribution: rt.distribution, scope: s.node ? 'node' : 'cluster', ...(s.node ? { node: s.node } : {}),
      ...(others.length ? { inFlight: others } : {}),
      apiEndpoint: rt.spec.apiEndpoint,
      serviceCIDR: rt.spec.serviceCIDR ?? defaultServiceCIDR(rt.distribution),
      nodes: rt.spec.nodes.map((n) => ({ name: n.name, role: n.role, target: rt.targets.get(n.name)! })),
      ...(expectedVersion ? { expectedVersion } : {}),
      releaseFetches: () => { const c = this.planOf(rt.spec.name); return c ? releaseFetches(c) : [] },
      repoSwitches: () => { const c = this.planOf(rt.spec.name); return c ? repoSwitches(c) : [] },
      drainGroups: () => { const c = this.planOf(rt.spec.name); return c ? drainGroups(c) : [] },
      ssh: this.o.ssh, kubectl: rt.kubectl.client, signal: this.halt.signal, now: () => new Date(), env: this.o.env,
      nodeFacts: Object.fromEntries(rt.facts),
    }
  }

  /**
   * A gate step through the registry (the same checks as `check` and `plan --live`). Fail and unknown both stop:
   * a gate that could not look is never a pass. A soak's re-check looks once per round. `cutShort` aborts once another
   * gate of the same point blocked it: this one then finishes its first check if it is on it, stops re-checking, and
   * answers with what it had seen.
   */
  private async gate(s: Step, rt: ClusterRuntime, during?: 'soak' | 'rollback' | 'resume', cutShort?: AbortSignal): Promise<{ changed: boolean; evidence: string[] }> {
    const { gate, ...params } = (s.params ?? {}) as { gate: string } & Record<string, unknown>
    const hop = s.hop !== undefined ? this.planOf(rt.spec.name)?.hops.find((h) => h.index === s.hop) : undefined
    // After a rollback the cluster is meant to be part old, part new: no version is expected of it.
    const expected = during === 'rollback' ? undefined : hop ? hop.to.kubelet : this.o.plan.target?.kubernetes
    const wait = gateWait(during === 'rollback' || (!during && this.afterChange.has(s.id)), gate, params, this.o.gateWait)
    const ctx = { ...this.gateContext(rt, s, expected), ...(during === 'rollback' && hop ? { hopInProgress: { to: hop.to.kubelet } } : {}) }
    const cut = (): boolean => Boolean(cutShort?.aborted) && !this.halt.signal.aborted
    // The last observation before any cut: what this gate saw, should its re-checks be cut short.
    let last: { result: GateResult; attempt: number } | undefined
    // Once the point is decided, a gate still on its first check finishes that one (the cause of a block is often in a
    // gate slower than the symptom that blocked first, as etcd behind the API's readyz); its re-checks stop.
    const stop = new AbortController()
    const onCut = () => { if (last) stop.abort(cutShort!.reason) }
    if (cutShort) {
      ctx.signal = AbortSignal.any([this.halt.signal, stop.signal])
      // Every gate of the point (a batch of ten nodes: dozens) listens on the one signal: by design, not the leak Node
      // warns about past 10 on the user's stderr mid-run.
      raiseListenerLimit(cutShort)
      cutShort.addEventListener('abort', onCut, { once: true })
    }
    const onObservation = (o: GateResult, attempt: number) => {
      if (stop.signal.aborted) return // the answer of a re-check cut short: not an observation
      last = { result: o, attempt }
      // A polling wait reports each check as it lands: when a fault was first seen, not only when the wait gave up.
      if (wait.timeoutMs) this.emit({ type: 'gate-check', time: now(), step: stepRef(s), gate, attempt, status: o.status, summary: o.summary, ...(during === 'rollback' || during === 'resume' ? { during } : {}) })
      if (cutShort?.aborted) stop.abort(cutShort.reason)
    }
    let r: WaitedResult
    try {
      r = await this.o.gateRunner(gate, params, ctx, { ...wait, onObservation })
    } catch (err) {
      if (!cut()) throw err
      r = { status: 'unknown', summary: '', evidence: [], incident: 'unknown', attempts: 0 }
    } finally {
      cutShort?.removeEventListener('abort', onCut)
    }
    if (cut() && r.status !== 'pass' && r.status !== 'warn') {
      // Cut short, the gate answers with what it saw: a failure it was confirming stands (the cause of a block is often
      // in a gate slower than the one that blocked first); with nothing seen, or not yet held long enough, no answer.
      const why = cutShort!.reason instanceof Error ? cutShort!.reason.message : String(cutShort!.reason)
      r = last && last.result.status !== 'pass' && last.result.status !== 'warn'
        ? { ...last.result, summary: `${last.result.summary} (not re-checked: ${why})`, attempts: last.attempt }
        : { status: 'unknown', summary: `not finished: ${why}`, evidence: [], incident: r.incident, attempts: last?.attempt ?? 0 }
    }
    // What held goes last and is counted, so that a report can fold it under a failure (verdict orders it so too).
    const held = r.evidence.filter((e) => e.status === 'pass')
    const evidence = [...r.evidence.filter((e) => e.status !== 'pass'), ...held].map((e) => `${e.source}: ${e.observed}`)
    this.emit({ type: 'gate-result', time: now(), step: stepRef(s), gate, status: r.status, summary: r.summary, evidence, ...(held.length ? { held: held.length } : {}), ...(r.hint ? { hint: r.hint } : {}), ...(during ? { during } : {}), checks: r.attempts })
    if (r.status === 'fail' || r.status === 'unknown') {
      throw new StepFailure(`gate ${gate} ${r.status === 'fail' ? 'failed' : 'could not check'}: ${r.summary}${r.hint ? ` (hint: ${r.hint})` : ''}`, evidence)
    }
    return { changed: false, evidence: [`${r.status}${r.attempts > 1 ? ` after ${r.attempts} checks` : ''}: ${r.summary}`, ...evidence] }
  }

  private async hook(s: Step, dry: boolean): Promise<{ changed: boolean; evidence: string[]; skipped?: string }> {
    const hook = String(loose(s).hook)
    if (dry) return { changed: false, evidence: [], skipped: `dry-run: apply would run hook ${hook} here` }
    // An onFailure hook is about where the run failed, and runs after a lost lock too (which halts the rest).
    const failure = loose(s).point === 'onFailure' ? this.failure : undefined
    const where = failure ?? s
    const hop = s.hop !== undefined ? this.planOf(s.cluster)?.hops.find((h) => h.index === s.hop) : undefined
    const host = s.node !== undefined && s.cluster !== undefined ? this.o.clusters.get(s.cluster)?.targets.get(s.node)?.host : undefined
    const limit = String(loose(s).timeout ?? HOOK_TIMEOUT)
    const r = await runHook(hook, this.o.planDir, {
      runId: this.o.runId, plan: this.o.planFile, point: String(loose(s).point), stage: s.stage,
      ...(where.cluster ? { cluster: where.cluster } : {}), ...(where.node ? { node: where.node } : {}), step: s.id, dryRun: dry, journal: this.o.journal.path,
      ...(s.role ? { role: s.role } : {}), ...(host ? { host } : {}), ...(hop ? { hop: { index: hop.index, from: hop.from, to: hop.to.release } } : {}),
      ...(failure ? { failure } : {}),
    }, { env: this.o.env, signal: failure ? this.o.interrupt : this.halt.signal, timeoutMs: parseDuration(limit)! })
    if (r.timedOut) throw new StepFailure(`hook ${hook} did not finish within ${limit} and was stopped (spec.hooks.timeout sets how long a hook may run)`, r.output)
    if (!r.ok) throw new StepFailure(`hook ${hook} exited with ${r.exitCode ?? 'no exit code'}`, r.output)
    return { changed: false, evidence: [`hook ${hook} exited 0`, ...r.output] }
  }

  /**
   * Soak: wait the stage's soak time, re-checking the post-gates of its clusters; a failing one fails the soak. A stage
   * this run changed nothing on (its nodes were at the target when the run began: `apply` again after a later stage
   * failed, or `--cluster` for a later one) that an earlier run of the same plan soaked is not soaked again: its
   * post-gates are re-checked once, to be sure it is still healthy, and the earlier soak stands.
   */
  private async soak(s: Step, stage: StagePlan): Promise<{ changed: boolean; evidence: string[]; skipped?: string }> {
    const earlier = this.earlierSoakStands(s, stage)
    if (earlier) {
      await this.soakRound(stage)
      return { changed: false, evidence: [], skipped: `soaked by run ${earlier.runId} of this plan (done ${earlier.at}), and this run changed nothing in stage ${stage.name}: its post-gates re-checked once now, all passing` }
    }
    const total = parseDuration(String(loose(s).duration ?? '0s')) ?? 0
    const interval = Math.max(1000, Math.min(30_000, Math.floor(total / 3)))
    const end = Date.now() + total
    const evidence: string[] = []
    let rounds = 0
    while (Date.now() < end) {
      await sleep(Math.min(interval, Math.max(0, end - Date.now())), this.halt.signal)
      rounds++
      await this.soakRound(stage)
    }
    evidence.push(`soaked ${String(loose(s).duration)}: post-gates re-checked ${rounds} time(s), all passing`)
    return { changed: false, evidence }
  }

  /** One round of a soak: each of the stage's clusters' post-gates (of its last hop) once. */
  private async soakRound(stage: StagePlan): Promise<void> {
    for (const c of stage.clusters) {
      const rt = this.o.clusters.get(c.name)
      if (!rt) continue
      const lastHop = c.hops.at(-1)?.index
      const posts = c.steps.filter((x) => x.action === 'gate' && x.phase === 'postflight' && x.hop === lastHop)
      for (const g of posts) await this.gate(g, rt, 'soak')
    }
  }

  /** An earlier run's soak of this stage that stands: this run, as planned from its facts, changes no node of it. */
  private earlierSoakStands(s: Step, stage: StagePlan): { runId: string; at: string } | undefined {
    const changes = stage.clusters.some((c) => c.steps.some((x) => NODE_WRITE_ACTIONS.has(x.action) && x.skip === undefined))
    return changes ? undefined : earlierSoak(this.o.planDir, this.o.journal.header, s.id)
  }
}

/** As `check` runs them (src/gates/run.ts): enough to overlap their waits, few enough not to flood the API. */
const GATES_AT_ONCE = 4

/**
 * Why a step runs without verifying first, if it does. A fresh backup (Step.fresh) holds the state of the moment it is
 * taken: one an earlier run left at the same place would verify as done, and a rollback would then put back the cluster
 * of that day, not of this run's start. Only a step an earlier process of this run began is verified first (the resume
 * of a backup this run took must not take it again after the node moved on).
 */
function forced(s: Step, begunBefore: boolean): { force?: string } {
  if (s.force) return { force: 'this step runs even where its effect seems there (forced)' }
  if (s.fresh && !begunBefore) return { force: 'each run takes its own backup: one an earlier run left here holds the state of then' }
  return {}
}

/** `cluster/node` in a rollback's message, with the hop where the cluster has several (a node is rolled back per hop). */
const rolledName = (c: ClusterPlan, n: NodeRunRef): string => `${c.name}/${n.node}${c.hops.length > 1 && n.hop !== undefined ? ` (hop ${n.hop})` : ''}`

const nodeKey = (s: Step): string => `${s.cluster}|${s.hop ?? ''}|${s.node}`

const isAbort = (err: unknown): boolean => err instanceof Error && (err.name === 'AbortError' || /aborted|interrupted/i.test(err.message))

/**
 * Runs `fn` over items, at most `limit` at once, results in input order. Once one returns an object (a Stop), no new
 * item starts (those in flight finish) unless `keepGoing`.
 */
export async function pool<T, R>(items: readonly T[], limit: number, o: { keepGoing?: boolean }, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  let stop = false
  const worker = async () => {
    while (!stop && next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
      if (!o.keepGoing && typeof out[i] === 'object' && out[i] !== null) stop = true
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out.filter((_, i) => i < next)
}

export type { Segment }

/** Interim, until the executor reads the drivers' typed params: a step's params as a loose record. */
const loose = (s: Step): Record<string, unknown> => (s.params ?? {}) as Record<string, unknown>

/** Whom a Lease was taken over from: an expired holder (--force-unlock), or one a restored snapshot brought back. */
const tookOver = (r: { takenOverFrom?: string; fromSnapshot?: true }): string =>
  r.fromSnapshot ? `taken over from "${r.takenOverFrom}", whose lock came back with the restored snapshot` : `taken over from expired "${r.takenOverFrom}" with --force-unlock`
