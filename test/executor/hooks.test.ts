import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runHook, type HookContext } from '../../src/executor/hooks.js'

/** An Alertmanager filter matcher (`name="v"`, `name!="v"`, `=~`, `!~`; regexes anchored, as Alertmanager's are). */
function matcher(text: string): (labels: Record<string, string>) => boolean {
  const m = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$/.exec(text)
  if (!m) throw new Error(`bad matcher ${text}`)
  const [, name, op, raw] = m as unknown as [string, string, string, string]
  const value = raw.replace(/\\(.)/g, '$1')
  const re = new RegExp(`^(?:${value})$`)
  return (labels) => {
    const v = labels[name] ?? ''
    return op === '=' ? v === value : op === '!=' ? v !== value : op === '=~' ? re.test(v) : !re.test(v)
  }
}

const ctx: HookContext = { runId: 'r-1', plan: '/p/plan.yaml', point: 'beforeNode', stage: 'prod', cluster: 'eu', node: 'w-1', step: 'prod/eu/hop1/w-1/hook/before-node/1', dryRun: false, journal: '/p/j.jsonl' }

/** Hooks: context on stdin and in KUPGRADE_*; exit code decides; the two shipped hooks against local HTTP servers. */
describe('hooks', () => {
  let dir: string
  let server: Server
  let url = ''
  const posts: { path: string; body: string }[] = []
  let firing = 0
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kupgrade-hooks-'))
    server = createServer((req, res) => {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => {
        if (req.url?.startsWith('/api/v2/alerts')) {
          // As kube-prometheus's Alertmanager: Watchdog always firing, beside the alert the test turns on.
          const alerts: { labels: Record<string, string>; status: { state: string } }[] = [
            { labels: { alertname: 'Watchdog', severity: 'none' }, status: { state: 'active' } },
            ...(firing-- > 0 ? [{ labels: { alertname: 'KubeNodeNotReady', instance: 'w-1' }, status: { state: 'active' } }] : []),
          ]
          const filters = new URL(req.url, 'http://x').searchParams.getAll('filter').map(matcher)
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(alerts.filter((a) => filters.every((f) => f(a.labels)))))
          return
        }
        posts.push({ path: req.url ?? '', body })
        res.writeHead(req.url === '/fail' ? 500 : 200).end('ok')
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    server?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('an executable gets the context as JSON on stdin and as KUPGRADE_* variables; its exit code decides', async () => {
    const script = join(dir, 'check.sh')
    writeFileSync(script, '#!/bin/bash\ncat > "$OUT.json"\nenv | grep ^KUPGRADE_ | sort > "$OUT.env"\necho checked "$KUPGRADE_NODE"\nexit "${EXIT:-0}"\n')
    chmodSync(script, 0o755)
    const out = join(dir, 'seen')
    const ok = await runHook('check.sh', dir, ctx, { env: { PATH: process.env.PATH, OUT: out } })
    expect(ok).toMatchObject({ ok: true, exitCode: 0, output: ['checked w-1'] })
    expect(JSON.parse(readFileSync(`${out}.json`, 'utf8'))).toEqual(ctx)
    expect(readFileSync(`${out}.env`, 'utf8')).toContain('KUPGRADE_POINT=beforeNode\n')
    expect(readFileSync(`${out}.env`, 'utf8')).toContain('KUPGRADE_CLUSTER=eu\n')
    const bad = await runHook('check.sh', dir, ctx, { env: { PATH: process.env.PATH, OUT: out, EXIT: '3' } })
    expect(bad).toMatchObject({ ok: false, exitCode: 3 })
    writeFileSync(join(dir, 'plain.sh'), '#!/bin/sh\nexit 0\n')
    expect((await runHook('plain.sh', dir, ctx, { env: {} })).output[0]).toMatch(/is not executable/)
  })

  it('hooks/notify.mjs (zx) posts the context to the webhook and fails the point when the webhook fails', async () => {
    const hook = resolve('hooks/notify.mjs')
    const r = await runHook(hook, dir, ctx, { env: { PATH: process.env.PATH, KUPGRADE_WEBHOOK_URL: `${url}/hook` } })
    expect(r.ok, r.output.join('\n')).toBe(true)
    const sent = JSON.parse(posts.find((p) => p.path === '/hook')!.body)
    expect(sent).toMatchObject({ ...ctx, text: 'kupgrade beforeNode: prod › eu › w-1 (run r-1)' })
    const failed = await runHook(hook, dir, ctx, { env: { PATH: process.env.PATH, KUPGRADE_WEBHOOK_URL: `${url}/fail` } })
    expect(failed.ok).toBe(false)
    expect(failed.output.join('\n')).toMatch(/HTTP 500/)
    // At onFailure the text says how the run ended, in the run's own words.
    const failure = { outcome: 'failed' as const, exitCode: 1, message: 'eu/w-1: step x failed: gate nodes-ready failed: w-1 NotReady; rolled back: w-1', step: 'x', error: 'gate nodes-ready failed: w-1 NotReady' }
    const told = await runHook(hook, dir, { ...ctx, point: 'onFailure', failure }, { env: { PATH: process.env.PATH, KUPGRADE_WEBHOOK_URL: `${url}/hook` } })
    expect(told.ok, told.output.join('\n')).toBe(true)
    expect(JSON.parse(posts.filter((p) => p.path === '/hook').at(-1)!.body)).toMatchObject({ failure, text: `kupgrade onFailure: prod › eu › w-1 (run r-1) — failed: ${failure.message}` })
    // At a node point within a hop, the versions it goes between.
    const hop = { index: 1, from: 'v1.29.6+k3s1', to: 'v1.30.4+k3s1' }
    expect((await runHook(hook, dir, { ...ctx, hop }, { env: { PATH: process.env.PATH, KUPGRADE_WEBHOOK_URL: `${url}/hook` } })).ok).toBe(true)
    expect(JSON.parse(posts.filter((p) => p.path === '/hook').at(-1)!.body).text).toBe('kupgrade beforeNode: prod › eu › w-1 v1.29.6+k3s1 → v1.30.4+k3s1 (run r-1)')
  }, 60_000)

  it('hooks/wait-no-firing-alerts.mjs waits until Alertmanager is quiet, and fails naming the alerts that keep firing', async () => {
    const hook = resolve('hooks/wait-no-firing-alerts.mjs')
    firing = 2
    const quiet = await runHook(hook, dir, ctx, { env: { PATH: process.env.PATH, ALERTMANAGER_URL: url, KUPGRADE_ALERT_INTERVAL: '0.1', KUPGRADE_ALERT_TIMEOUT: '20' } })
    expect(quiet.ok, quiet.output.join('\n')).toBe(true)
    expect(quiet.output.join('\n')).toMatch(/1 firing: KubeNodeNotReady[\s\S]*no firing alerts/)
    firing = 1000
    const loud = await runHook(hook, dir, ctx, { env: { PATH: process.env.PATH, ALERTMANAGER_URL: url, KUPGRADE_ALERT_INTERVAL: '0.1', KUPGRADE_ALERT_TIMEOUT: '0.5' } })
    expect(loud.ok).toBe(false)
    expect(loud.output.join('\n')).toMatch(/still firing after 1s: KubeNodeNotReady \(w-1\)$/)
    // Watchdog, firing all the time by design, counts only when asked to.
    firing = 0
    const all = await runHook(hook, dir, ctx, { env: { PATH: process.env.PATH, ALERTMANAGER_URL: url, KUPGRADE_ALERT_INTERVAL: '0.1', KUPGRADE_ALERT_TIMEOUT: '0.5', KUPGRADE_ALERT_IGNORE: '' } })
    expect(all.ok).toBe(false)
    expect(all.output.join('\n')).toMatch(/still firing after 1s: Watchdog$/)
    const filtered = await runHook(hook, dir, ctx, { env: { PATH: process.env.PATH, ALERTMANAGER_URL: url, KUPGRADE_ALERT_INTERVAL: '0.1', KUPGRADE_ALERT_TIMEOUT: '0.5', KUPGRADE_ALERT_IGNORE: '', KUPGRADE_ALERT_FILTER: 'severity!="none"' } })
    expect(filtered.ok, filtered.output.join('\n')).toBe(true)
  }, 60_000)
})
