import { raiseListenerLimit } from '../../util/signal.js'
import { sleep } from '../backoff.js'
import type { KubectlClient } from './client.js'

/** One observation of the object: what was read, or why it could not be. */
export type Seen<T> = { obj: T; error?: undefined } | { obj?: undefined; error: Error }

export interface ObserveOptions {
  /** With no change for this long, the object is read afresh and judged, so a deadline in `decide` falls on time and
   *  a stalled watch costs no more than this. */
  quietMs: number
  /** The interval between gets where kubectl cannot watch (RBAC without `watch`, a proxy that cuts streams). */
  pollMs: number | ((elapsedMs: number) => number)
  signal?: AbortSignal
  log?: (message: string) => void
}

/** A watch that ends sooner than this without a word is not restarted at once (no busy loop on a flapping API). */
const SHORT_WATCH_MS = 1_000

/**
 * Waits on one object (`['pod', NAME, '-n', NS]`, `['node', NAME]`) until `decide` returns an answer. One
 * `kubectl get --watch` serves the whole wait — a process start per poll is most of what a poll costs, and a change is
 * seen when it happens instead of at the next poll. `decide` is called for every object kubectl prints and for a fresh
 * get after each `quietMs` without one, so a stream that stalled silently costs one quiet interval. kubectl's
 * --request-timeout ends a watch; the next one starts. A watch kubectl cannot open falls back to polling with get,
 * whose failures (after the client's own retries) reach `decide` as errors.
 */
export async function observeUntil<T, R>(client: KubectlClient, target: string[], decide: (seen: Seen<T>) => R | undefined, o: ObserveOptions): Promise<R> {
  const started = Date.now()
  let watching = true
  for (;;) {
    o.signal?.throwIfAborted()
    if (watching) {
      const w = await watchOnce(client, target, decide, o)
      if ('answer' in w) return w.answer
      o.signal?.throwIfAborted()
      if (w.exitCode !== 0) {
        o.log?.(`kubectl get ${target.join(' ')} --watch ended with exit ${w.exitCode} (${w.stderr.trim().split('\n').at(-1) ?? ''}): polling instead`)
        watching = false
      } else if (w.durationMs < SHORT_WATCH_MS) await sleep(o.quietMs, o.signal)
      continue
    }
    const seen = await getOnce<T>(client, target).then((obj): Seen<T> => ({ obj }), (error: unknown): Seen<T> => ({ error: error as Error }))
    o.signal?.throwIfAborted()
    const answer = decide(seen)
    if (answer !== undefined) return answer
    await sleep(typeof o.pollMs === 'number' ? o.pollMs : o.pollMs(Date.now() - started), o.signal)
  }
}

/** The object as a plain get reads it: the polling fallback and the quiet re-read. */
const getOnce = <T>(client: KubectlClient, target: string[]): Promise<T> => client.json<T>(['get', ...target, '-o', 'json'])

async function watchOnce<T, R>(client: KubectlClient, target: string[], decide: (seen: Seen<T>) => R | undefined, o: ObserveOptions) {
  const stop = new AbortController()
  const cancel = () => stop.abort()
  // A batch's gates and waits each follow something on the run's one signal: dozens of listeners, by design.
  if (o.signal) raiseListenerLimit(o.signal)
  o.signal?.addEventListener('abort', cancel, { once: true })
  let result: { answer: R } | undefined
  let thrown: { error: unknown } | undefined
  let last: T | undefined
  let lastAt = Date.now()
  // A re-read that lands after this watch ended belongs to no wait any more: the next watch judges afresh.
  let ended = false
  const judge = (obj: T) => {
    if (result || thrown || ended) return
    last = obj
    try {
      const answer = decide({ obj })
      if (answer !== undefined) {
        result = { answer }
        stop.abort()
      }
    } catch (error) {
      thrown = { error }
      stop.abort()
    }
  }
  // Quiet for quietMs: read the object afresh rather than judge the last one again. A watch can stall without a word
  // (a proxy buffering the stream, an event lost on the way): a re-read bounds what that costs to one quiet interval.
  let rereading = false
  const quiet = setInterval(() => {
    if (rereading || Date.now() - lastAt < o.quietMs) return
    rereading = true
    getOnce<T>(client, target).then((obj) => judge(obj), () => {
      // The watch is still the source; a failed re-read only means this interval brought nothing new.
      if (last !== undefined) judge(last)
    }).finally(() => {
      rereading = false
      lastAt = Date.now()
    })
  }, o.quietMs)
  const began = Date.now()
  try {
    const w = await client.watch(target, (obj) => {
      lastAt = Date.now()
      judge(obj as T)
    }, stop.signal)
    if (thrown) throw thrown.error
    if (result) return result
    return { exitCode: w.exitCode, stderr: w.stderr, durationMs: Date.now() - began }
  } finally {
    ended = true
    clearInterval(quiet)
    o.signal?.removeEventListener('abort', cancel)
  }
}
