import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { KubectlClient } from '../../src/transport/kubectl/client.js'
import { JsonObjectStream } from '../../src/transport/kubectl/json-stream.js'
import { observeUntil, type Seen } from '../../src/transport/kubectl/observe.js'

describe('JsonObjectStream: what `kubectl get --watch -o json` prints, split into objects', () => {
  const pretty = (o: unknown) => `${JSON.stringify(o, null, 4)}\n`

  it('splits back-to-back pretty-printed objects fed in chunks that break anywhere', () => {
    const objects = [
      { kind: 'Pod', metadata: { name: 'a', annotations: { note: 'a } inside { a string', json: '{"x":[1,2]}' } }, status: { phase: 'Pending' } },
      { kind: 'Pod', metadata: { name: 'a' }, status: { phase: 'Running', message: 'quote \\" and backslash \\\\ } ]' } },
      { kind: 'Pod', metadata: { name: 'a' }, spec: { containers: [{ command: ['sh', '-c', 'echo "}"'] }] }, status: { phase: 'Succeeded' } },
    ]
    const text = objects.map(pretty).join('')
    for (const size of [1, 2, 3, 7, 64, text.length]) {
      const s = new JsonObjectStream()
      const got: unknown[] = []
      for (let i = 0; i < text.length; i += size) got.push(...s.push(text.slice(i, i + size)))
      expect(got, `chunks of ${size}`).toEqual(objects)
    }
  })

  it('an object is handed out only once it is whole', () => {
    const s = new JsonObjectStream()
    expect(s.push('{\n    "kind": "Node",\n    "spec": {')).toEqual([])
    expect(s.push('"unschedulable": true}\n}\n{')).toEqual([{ kind: 'Node', spec: { unschedulable: true } }])
    expect(s.push('"kind": "Node"}')).toEqual([{ kind: 'Node' }])
  })

  it('text that is not JSON throws (the client turns it into a clear error)', () => {
    expect(() => new JsonObjectStream().push('{"kind": nope}')).toThrow(SyntaxError)
  })
})

/**
 * A scripted client: each watch prints the given objects at the given times, then ends with the given exit code
 * (kubectl's --request-timeout ends a watch with 0) unless it is stopped first; gets answer from `current`.
 */
function scripted(watches: { events: [number, unknown][]; endAfterMs: number; exitCode: number; stderr?: string }[], current: () => unknown) {
  const log = { watches: 0, gets: [] as number[], stopped: 0 }
  const t0 = Date.now()
  const client = {
    watch: (target: string[], onObject: (o: unknown) => void, signal: AbortSignal) => {
      const w = watches[log.watches++]
      if (!w) throw new Error('no more watches scripted')
      return new Promise((resolve) => {
        const timers = w.events.map(([at, o]) => setTimeout(() => onObject(o), at))
        const end = setTimeout(() => resolve({ exitCode: w.exitCode, stderr: w.stderr ?? '', stopped: false }), w.endAfterMs)
        signal.addEventListener('abort', () => {
          timers.forEach(clearTimeout)
          clearTimeout(end)
          log.stopped++
          resolve({ exitCode: null, stderr: '', stopped: true })
        }, { once: true })
      })
    },
    json: async (args: string[]) => {
      expect(args).toEqual(['get', 'pod', 'p', '-o', 'json'])
      log.gets.push(Date.now() - t0)
      const o = current()
      if (o instanceof Error) throw o
      return o
    },
  } as unknown as KubectlClient
  return { client, log }
}

const phase = (p: string) => ({ status: { phase: p } })
const done = (seen: Seen<{ status: { phase: string } }>) => (seen.obj?.status.phase === 'Succeeded' ? 'done' : seen.error ? `error: ${seen.error.message}` : undefined)

describe('observeUntil: one watch for a whole wait, polling only where kubectl cannot watch', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('answers on the event that decides it, stops the watch, and starts no get', async () => {
    const { client, log } = scripted([{ events: [[0, phase('Pending')], [1_300, phase('Running')], [1_850, phase('Succeeded')]], endAfterMs: 20_000, exitCode: 0 }], () => phase('Pending'))
    let answeredAt = -1
    const answer = observeUntil(client, ['pod', 'p'], done, { quietMs: 1_000, pollMs: 500 }).then((a) => ((answeredAt = Date.now()), a))
    const t0 = Date.now()
    await vi.advanceTimersByTimeAsync(5_000)
    expect(await answer).toBe('done')
    expect(answeredAt - t0).toBe(1_850)
    // One quiet second (0 → 1.3 s) was bridged by a fresh get.
    expect(log).toEqual({ watches: 1, gets: [1_000], stopped: 1 })
  })

  it('after quietMs without a change the object is read afresh: a watch that stalled costs one quiet interval', async () => {
    const t0 = Date.now()
    // The watch prints the pod once and then nothing, though the pod finishes at 2.5 s.
    const { client, log } = scripted([{ events: [[0, phase('Pending')]], endAfterMs: 20_000, exitCode: 0 }], () => phase(Date.now() - t0 >= 2_500 ? 'Succeeded' : 'Pending'))
    const judged: number[] = []
    const answer = observeUntil(client, ['pod', 'p'], (s: Seen<{ status: { phase: string } }>) => (judged.push(Date.now() - t0), done(s)), { quietMs: 1_000, pollMs: 500 })
    await vi.advanceTimersByTimeAsync(10_000)
    expect(await answer).toBe('done')
    expect(judged).toEqual([0, 1_000, 2_000, 3_000])
    expect(log).toEqual({ watches: 1, gets: [1_000, 2_000, 3_000], stopped: 1 })
  })

  it('a re-read that lands after its watch ended is not judged: the next watch judges afresh', async () => {
    const t0 = Date.now()
    let watches = 0
    const client = {
      watch: (_t: string[], onObject: (o: unknown) => void, signal: AbortSignal) => new Promise((resolve) => {
        const n = ++watches
        onObject(phase('Pending'))
        // The first watch ends by itself (kubectl's request timeout) at 2.5 s; the second runs on.
        const end = n === 1 ? setTimeout(() => resolve({ exitCode: 0, stderr: '', stopped: false }), 2_500) : undefined
        signal.addEventListener('abort', () => (clearTimeout(end), resolve({ exitCode: null, stderr: '', stopped: true })), { once: true })
      }),
      // A slow get: a second from asking to answer.
      json: () => new Promise((resolve) => setTimeout(() => resolve(phase('Succeeded')), 1_000)),
    } as unknown as KubectlClient
    const judged: number[] = []
    const answer = observeUntil(client, ['pod', 'p'], (s: Seen<{ status: { phase: string } }>) => (judged.push(Date.now() - t0), done(s)), { quietMs: 2_000, pollMs: 500 })
    await vi.advanceTimersByTimeAsync(10_000)
    expect(await answer).toBe('done')
    // 0: watch 1 prints; 2.5 s: watch 2 prints; the re-read asked at 2 s lands at 3 s, after watch 1 ended: dropped;
    // watch 2's own re-read, asked at 4.5 s, decides at 5.5 s.
    expect(judged).toEqual([0, 2_500, 5_500])
  })

  it('a deadline in decide falls on time while nothing changes', async () => {
    const { client } = scripted([{ events: [[0, phase('Pending')]], endAfterMs: 20_000, exitCode: 0 }], () => phase('Pending'))
    const t0 = Date.now()
    const answer = observeUntil(client, ['pod', 'p'], () => (Date.now() - t0 >= 3_500 ? 'late' : undefined), { quietMs: 1_000, pollMs: 500 })
    let at = -1
    void answer.then(() => (at = Date.now() - t0))
    await vi.advanceTimersByTimeAsync(10_000)
    expect(await answer).toBe('late')
    expect(at).toBe(4_000)
  })

  it('a watch kubectl ends (its --request-timeout) is started again; the next one begins with the current object', async () => {
    const { client, log } = scripted([
      { events: [[0, phase('Pending')]], endAfterMs: 20_000, exitCode: 0 },
      { events: [[0, phase('Succeeded')]], endAfterMs: 20_000, exitCode: 0 },
    ], () => phase('Pending'))
    const answer = observeUntil(client, ['pod', 'p'], done, { quietMs: 30_000, pollMs: 500 })
    await vi.advanceTimersByTimeAsync(25_000)
    expect(await answer).toBe('done')
    expect(log.watches).toBe(2)
    expect(log.gets).toEqual([])
  })

  it('where the watch is refused (RBAC without watch), it polls with get at pollMs, and get errors reach decide', async () => {
    let n = 0
    const { client, log } = scripted([{ events: [], endAfterMs: 40, exitCode: 1, stderr: 'Error from server (Forbidden): pods "p" is forbidden: cannot watch' }],
      () => (++n === 2 ? new Error('the API server did not answer in time') : n >= 4 ? phase('Succeeded') : phase('Pending')))
    const seen: string[] = []
    const messages: string[] = []
    const answer = observeUntil(client, ['pod', 'p'], (s: Seen<{ status: { phase: string } }>) => {
      seen.push(s.error ? `error ${s.error.message}` : s.obj.status.phase)
      return done(s)?.startsWith('done') ? 'done' : undefined
    }, { quietMs: 1_000, pollMs: (elapsed) => (elapsed < 1_000 ? 500 : 2_000), log: (m) => messages.push(m) })
    await vi.advanceTimersByTimeAsync(10_000)
    expect(await answer).toBe('done')
    expect(log.watches).toBe(1)
    expect(log.gets).toEqual([40, 540, 1_040, 3_040])
    expect(seen).toEqual(['Pending', 'error the API server did not answer in time', 'Pending', 'Succeeded'])
    expect(messages).toEqual(['kubectl get pod p --watch ended with exit 1 (Error from server (Forbidden): pods "p" is forbidden: cannot watch): polling instead'])
  })

  it('a decide that throws ends the wait with its error and stops the watch', async () => {
    const { client, log } = scripted([{ events: [[0, phase('Pending')], [200, phase('Failed')]], endAfterMs: 20_000, exitCode: 0 }], () => phase('Pending'))
    const answer = observeUntil(client, ['pod', 'p'], (s: Seen<{ status: { phase: string } }>) => {
      if (s.obj?.status.phase === 'Failed') throw new Error('it failed')
      return undefined
    }, { quietMs: 1_000, pollMs: 500 })
    const caught = answer.catch((e: Error) => e.message)
    await vi.advanceTimersByTimeAsync(1_000)
    expect(await caught).toBe('it failed')
    expect(log.stopped).toBe(1)
  })

  it('the caller\'s signal stops the watch and the wait', async () => {
    const { client, log } = scripted([{ events: [[0, phase('Pending')]], endAfterMs: 20_000, exitCode: 0 }], () => phase('Pending'))
    const ac = new AbortController()
    const caught = observeUntil(client, ['pod', 'p'], done, { quietMs: 1_000, pollMs: 500, signal: ac.signal }).catch((e: Error) => e.name)
    await vi.advanceTimersByTimeAsync(300)
    ac.abort()
    await vi.advanceTimersByTimeAsync(10)
    expect(await caught).toBe('AbortError')
    expect(log.stopped).toBe(1)
  })
})
