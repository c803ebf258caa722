// @ts-check
/**
 * The lab's node-command spawner: one process, in a session of its own, that forks every node command of its lab
 * (node-process.ts says why). Its commands inherit its session, so Linux's scheduler (autogroups) treats the whole
 * simulated fleet as one session beside the lab's: the fleet cannot starve the lab's apiservers and sshds, nor the
 * kupgrade run under test, and the lab cannot starve the fleet. And `spawn` blocks the forking thread until the
 * child has exec'd (tens of ms, over 100 ms under load): here it blocks only this process, never the lab's servers.
 *
 * Messages in (IPC):  {op: 'spawn', id, file, args, cwd, env} · {op: 'stdin', id, data} · {op: 'stdin-end', id}
 * Messages out (IPC): {op: 'spawned', id, pid} · {op: 'out', id, fd: 1|2, data} · {op: 'error', id, message, code}
 *                     · {op: 'close', id, code, signal} (always last for an id; after every 'out' of it)
 * When the lab goes away (the IPC channel closes) it kills its commands' process groups and exits.
 *
 * Plain JavaScript with no imports but Node's, because it runs as its own process both from the build (dist/) and
 * from the sources under test (vitest), where no TypeScript loader is available to a child process.
 */
import { spawn } from 'node:child_process'

const port = {
  postMessage: (/** @type {object} */ m) => {
    if (process.connected) process.send?.(m, undefined, {}, () => undefined)
  },
}
/** @type {Map<number, import('node:child_process').ChildProcessWithoutNullStreams>} */
const children = new Map()

process.on('message', (/** @type {any} */ m) => {
  if (m.op === 'spawn') return start(m)
  const child = children.get(m.id)
  if (!child || child.stdin.destroyed) return
  if (m.op === 'stdin') child.stdin.write(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength))
  else if (m.op === 'stdin-end') child.stdin.end()
})

/** @param {{ id: number, file: string, args: string[], cwd: string, env: Record<string, string> }} m */
function start(m) {
  let closed = false
  const close = (/** @type {number | null} */ code, /** @type {string | null} */ signal) => {
    if (closed) return
    closed = true
    children.delete(m.id)
    port.postMessage({ op: 'close', id: m.id, code, signal })
  }
  /** @type {import('node:child_process').ChildProcessWithoutNullStreams} */
  let child
  try {
    // Not detached: the command stays in this session (see above); it makes its own process group (exec.ts).
    child = spawn(m.file, m.args, { cwd: m.cwd, env: m.env, stdio: ['pipe', 'pipe', 'pipe'] })
  } catch (err) {
    port.postMessage({ op: 'error', id: m.id, message: /** @type {Error} */ (err).message, code: /** @type {any} */ (err).code })
    return close(null, null)
  }
  children.set(m.id, child)
  if (child.pid !== undefined) port.postMessage({ op: 'spawned', id: m.id, pid: child.pid })
  child.stdout.on('data', (/** @type {Buffer} */ d) => port.postMessage({ op: 'out', id: m.id, fd: 1, data: d }))
  child.stderr.on('data', (/** @type {Buffer} */ d) => port.postMessage({ op: 'out', id: m.id, fd: 2, data: d }))
  child.stdin.on('error', () => undefined) // the command may exit without reading its stdin
  child.on('error', (err) => {
    port.postMessage({ op: 'error', id: m.id, message: err.message, code: /** @type {any} */ (err).code })
    if (child.pid === undefined) close(null, null) // it never ran: no 'close' of its own may follow
  })
  child.on('close', (code, signal) => close(code, signal))
}

process.on('disconnect', () => {
  for (const child of children.values()) {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  process.exit(0)
})
