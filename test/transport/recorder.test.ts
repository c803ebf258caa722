import { describe, expect, it } from 'vitest'
import { RecordingTransport } from '../../src/transport/recorder.js'
import type { ExecOptions, ExecResult, NodeTarget, Transport } from '../../src/transport/types.js'
import type { RemoteCommand } from '../../src/transport/quote.js'

/** A transport that only logs what reached it, to prove which calls the recorder lets through. */
class Spy implements Transport {
  calls: string[] = []
  async read(node: NodeTarget, cmd: RemoteCommand, _o?: ExecOptions): Promise<ExecResult> {
    this.calls.push(`read ${node.node} ${JSON.stringify(cmd)}`)
    return { stdout: 'real', stderr: '', exitCode: 0, retries: 0, durationMs: 1 }
  }
  async mutate(node: NodeTarget, why: string): Promise<ExecResult> {
    this.calls.push(`mutate ${node.node} ${why}`)
    return { stdout: '', stderr: '', exitCode: 0, retries: 0, durationMs: 1 }
  }
  async close() {
    this.calls.push('close')
  }
}

describe('transport/recorder (dry-run)', () => {
  it('runs reads for real and records mutations in order, quoted as they would run', async () => {
    const spy = new Spy()
    const rec = new RecordingTransport(spy)
    const n1 = { cluster: 'prod', node: 'cp-1', host: '10.0.0.1' }
    const n2 = { node: 'w-1', host: '10.0.0.2' }
    expect((await rec.read(n1, ['k3s', '--version'])).stdout).toBe('real')
    await rec.mutate(n1, 'stop k3s', ['systemctl', 'stop', 'k3s'])
    await rec.mutate(n2, 'write config', ['sh', '-c', "echo 'a b' > /etc/x"])
    await rec.mutate(n1, 'script', { script: 'echo hi' })
    await rec.close()
    expect(spy.calls).toEqual(['read cp-1 ["k3s","--version"]', 'close'])
    expect(rec.recorded).toEqual([
      { cluster: 'prod', node: 'cp-1', why: 'stop k3s', command: 'systemctl stop k3s' },
      { node: 'w-1', why: 'write config', command: `sh -c 'echo '\\''a b'\\'' > /etc/x'` },
      { cluster: 'prod', node: 'cp-1', why: 'script', command: 'echo hi' },
    ])
  })
})
