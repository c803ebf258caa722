import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CURL_ORDERED, curlTransfers } from '../../src/gates/read/curl.js'

/**
 * The real curl, run the way the gates' node scripts run it (through sh, several URLs in one process), against real
 * servers on loopback: a body without a final newline, a server that stalls mid-body, a port nobody listens on.
 * Each transfer must come back apart and in order, with curl's own message where it failed.
 */
let server: Server
let base = ''
let refused = ''
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/metrics') return void res.end('kubeproxy_sync_proxy_rules_last_timestamp_seconds 1.7e+09\nno_final_newline 1')
    if (req.url === '/healthz') return void res.writeHead(503).end('{"nodeEligible": true}')
    // Half a body, then nothing: curl gives up at --max-time.
    res.writeHead(200, { 'content-length': '100' }).write('partial line')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  // A port that was just free: connecting to it is refused.
  const gone = createServer()
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r))
  refused = `http://127.0.0.1:${(gone.address() as AddressInfo).port}`
  await new Promise((r) => gone.close(r))
})
afterAll(() => new Promise((r) => server.close(r)))

const curl = async (urls: string) => (await execa('sh', ['-c', `curl ${CURL_ORDERED} --max-time 1 ${urls}`], { reject: false })).stdout

describe('curlTransfers: several URLs in one real curl', () => {
  it('bodies, codes and failures come back per URL, in the order asked', async () => {
    const out = await curl(`${base}/metrics ${refused}/x ${base}/healthz`)
    expect(curlTransfers(out)).toEqual([
      { body: 'kubeproxy_sync_proxy_rules_last_timestamp_seconds 1.7e+09\nno_final_newline 1', code: '200' },
      { body: '', code: '000', exit: 7, error: expect.stringMatching(/^curl: \(7\) Failed to connect to 127\.0\.0\.1 port \d+ after \d+ ms: (Couldn't connect to server|Connection refused)$/) },
      { body: '{"nodeEligible": true}', code: '503' },
    ])
  })

  it('a transfer cut off mid-body keeps what arrived, and says why it ended', async () => {
    const [cut, after] = curlTransfers(await curl(`${base}/stall ${base}/healthz`))
    expect(cut).toEqual({ body: 'partial line', code: '200', exit: 28, error: expect.stringMatching(/^curl: \(28\) Operation timed out after \d+ milliseconds with 12 out of 100 bytes received$/) })
    expect(after).toEqual({ body: '{"nodeEligible": true}', code: '503' })
  })

  it('no curl at all is no transfer', async () => {
    const out = (await execa('sh', ['-c', `no-such-curl ${CURL_ORDERED} ${base}/metrics 2>&1`], { reject: false })).stdout
    expect(out).toMatch(/no-such-curl: not found/)
    expect(curlTransfers(out)).toEqual([])
  })
})
