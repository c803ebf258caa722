import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { killTree } from '../../../src/lab/node/exec.js'
import { sshExec, startNode, type TestNode } from './helpers.js'

/**
 * Where node commands run, as the scheduler sees them (src/lab/node/node-process.ts). Each used to start in a session
 * of its own, forked by the lab's main thread: Linux shares the CPU between sessions first, so a 50-node gate's ~100
 * commands left the lab's apiserver a hundredth of the machine (kubectl: "TLS handshake timeout", a lost run lock),
 * and every fork blocked the apiserver's thread until the child exec'd. Now the lab's spawner process forks them,
 * all in its one session, each in a process group of its own (for killTree) at nice 10.
 * Loopback 127.0.127.0/24.
 */
const stat = (text: string) => {
  const m = /^(\d+) \(.*\) (.*)$/.exec(text.trim())
  if (!m) throw new Error(`not a /proc stat line: ${text}`)
  const f = m[2]!.split(' ') // from field 3 (state) on
  return { pid: Number(m[1]), state: f[0], ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]), nice: Number(f[16]) }
}
const own = stat(readFileSync('/proc/self/stat', 'utf8'))

describe('node commands are forked by the lab spawner, in one session apart from the lab', () => {
  let a: TestNode
  let b: TestNode
  beforeAll(async () => {
    a = await startNode({ address: '127.0.127.1', name: 'w-1', role: 'worker' })
    b = await startNode({ address: '127.0.127.2', name: 'w-2', role: 'worker' })
  })
  afterAll(async () => {
    await a?.cleanup()
    await b?.cleanup()
  })

  it('each command leads its own process group, in the spawner session shared by the whole fleet, at nice 10', async () => {
    const read = async (t: TestNode) => {
      const r = await sshExec(t.node, 'read -r s < /proc/$$/stat; echo "$s"')
      expect(r.code).toBe(0)
      return stat(r.stdout)
    }
    const [x, y, z] = [await read(a), await read(b), await read(a)]
    for (const p of [x, y, z]) {
      expect(p.pgrp).toBe(p.pid) // a signal to -pid reaches the command's whole tree
      expect(p.ppid).not.toBe(process.pid) // not forked by the lab's own (apiserver, sshd) thread
      expect(p.session).not.toBe(own.session) // not in the lab's session ...
      expect(p.session).not.toBe(p.pid) // ... nor in a session of its own
      expect(p.nice).toBe(10)
    }
    expect(new Set([x.session, y.session, z.session]).size).toBe(1)
    expect(new Set([x.ppid, y.ppid, z.ppid]).size).toBe(1) // the one spawner
  })

  it('output, stdin and exit status pass through the spawner; killTree ends the command and its children', async () => {
    const r = await sshExec(a.node, 'cat; echo err >&2; exit 3', { stdin: 'through the spawner\n' })
    expect(r).toEqual({ stdout: 'through the spawner\n', stderr: 'err\n', code: 3 })

    const p = a.node.runContainer('sleep 30 & echo $!; wait', {})
    const child = await new Promise<number>((resolve) => p.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))))
    const closed = new Promise<[number | null, string | null]>((resolve) => p.on('close', (code, signal) => resolve([code, signal])))
    killTree(p, 'SIGTERM')
    expect(await closed).toEqual([null, 'SIGTERM'])
    // Gone, or a zombie its new parent has not reaped yet: either way it no longer runs.
    const state = () => { try { return stat(readFileSync(`/proc/${child}/stat`, 'utf8')).state === 'Z' ? 'gone' : 'running' } catch { return 'gone' } }
    await expect.poll(state).toBe('gone')
  })
})
