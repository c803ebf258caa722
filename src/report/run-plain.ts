import type { ExecutorEvent, StepRef } from '../executor/events.js'
import { formatDuration } from '../util/duration.js'
import { withHeldFolded } from './held-evidence.js'

/**
 * Progress without a TTY (CI logs): one timestamped line per event worth reading later. Step output lines are left
 * out unless verbose; the journal has every state change.
 */
const where = (s: StepRef): string => [s.stage, s.cluster, s.node].filter(Boolean).join(' › ')
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)}s`

/**
 * Failures already printed in full. A failure climbs: the step's ✗ line, then its node, the rollback's reason, its
 * cluster, its stage and the run each carry the one before in their own error text; printed as they are, one timeout
 * filled eight lines of a CI log. A text that holds one printed before says "see above" in its place.
 */
export class ToldFailures {
  private readonly told: string[] = []
  /** What stands for a failure already told: `see above` in lines printed in order, `see below` in a tree. */
  constructor(private readonly pointer = 'see above') {}

  /** The first line of `text`, with the longest failure told before replaced by the pointer ("see above"). */
  compact(text: string): string {
    const first = text.split('\n')[0]!
    let out = first
    for (const t of [...this.told].sort((a, b) => b.length - a.length)) {
      // Whole failures only (a short text could sit inside an unrelated one): at the start or after a "cause: ", and
      // up to the end or a clause of its own.
      const cause = out.indexOf(`: ${t}`)
      const at = out.startsWith(t) ? 0 : cause >= 0 ? cause + 2 : -1
      const after = out.slice(at + t.length)
      if (t.length >= 20 && at >= 0 && (after === '' || after.startsWith(';') || after.startsWith(' ('))) {
        out = `${out.slice(0, at)}${this.pointer}${after}`
        break
      }
    }
    this.remember(first)
    return out
  }

  remember(text: string): void {
    this.told.push(text.split('\n')[0]!)
  }
}

/**
 * What a step or gate read, one item a line under its ✗ line; an item of several lines (a command's output) keeps them,
 * indented under its first, so the next timestamped line still starts the line.
 */
const evidenceBlock = (evidence: string[]): string => evidence.map((x) => `\n    ${x.replace(/\n/g, '\n      ')}`).join('')

/**
 * A renderer of plain lines for one run: failures are told once (ToldFailures), and a gate step is one line, its
 * verdict with the step's end (`✓ gate …: pass: … (0.4s)`, `✗ gate …: fail: …` and what the gate read), not the
 * verdict and then the step again (two lines for each of the dozen gates before a cluster and the handful after every
 * node; a failed gate's long summary and hint printed twice). A soak re-checks the same post-gates every round for as
 * long as it lasts (a 30m soak: 60 rounds of each): a gate's re-check that says what its last one said is not printed
 * again, and the soak's own line says how many were.
 */
export function plainLines(verbose = false): (e: ExecutorEvent) => string | undefined {
  const told = new ToldFailures()
  const verdicts = new Map<string, GateResult>()
  const soaked = new SoakRepeats()
  return (e) => {
    if (e.type === 'gate-result' && !e.during) soaked.saw(e)
    if (e.type === 'gate-result' && !e.during && e.step.action === 'gate') {
      verdicts.set(e.step.id, e)
      return undefined
    }
    if (e.type === 'gate-result' && e.during === 'soak' && soaked.repeats(e)) return undefined
    const verdict = e.type === 'step-done' || e.type === 'step-failed' ? verdicts.get(e.step.id) : undefined
    if (verdict && (e.type === 'step-done' || e.type === 'step-failed')) {
      verdicts.delete(e.step.id)
      const said = `${verdict.status}: ${verdict.summary}${verdict.hint && verdict.status !== 'pass' ? ` (hint: ${verdict.hint})` : ''}`
      if (e.type === 'step-done') return `${stamp(e.time)} ${where(e.step)}: ✓ ${e.step.title}: ${said} (${secs(e.durationMs)})`
      // The step's error is the verdict again ("gate … failed: " and its summary); said once, with what was read.
      told.remember(e.error)
      return `${stamp(e.time)} ${where(e.step)}: ✗ ${e.step.title}: ${said}${evidenceBlock(withHeldFolded(verdict.evidence, verdict.held))}`
    }
    const repeated = e.type === 'step-done' && e.step.action === 'soak' ? soaked.take(e.step.stage) : 0
    if (e.type === 'step-done' && repeated) {
      return `${stamp(e.time)} ${where(e.step)}: ✓ ${e.step.title} (${secs(e.durationMs)}; ${repeated} re-check${repeated === 1 ? '' : 's'} said what ${repeated === 1 ? 'its' : 'their'} gate had said before, not repeated)`
    }
    // A verdict whose step did not get to end (the run was interrupted) is still said, before the run's last line.
    const held = e.type === 'run-finished' ? [...verdicts.values()] : []
    if (held.length) verdicts.clear()
    const lines = [...held, e].map((x) => plainLine(x, verbose, told)).filter((l) => l !== undefined)
    return lines.length ? lines.join('\n') : undefined
  }
}

/**
 * The soak re-checks of each stage's post-gates: what each gate step said last (its own check before the soak, then
 * each re-check), and how many re-checks said it again.
 */
class SoakRepeats {
  private readonly last = new Map<string, string>()
  private readonly count = new Map<string, number>()

  saw(e: GateResult): void {
    this.last.set(e.step.id, said(e))
  }

  /** Whether this re-check says what the same gate step said last (then it is counted). */
  repeats(e: GateResult): boolean {
    const same = this.last.get(e.step.id) === said(e)
    this.saw(e)
    if (same) this.count.set(e.step.stage, (this.count.get(e.step.stage) ?? 0) + 1)
    return same
  }

  /** How many of `stage`'s re-checks were not printed, once: the soak's line says it. */
  take(stage: string): number {
    const n = this.count.get(stage) ?? 0
    this.count.delete(stage)
    return n
  }
}

type GateResult = ExecutorEvent & { type: 'gate-result' }
const said = (e: GateResult): string => `${e.status}\0${e.summary}\0${e.hint ?? ''}`

/** `cluster › node`, and its hop from the second on: a node a run takes through several hops has a line per hop. */
const nodeRun = (e: { cluster: string; node: string; hop?: number }): string => `${e.cluster} › ${e.node}${e.hop !== undefined && e.hop > 1 ? ` · hop ${e.hop}` : ''}`

const stamp = (time: string): string => time.replace('T', ' ').replace(/\.\d+Z$/, 'Z')

export function plainLine(e: ExecutorEvent, verbose = false, told?: ToldFailures): string | undefined {
  const failure = (text: string): string => (told ? told.compact(text) : text.split('\n')[0]!)
  const line = (s: string) => `${stamp(e.time)} ${s}`
  switch (e.type) {
    case 'run-started':
      return [line(`${e.rollback ? 'rolling back' : e.resumed ? 'resuming' : e.dryRun ? 'dry-run' : 'apply'} run ${e.runId}: ${e.plan} (stages: ${e.stages.join(' → ')}); journal ${e.journal}`), ...e.warnings.map((w) => line(`warning: ${w}`))].join('\n')
    case 'stage-started':
      return line(`stage ${e.stage}: started`)
    case 'stage-done':
      return line(`stage ${e.stage}: done in ${secs(e.durationMs)}`)
    case 'stage-failed':
      return line(`stage ${e.stage}: FAILED: ${failure(e.error)}`)
    case 'cluster-started':
      return line(`${e.stage} › ${e.cluster}: started`)
    case 'cluster-done':
      return line(`${e.stage} › ${e.cluster}: done in ${secs(e.durationMs)}${e.changed ? '' : ' (nothing changed)'}`)
    case 'cluster-failed':
      return line(`${e.stage} › ${e.cluster}: FAILED: ${failure(e.error)}`)
    case 'cluster-skipped':
      return line(`${e.stage} › ${e.cluster}: skipped: ${e.reason}`)
    case 'node-started':
      return line(`${e.stage} › ${e.cluster} › ${e.node}: started${e.batch !== undefined ? ` (batch ${e.batch})` : ''}${e.hop !== undefined ? ` hop ${e.hop}` : ''}`)
    case 'node-done':
      return line(`${e.stage} › ${e.cluster} › ${e.node}: done in ${secs(e.durationMs)}`)
    case 'node-failed':
      return line(`${e.stage} › ${e.cluster} › ${e.node}: FAILED${e.cordoned ? ' (cordoned)' : ''}: ${failure(e.error)}`)
    case 'step-started':
      return verbose ? line(`${where(e.step)}: ${e.step.title} …`) : undefined
    case 'step-done':
      return line(`${where(e.step)}: ✓ ${e.step.title} (${secs(e.durationMs)}${e.step.mutates && !e.changed ? ', already done: nothing ran' : ''})`)
    case 'step-skipped':
      return line(`${where(e.step)}: – ${e.step.title}: ${e.reason}`)
    case 'step-failed':
      told?.remember(e.error)
      // The whole error: after its first line comes what the command said (a RemoteCommandError's stderr, indented).
      return line(`${where(e.step)}: ✗ ${e.step.title}: ${e.error}${evidenceBlock(e.evidence)}`)
    case 'step-retrying':
      return line(`${where(e.step)}: ↻ ${e.undo ? 'undo of ' : ''}${e.step.title}: ${e.error}; verifying and trying again (attempt ${e.attempt}) in ${secs(e.delayMs)}`)
    case 'step-waiting':
      return line(`${where(e.step)}: … still waiting for ${e.waitingFor} (${Math.round(e.elapsedMs / 1000)}s of ${Math.round(e.timeoutMs / 1000)}s): ${e.observed}`)
    case 'step-output':
      return verbose ? line(`${where(e.step)}: ${e.stream === 'stderr' ? '! ' : '  '}${e.line}`) : undefined
    case 'gate-check':
      return verbose ? line(`${where(e.step)}: gate ${e.gate} check ${e.attempt}: ${e.status}: ${e.summary}`) : undefined
    case 'gate-result':
      // A failing re-check after a rollback or on resume has no step whose ✗ line shows what it read: it does. (A soak's
      // fails the soak step, whose ✗ line shows it.)
      return line(`${where(e.step)}: gate ${e.gate}${e.during ? ` (${e.during})` : ''}: ${e.status}: ${e.summary}${e.hint && e.status !== 'pass' ? ` (hint: ${e.hint})` : ''}${(e.status === 'fail' || e.status === 'unknown') && e.during !== 'soak' ? evidenceBlock(withHeldFolded(e.evidence, e.held)) : ''}`)
    case 'rollback-started':
      if (e.restoredWith) return line(`${nodeRun(e)}: taken back by the restore of the whole control plane in the rollback of ${e.restoredWith}`)
      return line(`${nodeRun(e)}: ROLLING BACK (${e.path}: ${e.detail}) because ${failure(e.reason)}`)
    case 'undo-started':
      return verbose ? line(`${where(e.step)}: undo ${e.step.id}: ${e.title} …`) : undefined
    case 'undo-done':
      return line(`${where(e.step)}: ↩ undone ${e.step.id} (${secs(e.durationMs)}${e.changed ? '' : ', already undone: nothing ran'})`)
    case 'undo-failed':
      return line(`${where(e.step)}: ✗ undo of ${e.step.id} failed: ${failure(e.error)}${evidenceBlock(e.evidence)}`)
    case 'rollback-done':
      return e.restoredWith ? undefined : line(`${nodeRun(e)}: rolled back in ${secs(e.durationMs)}${e.kept?.length ? `; kept: ${e.kept.map((k) => `${k.step.split('/').pop()} (${k.why})`).join(', ')}` : ''}`)
    case 'rollback-failed':
      return line(`${nodeRun(e)}: ROLLBACK STOPPED: ${failure(e.error)}`)
    case 'rebuild-started':
      return line(`${nodeRun(e)}: REBUILDING (${e.detail}) because ${failure(e.reason)}`)
    case 'rebuild-done':
      return line(`${nodeRun(e)}: rebuilt in ${secs(e.durationMs)}`)
    case 'rebuild-failed':
      return line(`${nodeRun(e)}: REBUILD STOPPED: ${failure(e.error)}`)
    case 'resume-check':
      return line(`${e.stage} › ${e.cluster}: resumed${e.since ? ` ${formatDuration(Math.max(0, Date.parse(e.time) - Date.parse(e.since)))} after the run stopped` : ''}: checking ${e.point} again (${e.gates.length} gate${e.gates.length === 1 ? '' : 's'}) before ${e.before}`)
    case 'approval-needed':
      return line(`stage ${e.stage} needs approval. To continue: ${e.command}`)
    case 'approved':
      return line(`stage ${e.stage}: approved (${e.by === 'flag' ? '--approve' : e.by === 'tty' ? 'on the terminal' : 'earlier in this run'})`)
    case 'lock-acquired':
      return line(`${e.cluster}: lock ${e.afterRestore ? 'taken again after the datastore restore brought back the Lease its snapshot had' : 'acquired'} (${e.holder})${e.takenOverFrom ? `, taken over from ${e.takenOverFrom}` : ''}`)
    case 'lock-refused':
      return line(`${e.cluster}: lock held by ${e.holder} since ${e.since}${e.expired ? ' (expired)' : ''}`)
    case 'lock-renewed':
      return verbose ? line(`${e.cluster}: lock renewed (resourceVersion ${e.resourceVersion})`) : undefined
    case 'lock-lost':
      return line(`${e.cluster}: LOCK LOST: ${e.reason}`)
    case 'lock-released':
      return line(`${e.cluster}: lock released`)
    case 'dry-run-recorded':
      return line(`dry-run: ${e.writes.length} write(s) recorded, none run:\n${e.writes.map((w) => `  ${w.channel === 'ssh' ? `${w.cluster}/${w.node}` : `${w.cluster} kubectl`}: ${w.command}   # ${w.why}`).join('\n')}`)
    case 'run-finished':
      return line(`run ${e.runId}: ${e.outcome} (exit ${e.exitCode}) in ${secs(e.durationMs)}: ${e.exitCode === 0 ? e.message : [failure(e.message), ...e.message.split('\n').slice(1)].join('\n')}${e.resume ? `\nTo continue: ${e.resume}` : ''}`)
  }
}
