import { Listr, ListrLogger, PRESET_TIMER, ProcessOutput, type ListrTask, type ListrTaskWrapper } from 'listr2'
import type { EventSink, ExecutorEvent } from '../executor/events.js'

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
  private resolve!: (e: End) => void
  readonly end: Promise<End> = new Promise((r) => (this.resolve = r))
  attach(w: Wrapper): void {
    this.wrapper = w
    if (this.title) w.title = this.title
    if (this.output) w.output = this.output
  }
  // A finished listr2 task must not be written to (its output stream is gone).
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
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)}s`

export function createTtyRenderer(o: { stdout: NodeJS.WritableStream; color: boolean }): { sink: EventSink; stop: () => Promise<void> } {
  const slots = new Map<string, Slot>()
  const slot = (...k: string[]): Slot => {
    const key = k.join('\u0000')
    let s = slots.get(key)
    if (!s) slots.set(key, (s = new Slot()))
    return s
  }
  let running: Promise<unknown> | undefined

  type Child = ListrTask<unknown, any, any>
  /** A line with children: listr2 runs them as its subtasks (one renderer for the whole tree). */
  const parent = (s: Slot, title: string, children: () => Child[]): Child => ({
    title,
    task: (_: unknown, w: Wrapper): Listr<unknown, any, any> => {
      s.attach(w)
      return w.newListr(children(), { concurrent: true, exitOnError: false })
    },
  })
  /** A leaf (a node): it ends with its own event. */
  const leaf = (s: Slot, title: string): Child => ({
    title,
    task: async (_: unknown, w: Wrapper) => {
      s.attach(w)
      const end = await s.end
      if (end.kind === 'skip') w.skip(end.why)
      else if (end.kind === 'fail') throw new Error(end.message)
      else if (end.title) w.title = end.title
    },
  })

  const sink: EventSink = (e: ExecutorEvent) => {
    switch (e.type) {
      case 'run-started': {
        const logger = new ListrLogger({ processOutput: new ProcessOutput(o.stdout as NodeJS.WriteStream, o.stdout as NodeJS.WriteStream) })
        const list = new Listr(e.outline.map((st) => parent(slot(st.stage), `stage ${st.stage}`, () => st.clusters.map((c) =>
          parent(slot(st.stage, c.name), `${c.name} (${c.distribution})`, () => c.nodes.map((n) => leaf(slot(st.stage, c.name, n), n)))))), {
          concurrent: false, exitOnError: false, registerSignalListeners: false, forceTTY: true,
          rendererOptions: { collapseSubtasks: false, collapseSkips: true, showErrorMessage: true, timer: PRESET_TIMER, logger } as never,
        })
        running = list.run().catch(() => undefined)
        break
      }
      case 'stage-started': slot(e.stage).say('running'); break
      case 'stage-done': slot(e.stage).setTitle(`stage ${e.stage} ✓ ${secs(e.durationMs)}`); slot(e.stage).finish({ kind: 'done' }); break
      case 'stage-failed': slot(e.stage).setTitle(`stage ${e.stage} ✗ ${e.error.split('\n')[0]}`); slot(e.stage).finish({ kind: 'done' }); break
      case 'approval-needed': slot(e.stage).setTitle(`stage ${e.stage}: waits for approval (${e.command})`); break
      case 'cluster-started': slot(e.stage, e.cluster).say('started'); break
      case 'cluster-done': endCluster(e.stage, e.cluster, { kind: 'done', title: `${e.cluster} ✓ ${secs(e.durationMs)}${e.changed ? '' : ' (nothing changed)'}` }); break
      case 'cluster-skipped': endCluster(e.stage, e.cluster, { kind: 'skip', why: `${e.cluster}: ${e.reason}` }); break
      case 'cluster-failed': endCluster(e.stage, e.cluster, { kind: 'fail', message: `${e.cluster}: ${e.error.split('\n')[0]}` }); break
      case 'node-started': slot(e.stage, e.cluster, e.node).setTitle(`${e.node}${e.hop !== undefined ? ` · hop ${e.hop}` : ''}${e.batch !== undefined ? ` · batch ${e.batch}` : ''}`); break
      case 'node-done': slot(e.stage, e.cluster, e.node).setTitle(`${e.node} ✓ ${secs(e.durationMs)}`); break
      case 'node-failed': slot(e.stage, e.cluster, e.node).finish({ kind: 'fail', message: `${e.node}${e.cordoned ? ' (cordoned)' : ''}: ${e.error.split('\n')[0]}` }); break
      case 'step-started': where(e.step).say(`${e.step.title} …`); break
      case 'step-done': where(e.step).say(`✓ ${e.step.title} ${secs(e.durationMs)}`); break
      case 'step-failed': where(e.step).say(`✗ ${e.step.title}: ${e.error.split('\n')[0]}`); break
      case 'step-waiting': where(e.step).say(`${e.step.title}: still waiting (${Math.round(e.elapsedMs / 1000)}s of ${Math.round(e.timeoutMs / 1000)}s): ${e.observed}`); break
      case 'step-retrying': where(e.step).say(`↻ ${e.step.title}: ${e.error}; verifying and trying again (attempt ${e.attempt}) in ${secs(e.delayMs)}`); break
      case 'gate-result': where(e.step).say(`gate ${e.gate}${e.during ? ` (${e.during})` : ''}: ${e.status} — ${e.summary}`); break
      case 'lock-lost': slot(...clusterKey(e.cluster)).say(`lock lost: ${e.reason}`); break
      case 'rollback-started': slot(...clusterKey(e.cluster)).say(`rolling back ${e.node} (${e.path}) …`); break
      case 'undo-done': where(e.step).say(`↩ undone ${e.step.title}`); break
      case 'undo-failed': where(e.step).say(`✗ undo of ${e.step.title}: ${e.error.split('\n')[0]}`); break
      case 'rollback-done': slot(...clusterKey(e.cluster)).say(`↩ ${e.node} rolled back ${secs(e.durationMs)}`); break
      case 'rollback-failed': slot(...clusterKey(e.cluster)).say(`✗ rollback of ${e.node} stopped: ${e.error.split('\n')[0]}`); break
      case 'rebuild-started': slot(...clusterKey(e.cluster)).say(`rebuilding ${e.node} …`); break
      case 'rebuild-done': slot(...clusterKey(e.cluster)).say(`⟳ ${e.node} rebuilt ${secs(e.durationMs)}`); break
      case 'rebuild-failed': slot(...clusterKey(e.cluster)).say(`✗ rebuild of ${e.node} stopped: ${e.error.split('\n')[0]}`); break
      case 'run-finished':
        for (const s of slots.values()) s.finish({ kind: 'skip', why: 'not run' })
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
  const where = (s: { stage: string; cluster?: string; node?: string }): Slot =>
    s.node && s.cluster ? slot(s.stage, s.cluster, s.node) : s.cluster ? slot(s.stage, s.cluster) : slot(s.stage)
  const endCluster = (stage: string, cluster: string, end: End) => {
    slot(stage, cluster).setTitle(end.kind === 'done' ? end.title ?? cluster : end.kind === 'skip' ? `${end.why}` : `✗ ${end.message}`)
    // Its listr2 task ends with its children; later events (soak re-checks) must not write to it.
    slot(stage, cluster).finish({ kind: 'done' })
    for (const [k, s] of slots) {
      const p = k.split('\u0000')
      if (p.length === 3 && p[0] === stage && p[1] === cluster) s.finish(s.wrapper?.title?.includes('✓') ? { kind: 'done' } : end.kind === 'fail' ? { kind: 'skip', why: `${p[2]}: not upgraded` } : end.kind === 'skip' ? { kind: 'skip', why: `${p[2]}: ${end.why.replace(/^[^:]*: /, '')}` } : { kind: 'done' })
    }
  }
  return {
    sink,
    stop: async () => {
      for (const s of slots.values()) s.finish({ kind: 'skip', why: 'not run' })
      // The tree's last frame is drawn by now; never let drawing hold the run's exit.
      await Promise.race([running, new Promise((r) => setTimeout(r, 1000).unref())])
    },
  }
}
