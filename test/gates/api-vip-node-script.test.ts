import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { API_VIP_POD_SCRIPT, apiVipGate } from '../../src/gates/checks/api-vip.js'
import type { GateContext } from '../../src/gates/types.js'
import { createCA, issue } from '../../src/lab/pki/x509.js'
import type { KubectlClient } from '../../src/transport/kubectl/client.js'
import type { Transport } from '../../src/transport/types.js'

/**
 * The api-vip gate's node script run by the real `sh` (dash here, as on Debian nodes) and the real curl, both
 * addresses in one curl process. The API endpoint is a server on loopback; the `kubernetes` ClusterIP is routed (as
 * kube-proxy would, here with curl's own --connect-to) to a port nobody listens on.
 */
const dir = mkdtempSync(join(tmpdir(), 'kupgrade-apivip-'))
let server: Server
let endpoint = ''
let refused = 0
const curls: string[] = []
beforeAll(async () => {
  server = createServer((req, res) => void res.writeHead(req.url === '/readyz' ? 200 : 404).end('ok'))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const gone = createServer()
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r))
  refused = (gone.address() as AddressInfo).port
  await new Promise((r) => gone.close(r))
  // Counts its starts, then is the real curl.
  writeFileSync(join(dir, 'curl'), `#!/bin/sh\necho x >> ${dir}/starts\nexec /usr/bin/curl --connect-to 10.96.0.1:443:127.0.0.1:${refused} "$@"\n`)
  chmodSync(join(dir, 'curl'), 0o755)
})
afterAll(async () => {
  await new Promise((r) => server.close(r))
  rmSync(dir, { recursive: true, force: true })
})

const ssh = {
  read: async (_node: unknown, cmd: { script: string }) => {
    curls.push(cmd.script)
    const r = await execa('sh', ['-c', cmd.script], { cwd: dir, reject: false, env: { PATH: `${dir}:${process.env.PATH}` } })
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? null, retries: 0, durationMs: 1 }
  },
} as unknown as Transport
const kubectl = { json: async () => { throw new Error('no API here') } } as unknown as KubectlClient

describe('api-vip from the nodes, through the real sh and curl', () => {
  it('each address is its own evidence, from one curl per node: the HTTP answer, or curl’s exit code and message', async () => {
    const ctx = {
      cluster: 'prod', distribution: 'k3s', scope: 'cluster', apiEndpoint: endpoint, serviceCIDR: '10.96.0.0/12',
      nodes: [{ name: 'w-1', role: 'worker', target: { node: 'w-1', host: '10.0.1.1' } }], ssh, kubectl, now: () => new Date(),
    } as GateContext
    const r = await apiVipGate.check(ctx, { timeout: '2s', from: ['nodes'], probeImage: 'busybox:1.36', podTimeout: '10s' })
    expect(r.status).toBe('fail')
    // (The verdict lists what failed first.)
    expect(r.evidence.filter((e) => e.source.startsWith('node '))).toEqual([
      { source: 'node w-1: curl https://10.96.0.1:443/readyz', observed: expect.stringMatching(/^exit 7: curl: \(7\) Failed to connect to 127\.0\.0\.1 port \d+ after \d+ ms: (Couldn't connect to server|Connection refused)$/), status: 'fail' },
      { source: `node w-1: curl ${endpoint}/readyz`, observed: 'HTTP 200', status: 'pass' },
    ])
    expect(curls).toHaveLength(1)
    expect((await execa('cat', [join(dir, 'starts')])).stdout).toBe('x')
  })
})

describe('api-vip from a probe pod: its script through the real sh and curl', () => {
  // The Service's HTTPS, as the API server's (its certificate is not checked: -k).
  let tls: HttpsServer
  let tlsPort = 0
  beforeAll(async () => {
    const ca = createCA('api-vip-test-ca')
    const cert = issue(ca, { commonName: 'kube-apiserver', altNames: ['127.0.0.1'], usage: 'server', notAfter: new Date(Date.now() + 86400_000) })
    tls = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) => void res.end('ok'))
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r))
    tlsPort = (tls.address() as AddressInfo).port
  })
  afterAll(() => new Promise((r) => tls.close(r)))
  // The pod's environment as the kubelet sets it; the Service address routed as the nodes' is (see above).
  const pod = (env: Record<string, string>) => execa('sh', ['-c', API_VIP_POD_SCRIPT], { cwd: dir, reject: false, env: { PATH: `${dir}:${process.env.PATH}`, KUPGRADE_TIMEOUT: '2', KUBERNETES_SERVICE_PORT: '443', ...env } })

  it('both paths answering: exit 0, one line each', async () => {
    const r = await pod({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(tlsPort), KUPGRADE_API_ENDPOINT: endpoint })
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toBe(`probe https://127.0.0.1:${tlsPort}/readyz: HTTP 200\nprobe ${endpoint}/readyz: HTTP 200`)
  })

  it('the Service unreachable but the endpoint answering fails the pod, though curl’s own exit is the last transfer’s', async () => {
    const r = await pod({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUPGRADE_API_ENDPOINT: endpoint })
    expect(r.exitCode).toBe(1)
    expect(r.stdout.split('\n')).toEqual([
      expect.stringMatching(/^curl: \(7\) Failed to connect to 127\.0\.0\.1 port \d+ after \d+ ms: (Couldn't connect to server|Connection refused)$/),
      'probe https://10.96.0.1:443/readyz: HTTP 000',
      `probe ${endpoint}/readyz: HTTP 200`,
    ])
  })

  it('no endpoint in the plan: the Service alone', async () => {
    const r = await pod({ KUBERNETES_SERVICE_HOST: '10.96.0.1' })
    expect(r.exitCode).toBe(1)
    expect(r.stdout).toMatch(/\nprobe https:\/\/10\.96\.0\.1:443\/readyz: HTTP 000$/)
  })
})
