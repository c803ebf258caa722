import type { Client, ClientChannel } from 'ssh2'
import { lineSplitter } from '../lines.js'
import type { OutputLine } from '../types.js'
import { raiseListenerLimit } from '../../util/signal.js'

/** The connection went away. `started` says whether the remote command may have begun, which decides retry safety. */
export class ConnectionLostError extends Error {
  constructor(readonly started: boolean, message: string) {
    super(message)
  }
}
export class CommandTimeoutError extends Error {}
export class CommandAbortedError extends Error {}
/** The server refused to open a channel (OpenSSH MaxSessions): nothing ran, so any command may be retried. */
export class ChannelOpenError extends Error {}

export interface RawResult {
  stdout: string
  stderr: string
  exitCode: number | null
  signal?: string
}

export interface RunOptions {
  node: string
  timeoutMs: number
  signal?: AbortSignal
  onOutput?: (line: OutputLine) => void
  stdin?: string | Buffer
}

/**
 * Runs one command on an open connection as its own channel, so many commands share one connection. Resolves with
 * the exit status whatever it is; rejects only when the outcome is unknown (connection lost, timeout, abort).
 */
export function runOnClient(client: Client, line: string, o: RunOptions): Promise<RawResult> {
  return new Promise<RawResult>((resolve, reject) => {
    let channel: ClientChannel | undefined
    let done = false
    const out: Buffer[] = []
    const err: Buffer[] = []
    let exit: { code: number | null; signal?: string } | undefined

    const finish = (e?: Error) => {
      if (done) return
      done = true
      clearTimeout(timer)
      o.signal?.removeEventListener('abort', onAbort)
      client.removeListener('close', onClientClose)
      if (e) {
        // Ask the remote side to stop what it was doing; OpenSSH honours signal requests since 7.9.
        try {
          channel?.signal('KILL')
          channel?.close()
        } catch {
          /* the connection may already be gone */
        }
        return reject(e)
      }
      resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), exitCode: exit!.code, ...(exit!.signal ? { signal: exit!.signal } : {}) })
    }
    const onClientClose = () => finish(new ConnectionLostError(channel !== undefined, 'connection lost'))
    const onAbort = () => finish(new CommandAbortedError('cancelled'))
    const timer = setTimeout(() => finish(new CommandTimeoutError(`timed out after ${o.timeoutMs} ms`)), o.timeoutMs)
    if (o.signal?.aborted) return onAbort()
    if (o.signal) raiseListenerLimit(o.signal)
    o.signal?.addEventListener('abort', onAbort, { once: true })
    client.once('close', onClientClose)

    try {
      client.exec(line, (e, ch) => {
        if (done) {
          ch?.close()
          return
        }
        if (e) {
          // "Channel open failure" means the server declined before running anything; anything else (no response,
          // not connected) happened with the exec request possibly sent, so its outcome is unknown.
          if (/open failure|open failed/i.test(e.message)) return finish(new ChannelOpenError(e.message))
          return finish(new ConnectionLostError(/not connected/i.test(e.message) ? false : true, e.message))
        }
        channel = ch
        const so = lineSplitter((l) => o.onOutput?.({ node: o.node, stream: 'stdout', line: l }))
        const se = lineSplitter((l) => o.onOutput?.({ node: o.node, stream: 'stderr', line: l }))
        ch.on('data', (d: Buffer) => {
          out.push(d)
          if (o.onOutput) so.push(d)
        })
        ch.stderr.on('data', (d: Buffer) => {
          err.push(d)
          if (o.onOutput) se.push(d)
        })
        ch.on('exit', (code: number | null, signal?: string) => {
          exit = { code: typeof code === 'number' ? code : null, ...(signal ? { signal } : {}) }
        })
        ch.on('close', () => {
          so.end()
          se.end()
          // A channel that closes without an exit status was cut off (sshd or the node went away mid-command).
          if (!exit) return finish(new ConnectionLostError(true, 'channel closed without an exit status'))
          finish()
        })
        if (o.stdin !== undefined) ch.end(o.stdin)
        else ch.end()
      })
    } catch (e) {
      finish(new ConnectionLostError(false, (e as Error).message))
    }
  })
}
