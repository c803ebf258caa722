// The lab's process spawner: a small process of its own (off-loop-spawn.ts is the lab's side of its IPC channel).
//
// Why: `spawn` blocks its caller until the child has exec'd, and the fork before it costs in proportion to the
// caller's memory. Measured on a 2-core host: 7 ms per spawn from a 50 MB process, 23 ms from one holding 200 MB,
// CPU-bound (more threads did not help). A 50-node lab process holds far more, and 150 node commands at once stalled its
// API server's event loop for seconds, so lease renewals timed out against a lab that a real apiserver would have
// answered. Here forks are cheap and block nobody that serves a request; the children's stdio is relayed as messages.
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'

/** @typedef {import('node:child_process').ChildProcess} ChildProcess */

if (!process.send) throw new Error('spawner-process.mjs runs as a child of the lab with an IPC channel')
const send = (/** @type {object} */ m) => process.send?.(m)

/** @type {Map<number, ChildProcess>} */
const children = new Map()

/** @param {string} name */
function option(name) {
  const i = process.argv.indexOf(name)
  return i < 0 ? undefined : process.argv[i + 1]
}

/** @param {number} id @param {1 | 2} fd @param {import('node:stream').Readable | null} stream */
function relay(id, fd, stream) {
  stream?.on('data', (/** @type {Buffer} */ data) => send({ t: 'out', id, fd, data }))
}

/** @param {ChildProcess} child @param {NodeJS.Signals} signal */
function killGroup(child, signal) {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    // the group is already gone
  }
}

/**
 * A detached command leads a session of its own, and where the kernel groups scheduling by session (autogroups, the
 * default on desktop and many server kernels) a `nice` inside the session does not weigh against other sessions: the
 * session's own niceness does. It is a property of the group, so the command's later children share it.
 * @param {number} pid @param {number} niceness
 */
function lowerSessionPriority(pid, niceness) {
  try {
    writeFileSync(`/proc/${pid}/autogroup`, String(niceness))
  } catch {
    // no autogroups here (the kernel's option or a container's /proc): `nice` on the command is what counts
  }
}

/**
 * Admission (requests with `admit`: a lab of many nodes, LabOptions.nodeCommandNiceness): a lab host runs every node's
 * commands on its own few cores, where a fleet gives each node its own. Started all at once, a pre-flight's 250
 * commands (5 gates × 50 nodes) each set up a mount namespace and ran their openssl, grep and awk side by side; all of
 * them finished late and every gate missed its 30 s check timeout. Started a few at a time, in order, they finish in
 * time, as on a real fleet where no node waits for another (measured: the 50-node bench/apply.mjs run passes its
 * pre-gates and finishes). A command holds its place until it ends or for its first seconds; one that runs longer (a
 * wait loop, a pod's container) gives the place up and keeps running, so long commands never block the queue. A small
 * lab's commands start at once: their waits (a service's start delay) would hold places for nothing.
 */
const SLOTS = Number(option('--slots') ?? Math.max(4, 4 * availableParallelism()))
const SLOT_HOLD_MS = Number(option('--hold-ms') ?? 3000)
let busy = 0
/** @type {Array<{ id: number, m: any }>} */
const queue = []
/** @type {Map<number, { stdin: Buffer[], stdinEnded: boolean }>} */
const waiting = new Map()

function admit() {
  while (busy < SLOTS && queue.length > 0) {
    const { id, m } = /** @type {{ id: number, m: any }} */ (queue.shift())
    const held = waiting.get(id)
    if (!held) continue // killed while it waited
    waiting.delete(id)
    busy++
    let released = false
    const release = () => {
      if (released) return
      released = true
      busy--
      admit()
    }
    const timer = setTimeout(release, SLOT_HOLD_MS)
    const child = start(m)
    if (!child) {
      clearTimeout(timer)
      release()
      continue
    }
    child.on('close', () => {
      clearTimeout(timer)
      release()
    })
    for (const data of held.stdin) child.stdin?.write(data)
    if (held.stdinEnded) child.stdin?.end()
  }
}

/** @param {any} m @returns {ChildProcess | undefined} */
function start(m) {
  let child
  try {
    // Its own process group (detached), so a signal to the group reaches the command's whole tree.
    child = spawn(m.file, m.args, { cwd: m.cwd, env: m.env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
  } catch (err) {
    send({ t: 'error', id: m.id, message: err instanceof Error ? err.message : String(err) })
    send({ t: 'close', id: m.id, code: -2, signal: null })
    return undefined
  }
  children.set(m.id, child)
  if (m.niceness !== undefined && child.pid !== undefined) lowerSessionPriority(child.pid, m.niceness)
  child.stdin?.on('error', () => undefined) // the command may exit without reading its stdin
  relay(m.id, 1, child.stdout)
  relay(m.id, 2, child.stderr)
  child.on('spawn', () => send({ t: 'spawned', id: m.id, pid: child.pid }))
  child.on('error', (err) => send({ t: 'error', id: m.id, message: err.message }))
  child.on('exit', (code, signal) => send({ t: 'exit', id: m.id, code, signal }))
  child.on('close', (code, signal) => {
    children.delete(m.id)
    send({ t: 'close', id: m.id, code, signal })
  })
  return child
}

process.on('message', (/** @type {any} */ m) => {
  if (m.t === 'spawn' && !m.admit) {
    start(m)
    return
  }
  if (m.t === 'spawn') {
    waiting.set(m.id, { stdin: [], stdinEnded: false })
    queue.push({ id: m.id, m })
    admit()
    return
  }
  const held = waiting.get(m.id)
  if (held) {
    if (m.t === 'stdin') held.stdin.push(m.data)
    else if (m.t === 'stdin-end') held.stdinEnded = true
    else if (m.t === 'kill') {
      // Signalled before it started: it ends as a process killed at once would, and never runs.
      waiting.delete(m.id)
      send({ t: 'exit', id: m.id, code: null, signal: m.signal })
      send({ t: 'close', id: m.id, code: null, signal: m.signal })
    }
    return
  }
  const child = children.get(m.id)
  if (!child) return
  if (m.t === 'stdin') child.stdin?.write(m.data)
  else if (m.t === 'stdin-end') child.stdin?.end()
  else if (m.t === 'kill') killGroup(child, m.signal)
})

// The lab process is gone (it exited or was killed): its nodes' commands go with it, as a machine's processes do when
// it powers off, rather than running on unowned.
process.on('disconnect', () => {
  for (const child of children.values()) killGroup(child, 'SIGKILL')
  process.exit(0)
})
