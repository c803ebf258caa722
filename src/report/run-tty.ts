import { createInterface } from 'node:readline'
import { Listr, ListrLogger, ProcessOutput, type ListrTask, type ListrTaskWrapper } from 'listr2'
import type { EventSink, ExecutorEvent } from '../executor/events.js'
import { saysYes } from '../util/answer.js'
import { ToldFailures } from './run-plain.js'

/**
 * Progress on a terminal: a listr2 tree stage › cluster › node, each line showing the step in flight, gate results
 * as they come, and durations. Only this file knows listr2. It draws from the executor's events: a task ends when its
 * `*-done`/`*-failed`/`*-skipped` event arrives; the `run-started` outline gives the tree before the run fills it.
 */
type Wrapper = ListrTaskWrapper<unknown, any, any>
type End = { kind: 'done'; title?: string } | { kind: 'skip'; why: string } | { kind: 'fail'; message: string }

class Slot {
  wrapper?: Wrapper
  private title?: string
  private output?: string
  ended?: End
  /** Set when the stage waits for an approval the run did not get: what its line says if it never starts. */
  awaiting?: string
  /**
   * A failed stage's end, drawn when the run is over: its line stays open for what runs after the failure (the
   * onFailure hooks, which may take minutes), so the terminal shows them running rather than a tree at rest.
   */
  endsWithRun?: End
  private resolve!: (e: End) => void
  readonly end: Promise<End> = new Promise((r) => (this.resolve = r))
  private begin!: () => void
  /** Its `*-started` event came: until then the line may still turn out never to run. */
  readonly started: Promise<void> = new Promise((r) => (this.begin = r))
  /** Its listr2 task has drawn its end (or was skipped): its parent may end after that, not before. */
  settle!: () => void
  readonly settled: Promise<void> = new Promise((r) => (this.settle = r))
  /** Its node finished (node-done): not to be called "not upgraded" when its cluster fails after it. */
  succeeded = false
  /**
   * Its node failed. The line stays open while the node is rolled back or rebuilt, and ends with what that came to
   * when its cluster does: one line then says what happened to the node, cordoned or not.
   */
  failure?: { node: string; error: string; cordoned: boolean; after?: string }
  private hasStarted = false
  /** The line above it (a node's cluster, a cluster's stage): a part that starts has started what it is part of. */
  parent?: Slot
  constructor(public label: string) {}
  start(): void {
    if (this.hasStarted) return
    this.hasStarted = true
    this.begin()
    this.parent?.start()
  }
  attach(w: Wrapper): void {
    this.wrapper = w
    if (this.title) w.title = this.title
    if (this.output) w.output = this.output
  }
  // listr2 ends a parent task with its last child, and a finished task cannot be written to: such late lines (a
  // soak's re-checks after the clusters finished) are dropped here, the plain summary still has them.
  setTitle(t: string): void {
    this.title = t
    this.write((w) => (w.title = t))
  }
  say(line: string): void {
    this.output = line
    this.write((w) => (w.output = line))
  }
  private write(f: (w: Wrapper) => void): void {
    if (!this.wrapper || this.ended) return
    try {
      f(this.wrapper)
    } catch {
      this.wrapper = undefined
    }
  }
  finish(e: End): void {
    if (this.ended) return
    this.ended = e
    this.resolve(e)
  }
  failed(): End | undefined {
    const f = this.failure
    return f && { kind: 'fail', message: `${f.node}${f.cordoned ? ' (cordoned)' : ''}: ${f.error}${f.after ? `; ${f.after}` : ''}` }
  }
  /**
   * The run is over and this line got no end of its own: never started (`stage production: not run`, or the approval
   * it waits for), or started and left (done when the run is, as a `kupgrade rollback` leaves its stage; else failed
   * with how the run ended: `w-1: interrupted`).
   */
  runOver(outcome?: string): void {
    if (this.endsWithRun) this.finish(this.endsWithRun)
    // A stage asked for on the terminal and declined started its line for the question, but never ran.
    else if (this.awaiting) this.finish({ kind: 'skip', why: this.awaiting })
    else if (!this.hasStarted) this.finish(this.failed() ?? { kind: 'skip', why: `${this.label}: not run` })
    else this.finish(this.failed() ?? (outcome === 'done' || outcome === 'nothing-to-do' ? { kind: 'done' } : { kind: 'fail', message: `${this.label}: ${outcome ?? 'stopped'}` }))
  }
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)}s`

export interface TtyRenderer {
  sink: EventSink
  /**
   * A question to the person at the terminal (a stage's approval), asked on that stage's line: listr2 holds what is
   * written to stdout while it draws, so a question written there showed only once the run ended, and the tree drew
   * a spinner that waited for an answer nobody had been asked for. The answer is a line read from `stdin` (the
   * terminal echoes what is typed); y or yes is yes.
   */
  ask(stage: string, question: string, signal?: AbortSignal): Promise<boolean>
  stop(): Promise<void>
}

export function createTtyRenderer(o: { stdout: NodeJS.WritableStream; stdin?: NodeJS.ReadableStream; color: boolean }): TtyRenderer {
  const slots = new Map<string, Slot>()
  const slot = (...k: string[]): Slot => {
    const key = k.join('\u0000')
    let s = slots.get(key)
    if (!s) slots.set(key, (s = new Slot(k.at(-1)!)))
    return s
  }
  // A failure is said in full once, on the lowest line it happened on (the node); the lines above it say where.
  const told = new ToldFailures('see below')
  let running: Promise<unknown> | undefined

  type Child = ListrTask<unknown, any, any>
  /**
   * A line that starts only when its part of the run does: one that never does (a stage after a failed one) is
   * skipped whole, its children not drawn. listr2 asks `skip` when the line's turn comes.
   */
  const untilStarted = (s: Slot) => async (): Promise<string | false> => {
    const skip = await Promise.race([s.started.then(() => false as const), s.end.then((e) => (e.kind === 'skip' ? e.why : false))])
    if (skip) s.settle()
    return skip
  }
  /**
   * A line with children: listr2 runs them as its subtasks (one renderer for the whole tree). listr2 would mark it
   * done once they are, whatever happened; a last task without a title gives it its own end instead, after every
   * child's: failed (its error fails the list, so the line is drawn failed), skipped, or done.
   */
  const parent = (s: Slot, title: string, children: Slot[], tasks: () => Child[]): Child => ({
    title,
    exitOnError: false,
    skip: untilStarted(s),
    task: (_: unknown, w: Wrapper): Listr<unknown, any, any> => {
      s.attach(w)
      const verdict: Child = {
        task: async () => {
          try {
            const end = await s.end
            // A list that fails marks the tasks in it not yet done as failed too: every child draws its own end first
            // (listr2 records it a turn after the child's function returns).
            await Promise.all(children.map((c) => c.settled))
            await new Promise((r) => setImmediate(r))
            if (end.kind === 'fail') {
              w.title = end.message
              throw new Error(end.message)
            }
            if (end.kind === 'skip') w.skip(end.why)
            else if (end.title) w.title = end.title
          } finally {
            s.settle()
          }
        },
      }
      return w.newListr([...tasks(), verdict], { concurrent: true, exitOnError: true })
    },
  })
  /** A leaf (a node): it ends with its own event. */
  const leaf = (s: Slot, title: string): Child => ({
    title,
    exitOnError: false,
    skip: untilStarted(s),
    task: async (_: unknown, w: Wrapper) => {
      s.attach(w)
      const end = await s.end
      try {
        if (end.kind === 'skip') w.skip(end.why)
        else if (end.kind === 'fail') throw new Error(end.message)
        else if (end.title) w.title = end.title
      } finally {
        s.settle()
      }
    },
  })

  const sink: EventSink = (e: ExecutorEvent) => {
    switch (e.type) {
      case 'run-started': {
        // Above the tree, which listr2 then draws below them.
        for (const w of e.warnings) o.stdout.write(`warning: ${w}\n`)
        const logger = new ListrLogger({ processOutput: new ProcessOutput(o.stdout as NodeJS.WriteStream, o.stdout as NodeJS.WriteStream) })
        const list = new Listr(e.outline.map((st) => {
          const stage = slot(st.stage)
          stage.label = `stage ${st.stage}`
          const clusters = st.clusters.map((c) => {
            const s = slot(st.stage, c.name)
            s.parent = stage
            const nodes = c.nodes.map((n) => slot(st.stage, c.name, n))
            for (const n of nodes) n.parent = s
            return { c, s, nodes }
          })
          return parent(stage, stage.label, clusters.map((x) => x.s), () => clusters.map(({ c, s, nodes }) =>
            parent(s, `${c.name} (${c.distribution})`, nodes, () => nodes.map((n) => leaf(n, n.label)))))
        }), {
          concurrent: false, exitOnError: false, registerSignalListeners: false, forceTTY: true,
          // No listr2 timers: a line's time is its part of the run's, from its event, in its title (`w-1 ✓ 7.8s`); a
          // node's task lasts until its cluster ends.
          rendererOptions: { collapseSubtasks: false, collapseSkips: true, showErrorMessage: true, logger } as never,
        })
        running = list.run().catch(() => undefined)
        break
      }
      case 'stage-started': slot(e.stage).start(); slot(e.stage).say('running'); break
      case 'stage-done': slot(e.stage).finish({ kind: 'done', title: `stage ${e.stage} ✓ ${secs(e.durationMs)}` }); break
      case 'stage-failed': slot(e.stage).endsWithRun = { kind: 'fail', message: `stage ${e.stage}: ${told.compact(e.error)}` }; break
      case 'approval-needed': slot(e.stage).awaiting = `stage ${e.stage}: waits for approval (${e.command})`; break
      case 'cluster-started': slot(e.stage, e.cluster).start(); slot(e.stage, e.cluster).say('started'); break
      case 'cluster-done': endCluster(e.stage, e.cluster, { kind: 'done', title: `${e.cluster} ✓ ${secs(e.durationMs)}${e.changed ? '' : ' (nothing changed)'}` }); break
      case 'cluster-skipped': endCluster(e.stage, e.cluster, { kind: 'skip', why: `${e.cluster}: ${e.reason}` }); break
      case 'cluster-failed': endCluster(e.stage, e.cluster, { kind: 'fail', message: `${e.cluster}: ${told.compact(e.error)}` }); break
      case 'node-started': {
        const s = slot(e.stage, e.cluster, e.node)
        s.start()
        s.setTitle(`${e.node}${e.hop !== undefined ? ` · hop ${e.hop}` : ''}${e.batch !== undefined ? ` · batch ${e.batch}` : ''}`)
        break
      }
      case 'node-done': {
        const s = slot(e.stage, e.cluster, e.node)
        s.succeeded = true
        s.setTitle(`${e.node} ✓ ${secs(e.durationMs)}`)
        break
      }
      case 'node-failed': {
        told.remember(e.error)
        const s = slot(e.stage, e.cluster, e.node)
        s.failure = { node: e.node, error: e.error.split('\n')[0]!, cordoned: e.cordoned }
        s.setTitle(`${e.node}: ✗ failed`)
        break
      }
      case 'step-started': where(e.step).say(`${e.step.title} …`); break
      case 'step-done': where(e.step).say(`✓ ${e.step.title} ${secs(e.durationMs)}`); break
      case 'step-failed': where(e.step).say(`✗ ${e.step.title}: ${e.error.split('\n')[0]}`); break
      case 'step-waiting': where(e.step).say(`${e.step.title}: still waiting (${Math.round(e.elapsedMs / 1000)}s of ${Math.round(e.timeoutMs / 1000)}s): ${e.observed}`); break
      case 'step-retrying': where(e.step).say(`↻ ${e.step.title}: ${e.error}; verifying and trying again (attempt ${e.attempt}) in ${secs(e.delayMs)}`); break
      case 'gate-result': where(e.step).say(`gate ${e.gate}${e.during ? ` (${e.during})` : ''}: ${e.status} — ${e.summary}`); break
      case 'resume-check': slot(e.stage, e.cluster).say(`resumed: checking ${e.point} again before ${e.before} …`); break
      case 'lock-lost': slot(...clusterKey(e.cluster)).say(`lock lost: ${e.reason}`); break
      case 'rollback-started': slot(...clusterKey(e.cluster)).say(`rolling back ${e.node} (${e.path}) …`); nodeAfter(e.cluster, e.node, { doing: `rolling back (${e.path}) …` }); break
      case 'undo-done': where(e.step).say(`↩ undone ${e.step.title}`); break
      case 'undo-failed': where(e.step).say(`✗ undo of ${e.step.title}: ${e.error.split('\n')[0]}`); break
      case 'rollback-done': {
        const kept = e.kept?.length ? `; kept: ${e.kept.map((k) => k.step.split('/').pop()).join(', ')}` : ''
        const how = e.restoredWith ? `rolled back with the control plane restored in the rollback of ${e.restoredWith}` : `rolled back ${secs(e.durationMs)}${kept}`
        slot(...clusterKey(e.cluster)).say(`↩ ${e.node} ${how}`)
        nodeAfter(e.cluster, e.node, { done: how })
        break
      }
      case 'rollback-failed': slot(...clusterKey(e.cluster)).say(`✗ rollback of ${e.node} stopped: ${e.error.split('\n')[0]}`); nodeAfter(e.cluster, e.node, { stopped: `rollback stopped: ${e.error.split('\n')[0]}` }); break
      case 'rebuild-started': slot(...clusterKey(e.cluster)).say(`rebuilding ${e.node} …`); nodeAfter(e.cluster, e.node, { doing: 'rebuilding …' }); break
      case 'rebuild-done': slot(...clusterKey(e.cluster)).say(`⟳ ${e.node} rebuilt ${secs(e.durationMs)}`); nodeAfter(e.cluster, e.node, { done: `rebuilt ${secs(e.durationMs)}` }); break
      case 'rebuild-failed': slot(...clusterKey(e.cluster)).say(`✗ rebuild of ${e.node} stopped: ${e.error.split('\n')[0]}`); nodeAfter(e.cluster, e.node, { stopped: `rebuild stopped: ${e.error.split('\n')[0]}` }); break
      case 'run-finished':
        for (const s of slots.values()) s.runOver(e.outcome)
        break
    }
  }
  const clusterKey = (cluster: string): string[] => {
    for (const k of slots.keys()) {
      const parts = k.split('\u0000')
      if (parts.length === 2 && parts[1] === cluster) return parts
    }
    return ['?', cluster]
  }
  /**
   * What became of a node after it failed (its rollback or rebuild), said on its own line when its cluster ends. A
   * node this run did not fail (`kupgrade rollback` takes back what an earlier run did) gets the outcome as its line.
   */
  const nodeAfter = (cluster: string, node: string, o: { doing?: string; done?: string; stopped?: string }) => {
    const s = slots.get([...clusterKey(cluster), node].join('\u0000'))
    if (!s) return
    s.start()
    if (o.doing) s.say(o.doing)
    if (s.failure) {
      if (o.done) Object.assign(s.failure, { after: o.done, cordoned: false })
      if (o.stopped) s.failure.after = o.stopped
    } else if (o.done) {
      s.succeeded = true
      s.setTitle(`${node} ↩ ${o.done}`)
    } else if (o.stopped) s.failure = { node, error: o.stopped, cordoned: false }
  }
  const where = (s: { stage: string; cluster?: string; node?: string }): Slot =>
    s.node && s.cluster ? slot(s.stage, s.cluster, s.node) : s.cluster ? slot(s.stage, s.cluster) : slot(s.stage)
  const endCluster = (stage: string, cluster: string, end: End) => {
    // Its listr2 task ends with its children; later events (soak re-checks) must not write to it.
    slot(stage, cluster).finish(end)
    for (const [k, s] of slots) {
      const p = k.split('\u0000')
      if (p.length === 3 && p[0] === stage && p[1] === cluster) s.finish(s.failed() ?? (s.succeeded ? { kind: 'done' } : end.kind === 'fail' ? { kind: 'skip', why: `${p[2]}: not upgraded` } : end.kind === 'skip' ? { kind: 'skip', why: `${p[2]}: ${end.why.replace(/^[^:]*: /, '')}` } : { kind: 'done' }))
    }
  }
  return {
    sink,
    ask: async (stage, question, signal) => {
      const s = slot(stage)
      s.start()
      s.say(`${question} [y/N]`)
      const rl = createInterface({ input: o.stdin ?? process.stdin, terminal: false })
      // An interrupt while the question waits is a no: the run stops there, and its resume asks again.
      const interrupted = () => rl.close()
      signal?.addEventListener('abort', interrupted, { once: true })
      try {
        const answer = await new Promise<string>((resolve) => {
          rl.once('line', resolve)
          rl.once('close', () => resolve(''))
          if (signal?.aborted) rl.close()
        })
        const yes = saysYes(answer)
        s.say(yes ? 'approved on the terminal' : 'not approved')
        return yes
      } finally {
        signal?.removeEventListener('abort', interrupted)
        rl.close()
      }
    },
    stop: async () => {
      for (const s of slots.values()) s.runOver()
      // The tree's last frame is drawn by now; never let drawing hold the run's exit.
      await Promise.race([running, new Promise((r) => setTimeout(r, 1000).unref())])
    },
  }
}
