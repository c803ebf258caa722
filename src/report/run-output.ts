import { appendFileSync, existsSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { ExecutorEvent, EventSink } from '../executor/events.js'
import { escapeDeep } from '../util/escape.js'
import { plainLines } from './run-plain.js'
import { renderSummaryMarkdown, renderSummaryText, SummaryCollector } from './run-summary.js'

/**
 * The one place that decides how a run looks: `--output json` (NDJSON, docs/events.md), the listr2 tree on a TTY,
 * or plain timestamped lines. Every renderer consumes the executor's events; the summary is built from them too.
 */
export type OutputMode = 'json' | 'tty' | 'plain'

export interface RunOutput {
  sink: EventSink
  /** On a terminal's tree: ask on a stage's line (TtyRenderer.ask); elsewhere the question is simply written. */
  ask?: (stage: string, question: string, signal?: AbortSignal) => Promise<boolean>
  /** After the run: the summary (text, or nothing in json mode) and $GITHUB_STEP_SUMMARY. */
  finish(): Promise<void>
}

export interface RunOutputOptions {
  mode: OutputMode
  stdout: NodeJS.WritableStream
  env: NodeJS.ProcessEnv
  verbose: boolean
  color: boolean
}

export async function createRunOutput(o: RunOutputOptions): Promise<RunOutput> {
  const summary = new SummaryCollector()
  let render: EventSink
  let stop: () => Promise<void> = async () => {}
  let ask: RunOutput['ask']
  if (o.mode === 'json') {
    render = (e) => o.stdout.write(`${JSON.stringify(e)}\n`)
  } else if (o.mode === 'tty') {
    const { createTtyRenderer } = await import('./run-tty.js')
    const tty = createTtyRenderer({ stdout: o.stdout, color: o.color })
    render = tty.sink
    stop = tty.stop
    ask = tty.ask
  } else {
    const plainLine = plainLines(o.verbose)
    render = (e) => {
      const line = plainLine(e)
      if (line !== undefined) o.stdout.write(`${line}\n`)
    }
  }
  let broken = false
  return {
    ...(ask ? { ask } : {}),
    // Drawing progress must never fail an upgrade: a renderer error is reported once and drawing stops.
    sink: (raw: ExecutorEvent) => {
      // What nodes, hooks and clusters said reaches a terminal or a CI log: their control characters are shown, not
      // obeyed (an ESC sequence could rewrite the screen, a CR hide a line). The lines of a multi-line error stay.
      // (JSON writes them as \u escapes itself.)
      const e = escapeDeep(raw, { keepLines: true })
      summary.add(e)
      if (broken) return
      try {
        render(o.mode === 'json' ? raw : e)
      } catch (err) {
        broken = true
        o.stdout.write(`\n(progress display failed: ${(err as Error).message}; the run goes on, see the summary and the journal)\n`)
      }
    },
    finish: async () => {
      await stop()
      if (o.mode !== 'json') o.stdout.write(renderSummaryText(summary.data))
      const file = o.env.GITHUB_STEP_SUMMARY
      if (file && summary.data.runId) appendFileSync(file, renderSummaryMarkdown(summary.data))
      // The run's report beside its journal, for people (markdown) and tools (JSON): what the summary says, plus the
      // timeline, the gates' evidence and every node's state after the run.
      const journal = summary.data.journal
      if (!summary.data.dryRun && journal.endsWith('journal.jsonl') && existsSync(dirname(journal))) {
        writeFileSync(join(dirname(journal), 'report.md'), renderSummaryMarkdown(summary.data))
        writeFileSync(join(dirname(journal), 'report.json'), `${JSON.stringify(summary.data, null, 2)}\n`)
      }
    },
  }
}
