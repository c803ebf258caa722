import type { GateStatus } from '../gates/types.js'
import type { Step } from '../planner/types.js'
import type { Waiting } from './waits.js'

/**
 * The executor's one output: a typed stream of events (docs/events.md). The listr2 renderer, the plain-line renderer,
 * `--output json`, the run summary and the GitHub job summary all consume it; nothing else prints during a run.
 * Every event carries `time` (ISO 8601) and the ids it is about.
 */

/** The identity of a step as events and the journal name it. */
export interface StepRef {
  id: string
  title: string
  action: Step['action']
  /** Whether the step changes the cluster (false: gates, waits, hooks, soak, approval). */
  mutates: boolean
  stage: string
  cluster?: string
  node?: string
  hop?: number
  batch?: number
}

export const stepRef = (s: Step): StepRef => ({
  id: s.id, title: s.title, action: s.action, mutates: s.mutates, stage: s.stage,
  ...(s.cluster !== undefined ? { cluster: s.cluster } : {}),
  ...(s.node !== undefined ? { node: s.node } : {}),
  ...(s.hop !== undefined ? { hop: s.hop } : {}),
  ...(s.batch !== undefined ? { batch: s.batch } : {}),
})

/** The shape of the run (stages › clusters › nodes), for renderers that draw it before it happens. */
export type RunOutline = { stage: string; clusters: { name: string; distribution: string; nodes: string[] }[] }[]

/** How a run ended; each maps to one exit code (execution.md "Exit codes"). */
export type RunOutcome = 'done' | 'nothing-to-do' | 'failed' | 'blocked' | 'paused' | 'awaiting-approval' | 'lock-lost' | 'interrupted'

export type ExecutorEvent =
  | { type: 'run-started'; time: string; runId: string; plan: string; journal: string; dryRun: boolean; resumed: boolean; rollback?: true; stages: string[]; outline: RunOutline; warnings: string[] }
  | { type: 'stage-started'; time: string; stage: string }
  | { type: 'stage-done'; time: string; stage: string; durationMs: number }
  | { type: 'stage-failed'; time: string; stage: string; error: string }
  | { type: 'cluster-started'; time: string; stage: string; cluster: string }
  | { type: 'cluster-done'; time: string; stage: string; cluster: string; durationMs: number; changed: boolean }
  | { type: 'cluster-failed'; time: string; stage: string; cluster: string; error: string }
  | { type: 'cluster-skipped'; time: string; stage: string; cluster: string; reason: string }
  | { type: 'node-started'; time: string; stage: string; cluster: string; node: string; hop?: number; batch?: number }
  | { type: 'node-done'; time: string; stage: string; cluster: string; node: string; hop?: number; durationMs: number }
  | { type: 'node-failed'; time: string; stage: string; cluster: string; node: string; hop?: number; error: string; cordoned: boolean }
  | { type: 'step-started'; time: string; step: StepRef; attempt: number }
  | { type: 'step-done'; time: string; step: StepRef; attempt: number; durationMs: number; changed: boolean; evidence: string[] }
  | { type: 'step-skipped'; time: string; step: StepRef; reason: string; evidence: string[] }
  | { type: 'step-failed'; time: string; step: StepRef; attempt: number; durationMs: number; error: string; evidence: string[] }
  | { type: 'step-output'; time: string; step: StepRef; stream: 'stdout' | 'stderr'; line: string }
  /** A step's wait (Ready, a service, SSH back) still going on, with what it last saw (waits.ts heartbeat). */
  | { type: 'step-waiting'; time: string; step: StepRef; waitingFor: string; observed: string; elapsedMs: number; timeoutMs: number }
  /** The step's transport failed under it (SSH dropped, API unanswered): verified and tried again in delayMs. */
  | { type: 'step-retrying'; time: string; step: StepRef; attempt: number; error: string; delayMs: number; undo?: true }
  | { type: 'gate-check'; time: string; step: StepRef; gate: string; attempt: number; status: GateStatus; summary: string; during?: 'rollback' | 'resume' }
  | { type: 'gate-result'; time: string; step: StepRef; gate: string; status: GateStatus; summary: string; evidence: string[]; held?: number; hint?: string; during?: 'soak' | 'rollback' | 'resume'; checks: number }
  /** A resumed run checks a cluster's last passed gates again before it changes anything more there (their results follow, `during: resume`). */
  | { type: 'resume-check'; time: string; stage: string; cluster: string; point: string; before: string; gates: string[]; since?: string }
  | { type: 'rollback-started'; time: string; cluster: string; node: string; hop?: number; path: 'previous-version' | 'kubeadm-backup' | 'snapshot-restore'; detail: string; reason: string; restoredWith?: string }
  | { type: 'undo-started'; time: string; step: StepRef; title: string }
  | { type: 'undo-done'; time: string; step: StepRef; durationMs: number; changed: boolean; evidence: string[] }
  | { type: 'undo-failed'; time: string; step: StepRef; durationMs: number; error: string; evidence: string[] }
  | { type: 'rollback-done'; time: string; cluster: string; node: string; hop?: number; durationMs: number; evidence: string[]; restoredWith?: string; kept?: { step: string; why: string }[] }
  | { type: 'rollback-failed'; time: string; cluster: string; node: string; hop?: number; error: string; evidence: string[] }
  /** onFailure: rebuild of one node run: reset, Node deleted, reinstalled at `version` and rejoined (its steps are step events). */
  | { type: 'rebuild-started'; time: string; cluster: string; node: string; hop?: number; detail: string; reason: string }
  | { type: 'rebuild-done'; time: string; cluster: string; node: string; hop?: number; durationMs: number; evidence: string[] }
  | { type: 'rebuild-failed'; time: string; cluster: string; node: string; hop?: number; error: string; evidence: string[] }
  | { type: 'approval-needed'; time: string; stage: string; command: string }
  | { type: 'approved'; time: string; stage: string; by: 'flag' | 'tty' | 'journal' }
  | { type: 'lock-acquired'; time: string; cluster: string; holder: string; takenOverFrom?: string; afterRestore?: true }
  | { type: 'lock-refused'; time: string; cluster: string; holder: string; since: string; expired: boolean }
  | { type: 'lock-renewed'; time: string; cluster: string; resourceVersion: string }
  | { type: 'lock-lost'; time: string; cluster: string; reason: string }
  | { type: 'lock-released'; time: string; cluster: string }
  | { type: 'dry-run-recorded'; time: string; writes: RecordedWrite[] }
  /** After a real run: every node of the run's clusters as the API shows it now (the report's "final state"). */
  | { type: 'nodes-final'; time: string; clusters: { cluster: string; nodes: FinalNode[]; error?: string }[] }
  | { type: 'run-finished'; time: string; runId: string; outcome: RunOutcome; exitCode: number; durationMs: number; journal: string; message: string; resume?: string }

export interface FinalNode {
  node: string
  kubelet: string
  ready: boolean
  cordoned: boolean
}

/** A write a dry-run recorded instead of running: on a node over SSH, or through kubectl. */
export interface RecordedWrite {
  channel: 'ssh' | 'kubectl'
  cluster?: string
  node?: string
  why: string
  command: string
}

export type EventSink = (e: ExecutorEvent) => void

export const now = (): string => new Date().toISOString()

/** A step's long wait reported as `step-waiting` events (waits.ts heartbeat). */
export const reportWaiting = (emit: EventSink, s: Step) => (w: Waiting): void => emit({ type: 'step-waiting', time: now(), step: stepRef(s), ...w })
