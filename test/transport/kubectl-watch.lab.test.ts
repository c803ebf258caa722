import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Node } from 'kubernetes-types/core/v1.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Lab } from '../../src/lab/lab.js'
import { normalizeTopology } from '../../src/lab/topology.js'
import { KubectlClient } from '../../src/transport/kubectl/client.js'
import { observeUntil } from '../../src/transport/kubectl/observe.js'
import { topology } from '../executor/helpers.js'
import { KUBECTL } from '../lab/helpers.js'

/**
 * observeUntil with the real kubectl against the lab's API server: one `kubectl get --watch` follows a Node through a
 * change another client makes, and is stopped as soon as the change decides the wait — also when the kubectl runs
 * behind a wrapper script that does not exec it (the watch would otherwise hold the call until its request timeout).
 */
describe('kubectl watch (real kubectl, lab API server)', () => {
  let lab: Lab
  let dir: string
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kupgrade-watch-'))
    lab = new Lab({ topology: normalizeTopology(topology('127.0.147', [{ name: 'c', distribution: 'k3s', controlPlanes: 1, workers: 1 }])), dir, nodes: false })
    await lab.start()
    // Logs every call, then runs kubectl as a child (no exec): the shape of a user's logging or auditing wrapper.
    writeFileSync(join(dir, 'wrapper.sh'), `#!/bin/bash\nprintf '%s\\n' "$*" >> ${JSON.stringify(join(dir, 'calls'))}\n${JSON.stringify(KUBECTL)} "$@"\n`)
    chmodSync(join(dir, 'wrapper.sh'), 0o755)
  }, 60_000)
  afterAll(async () => {
    await lab?.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  // A request timeout far beyond the test's own: a watch that is not stopped would outlive the test.
  const client = (binary: string) => new KubectlClient({ cluster: 'c', binary, kubeconfig: join(dir, 'kubeconfig'), context: 'c', cacheDir: join(dir, 'cache'), requestTimeout: '5m' })

  for (const via of ['kubectl', 'a wrapper that does not exec kubectl'] as const) {
    it(`one watch sees a cordon made by another client, and is stopped at once (${via})`, async () => {
      const binary = via === 'kubectl' ? KUBECTL : join(dir, 'wrapper.sh')
      const k = client(binary)
      const node = (await k.nodes()).items.map((n) => n.metadata!.name!).find((n) => n.includes('agent') || n.includes('worker')) ?? (await k.nodes()).items[1]!.metadata!.name!
      writeFileSync(join(dir, 'calls'), '')
      const seen: boolean[] = []
      const waiting = observeUntil<Node, string>(k, ['node', node], (s) => {
        if (s.error) throw s.error
        seen.push(s.obj.spec?.unschedulable === true)
        return s.obj.spec?.unschedulable ? `cordoned at resourceVersion ${s.obj.metadata?.resourceVersion}` : undefined
      }, { quietMs: 60_000, pollMs: 60_000 })
      // The watch has printed the Node as it is before the cordon is made.
      while (seen.length === 0) await new Promise((r) => setTimeout(r, 50))
      await client(KUBECTL).run(['cordon', node])
      expect(await waiting).toMatch(/^cordoned at resourceVersion \d+$/)
      expect(seen[0]).toBe(false)
      expect(seen.at(-1)).toBe(true)
      if (via !== 'kubectl') expect(readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n').map((l) => l.replace(/^.* get /, 'get '))).toEqual([`get node ${node} --watch -o json`])
      await client(KUBECTL).run(['uncordon', node])
    }, 30_000)
  }

  it('a watch on a Node that does not exist ends with NotFound, and the wait polls: the error reaches decide', async () => {
    const errors: string[] = []
    const answer = await observeUntil<Node, string>(client(KUBECTL), ['node', 'no-such-node'], (s) => {
      if (s.error) errors.push(s.error.message)
      return errors.length >= 2 ? 'gave up' : undefined
    }, { quietMs: 1_000, pollMs: 100 })
    expect(answer).toBe('gave up')
    expect(errors[0]).toMatch(/NotFound|not found/)
  }, 30_000)
})
