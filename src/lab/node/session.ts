import { execEnv, spawnInNode } from './exec.js'
import type { NodeEntry } from './namespace.js'
import type { NodePaths } from './paths.js'
import type { SessionRequest } from './ssh-server.js'
import type { LabProcess } from './off-loop-spawn.js'

export interface SessionEnd {
  exitCode: number | null
  signal?: string
  durationMs: number
}

/**
 * Runs one SSH exec (or shell) as sshd would: the command in the node's namespace, its stdout/stderr/stdin wired to
 * the channel, client signals forwarded to the process group, a hang-up when the client goes away, and the exit
 * status (code or signal) sent back before the channel closes.
 */
export function runSession(paths: NodePaths, entry: NodeEntry, req: SessionRequest, onEnd: (child: LabProcess, end: SessionEnd) => void, niceness?: number): LabProcess {
  const started = Date.now()
  const child = spawnInNode(paths, entry, req.command ?? 'exec /bin/bash', execEnv(req.user, req.env), niceness)
  const ch = req.channel
  child.stdout.pipe(ch, { end: false })
  child.stderr.pipe(ch.stderr, { end: false })
  ch.pipe(child.stdin)
  child.stdin.on('error', () => undefined) // the command may exit without reading its stdin
  req.onSignal((name) => child.killGroup(`SIG${name}` as NodeJS.Signals))
  ch.on('close', () => child.killGroup('SIGHUP'))
  child.on('close', (code, signal) => {
    try {
      if (signal) ch.exit(signal.replace(/^SIG/, ''), false, '')
      else ch.exit(code ?? 255)
      ch.end()
    } catch {
      // the channel is already gone (client left, connection dropped)
    }
    onEnd(child, { exitCode: code, ...(signal ? { signal } : {}), durationMs: Date.now() - started })
  })
  child.on('error', (err) => ch.stderr.write(`kupgrade lab: cannot run command: ${err.message}\n`))
  return child
}
