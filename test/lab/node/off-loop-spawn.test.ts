import { existsSync, readFileSync } from 'node:fs'
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { Spawner, spawnOffLoop, type LabProcess } from '../../../src/lab/node/off-loop-spawn.js'

// SHLVL: bash on a socketpair stdin would otherwise take itself for an rshd session and read ~/.bashrc.
const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', SHLVL: '1' }

function run(script: string): LabProcess {
  return spawnOffLoop({ file: '/bin/bash', args: ['-c', script], cwd: '/', env })
}

function closed(p: LabProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => p.on('close', (code, signal) => resolve({ code, signal })))
}

function collect(s: NodeJS.ReadableStream): () => string {
  let text = ''
  s.on('data', (d: Buffer) => (text += d.toString()))
  return () => text
}

describe('spawnOffLoop: node commands start in the spawner process, not on the event loop that serves the API', () => {
  it('returns before the fork: no pid yet on return, the pid arrives with spawn', async () => {
    const p = run('exit 0')
    // Listening for close first: when this loop is busy, spawned, exit and close arrive in one read of the channel and
    // are all emitted before the await below resumes.
    const ended = closed(p)
    // A spawn on this thread (child_process.spawn) has its pid when it returns; the spawner's arrives as a message.
    expect(p.pid).toBeUndefined()
    await new Promise<void>((resolve) => p.once('spawn', resolve))
    expect(p.pid).toBeGreaterThan(0)
    expect(await ended).toEqual({ code: 0, signal: null })
  })

  it('relays stdin, stdout, stderr and the exit code, with exit before close as child_process', async () => {
    const p = run('read line; echo "out:$line"; echo "err:$line" >&2; exit 7')
    const out = collect(p.stdout)
    const err = collect(p.stderr)
    const order: string[] = []
    p.on('exit', () => order.push('exit'))
    p.on('close', () => order.push('close'))
    p.stdin.end('hello\n')
    expect(await closed(p)).toEqual({ code: 7, signal: null })
    expect(out()).toBe('out:hello\n')
    expect(err()).toBe('err:hello\n')
    expect(order).toEqual(['exit', 'close'])
    expect(p.exitCode).toBe(7)
  })

  it('closes after output nobody reads, as child_process drains unread stdio', async () => {
    const p = run('head -c 200000 /dev/zero; echo done >&2')
    const err = collect(p.stderr)
    p.stdin.end()
    expect(await closed(p)).toEqual({ code: 0, signal: null })
    expect(err()).toBe('done\n')
  })

  it('closes after its output was piped to a destination that went away (a dropped SSH channel)', async () => {
    const p = run('read x; echo late; echo late >&2')
    const sink = new PassThrough()
    p.stdout.pipe(sink, { end: false })
    p.stderr.pipe(sink, { end: false })
    sink.resume()
    sink.destroy()
    await new Promise((r) => setImmediate(r))
    p.stdin.end('go\n')
    expect(await closed(p)).toEqual({ code: 0, signal: null })
  })

  it('kills the whole process group, a grandchild included', async () => {
    const p = run('sleep 30 & echo $!; wait')
    const out = collect(p.stdout)
    p.stdin.end()
    while (!out().includes('\n')) await new Promise((r) => setTimeout(r, 10))
    const grandchild = Number(out().trim())
    p.killGroup('SIGTERM')
    expect(await closed(p)).toEqual({ code: null, signal: 'SIGTERM' })
    // Gone, or a zombie waiting for its reaper: either way the signal reached it.
    const running = () => existsSync(`/proc/${grandchild}`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${grandchild}/stat`, 'utf8'))
    for (let i = 0; i < 200 && running(); i++) await new Promise((r) => setTimeout(r, 10))
    expect(running()).toBe(false)
  })

  it('a program that does not exist is an error, then close, as child_process reports ENOENT', async () => {
    const p = spawnOffLoop({ file: '/nonexistent/lab-binary', args: [], cwd: '/', env })
    const errors: string[] = []
    p.on('error', (e) => errors.push(e.message))
    await closed(p)
    expect(errors.join()).toMatch(/ENOENT/)
  })

  it('keeps many commands apart: each gets its own output and code', async () => {
    const ps = Array.from({ length: 40 }, (_, i) => ({ i, p: run(`echo ${i}; exit ${i % 5}`) }))
    const results = await Promise.all(
      ps.map(async ({ i, p }) => {
        const out = collect(p.stdout)
        p.stdin.end()
        const { code } = await closed(p)
        return { i, code, out: out() }
      }),
    )
    for (const r of results) expect(r).toEqual({ i: r.i, code: r.i % 5, out: `${r.i}\n` })
  })
})

describe('spawnOffLoop: a lower priority for a bench of many nodes', () => {
  // Where the kernel schedules by session (autogroups), a command's session carries the priority, not only `nice`.
  it.skipIf(!existsSync('/proc/self/autogroup'))('sets the niceness of the command\'s own session (autogroup)', async () => {
    const p = spawnOffLoop({ file: '/bin/bash', args: ['-c', 'read x; cat /proc/self/autogroup'], cwd: '/', env, niceness: 7 })
    const out = collect(p.stdout)
    await new Promise<void>((resolve) => p.once('spawn', resolve))
    p.stdin.end('go\n')
    expect(await closed(p)).toEqual({ code: 0, signal: null })
    expect(out()).toMatch(/^\/autogroup-\d+ nice 7\n$/)
  })

  it('leaves the session alone without one', async () => {
    const p = run('read x; cat /proc/self/autogroup 2>/dev/null || echo none')
    const out = collect(p.stdout)
    await new Promise<void>((resolve) => p.once('spawn', resolve))
    p.stdin.end('go\n')
    await closed(p)
    expect(out()).not.toMatch(/nice [1-9]/)
  })
})

describe('the spawner admits node commands a few at a time, in order', () => {
  it('a command beyond the slots waits for one to end, then starts', async () => {
    const s = new Spawner({ slots: 1, holdMs: 60_000 })
    const first = s.spawn({ file: '/bin/bash', args: ['-c', 'echo started; read line'], cwd: '/', env, admit: true })
    const out = collect(first.stdout)
    const second = s.spawn({ file: '/bin/bash', args: ['-c', 'echo second'], cwd: '/', env, admit: true })
    const secondOut = collect(second.stdout)
    // Listening for both closes now: once the first ends, the second starts at once and, on a busy host, all of its
    // events can arrive in the same read of the channel as the first's close, emitted before an await resumes.
    const firstClosed = closed(first)
    const secondClosed = closed(second)
    second.stdin.end()
    while (!out().includes('started')) await new Promise((r) => setTimeout(r, 10))
    // The first is running and holds the only slot: the second has not been started.
    expect(second.pid).toBeUndefined()
    expect(secondOut()).toBe('')
    first.stdin.end('go\n')
    expect(await firstClosed).toEqual({ code: 0, signal: null })
    expect(await secondClosed).toEqual({ code: 0, signal: null })
    expect(second.pid).toBeGreaterThan(0)
    expect(secondOut()).toBe('second\n')
  })

  it('a long command gives its slot up after the hold and keeps running', async () => {
    const s = new Spawner({ slots: 1, holdMs: 200 })
    const long = s.spawn({ file: '/bin/bash', args: ['-c', 'read line; echo long'], cwd: '/', env, admit: true })
    const longOut = collect(long.stdout)
    const short = s.spawn({ file: '/bin/bash', args: ['-c', 'echo short'], cwd: '/', env, admit: true })
    short.stdin.end()
    // The short one runs to its end while the long one still waits for its input.
    expect(await closed(short)).toEqual({ code: 0, signal: null })
    expect(long.exitCode).toBeNull()
    long.stdin.end('x\n')
    expect(await closed(long)).toEqual({ code: 0, signal: null })
    expect(longOut()).toBe('long\n')
  })

  it('a command not sent through admission starts at once, the slots taken or not', async () => {
    const s = new Spawner({ slots: 1, holdMs: 60_000 })
    const first = s.spawn({ file: '/bin/bash', args: ['-c', 'read line'], cwd: '/', env, admit: true })
    await new Promise<void>((resolve) => first.once('spawn', resolve))
    const direct = s.spawn({ file: '/bin/bash', args: ['-c', 'echo direct'], cwd: '/', env })
    const out = collect(direct.stdout)
    direct.stdin.end()
    expect(await closed(direct)).toEqual({ code: 0, signal: null })
    expect(out()).toBe('direct\n')
    expect(first.exitCode).toBeNull()
    first.stdin.end('\n')
    await closed(first)
  })

  it('a command killed while it waits never runs, and ends with the signal', async () => {
    const s = new Spawner({ slots: 1, holdMs: 60_000 })
    const first = s.spawn({ file: '/bin/bash', args: ['-c', 'read line'], cwd: '/', env, admit: true })
    const marker = `/tmp/kupgrade-spawner-test-${process.pid}`
    const queued = s.spawn({ file: '/bin/bash', args: ['-c', `touch ${marker}`], cwd: '/', env, admit: true })
    queued.stdin.end()
    queued.killGroup('SIGTERM')
    expect(await closed(queued)).toEqual({ code: null, signal: 'SIGTERM' })
    first.stdin.end('\n')
    await closed(first)
    expect(existsSync(marker)).toBe(false)
  })
})
