import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'
import { apiVipGate } from '../../src/gates/checks/api-vip.js'
import type { GateContext } from '../../src/gates/types.js'
import type { KubectlClient } from '../../src/transport/kubectl/client.js'
import type { Transport } from '../../src/transport/types.js'

/**
 * The api-vip gate's node script run by the real `sh` (dash here, as on Debian nodes), with a `curl` that answers as
 * curl does: the HTTP code from -w on stdout, an error on stderr. What a node prints becomes one line per address.
 */
const dir = mkdtempSync(join(tmpdir(), 'kupgrade-apivip-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
// A file a glob in curl's message would expand to, were the words not kept from globbing.
writeFileSync(join(dir, 'not-a-word'), '')
writeFileSync(join(dir, 'curl'), [
  '#!/bin/sh',
  'for a; do u=$a; done',
  'case $u in',
  // Two lines, a tab and a `*`: all must reach the evidence as one line, as written.
  "  *10.96.0.1*) printf 'curl: (7) Failed to connect to 10.96.0.1 port 443:\\tConnection refused\\nsecond line * here\\n' >&2; printf 000; exit 7 ;;",
  '  *) printf 200 ;;',
  'esac',
].join('\n'))
chmodSync(join(dir, 'curl'), 0o755)

const ssh = {
  read: async (_node: unknown, cmd: { script: string }) => {
    const r = await execa('sh', ['-c', cmd.script], { cwd: dir, reject: false, env: { PATH: `${dir}:${process.env.PATH}` } })
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? null, retries: 0, durationMs: 1 }
  },
} as unknown as Transport
const kubectl = { json: async () => { throw new Error('no API here') } } as unknown as KubectlClient

describe('api-vip from the nodes, through the real sh', () => {
  it('each address is one line of evidence: the HTTP answer, or curl’s exit code and its whole message on one line', async () => {
    const ctx = {
      cluster: 'prod', distribution: 'k3s', scope: 'cluster', apiEndpoint: 'https://10.0.0.1:6443', serviceCIDR: '10.96.0.0/12',
      nodes: [{ name: 'w-1', role: 'worker', target: { node: 'w-1', host: '10.0.1.1' } }], ssh, kubectl, now: () => new Date(),
    } as GateContext
    const r = await apiVipGate.check(ctx, { timeout: '2s', from: ['nodes'], probeImage: 'busybox:1.36', podTimeout: '10s' })
    expect(r.status).toBe('fail')
    expect(r.evidence.filter((e) => e.source.startsWith('node '))).toEqual([
      { source: 'node w-1: curl https://10.96.0.1:443/readyz', observed: 'exit 7: curl: (7) Failed to connect to 10.96.0.1 port 443: Connection refused second line * here' },
      { source: 'node w-1: curl https://10.0.0.1:6443/readyz', observed: 'HTTP 200' },
    ])
  })
})
