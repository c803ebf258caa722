import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { apiVipGate } from '../../src/gates/checks/api-vip.js'
import { dnsGate } from '../../src/gates/checks/dns.js'
import { describeProbe, runProbePod } from '../../src/gates/read/probe-pod.js'
import type { GateContext } from '../../src/gates/types.js'
import { KubectlClient } from '../../src/transport/kubectl/client.js'
import type { Transport } from '../../src/transport/types.js'
import { KUBECTL } from '../lab/helpers.js'

/**
 * A probe pod whose create the real kubectl could not send: no pod was made, so none is deleted and none is reported
 * left behind. (The lab's gate tests run probe pods that are created, run and deleted: lab-check.e2e.test.ts.)
 */
const dir = mkdtempSync(join(tmpdir(), 'kupgrade-probe-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const kubeconfig = (name: string, context: string) => {
  const file = join(dir, name)
  writeFileSync(file, `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: ${context}, context: {cluster: c, user: u}}]\ncurrent-context: ${context}\n`)
  return file
}

/** The real kubectl, every call recorded. */
function context(file: string) {
  const client = new KubectlClient({ cluster: 'prod', binary: KUBECTL, kubeconfig: file, context: 'prod', cacheDir: join(dir, 'cache'), requestTimeout: '2s', backoffBaseMs: 1, backoffCapMs: 2, env: { PATH: process.env.PATH, HOME: dir } })
  const calls: string[] = []
  const kubectl = new Proxy(client, {
    get: (target, key, receiver) => {
      const v = Reflect.get(target, key, receiver)
      return typeof v === 'function' ? (...args: unknown[]) => (calls.push(`${String(key)} ${JSON.stringify(args[0])}`), v.apply(target, args)) : v
    },
  })
  return { ctx: { cluster: 'prod', distribution: 'k3s', scope: 'cluster', nodes: [], ssh: {} as Transport, kubectl, now: () => new Date() } as GateContext, calls }
}

const probe = (ctx: GateContext) => runProbePod(ctx, { purpose: 'dns', image: 'busybox:1.36', script: 'true', timeoutMs: 10_000 })

describe('a probe pod the real kubectl could not create', () => {
  it('no such context, or nothing listening at the API address: no pod, no delete sent, nothing said left behind', async () => {
    for (const [file, said] of [[kubeconfig('other.kubeconfig', 'other'), /context "prod" does not exist/], [kubeconfig('refused.kubeconfig', 'prod'), /refused/]] as const) {
      const { ctx, calls } = context(file)
      const o = await probe(ctx)
      expect(o.problem).toMatch(/^could not create the probe pod: /)
      expect(o.problem).toMatch(said)
      expect(calls.map((c) => c.split(' ')[1])).toEqual(['["create","-f","-","-o","name"]'])
      expect(o.deleted).toBe(true)
      expect(describeProbe(o)).not.toContain('NOT deleted')
    }
  })

  it('the gates say why once: the create error is not repeated in an observation, and the Service read says what kubectl printed', async () => {
    const { ctx } = context(kubeconfig('other-gates.kubeconfig', 'other'))
    const results = [
      await apiVipGate.check(ctx, { timeout: '2s', from: ['pod'], probeImage: 'busybox:1.36', podTimeout: '10s' }),
      await dnsGate.check(ctx, { probeImage: 'busybox:1.36', podTimeout: '10s' }),
    ]
    for (const r of results) {
      expect(r.status).toBe('unknown')
      const pod = r.evidence.find((e) => e.source.startsWith('pod '))!
      expect(pod.observed).toMatch(/^could not create the probe pod: .*context "prod" does not exist/)
      expect(`${pod.source}: ${pod.observed}`.split('could not create the probe pod').length - 1).toBe(1)
    }
    expect(results[0]!.evidence.find((e) => e.source.startsWith('kubectl get service'))?.observed).toMatch(/context "prod" does not exist/)
  })
})
