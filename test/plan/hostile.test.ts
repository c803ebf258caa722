import { execFileSync } from 'node:child_process'
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { formatProblem, PlanError } from '../../src/errors.js'
import { loadPlan, parsePlan } from '../../src/plan/load.js'
import { compareKubeVersions, parseKubeVersion } from '../../src/plan/versions.js'
import { buildExecutionPlan } from '../../src/planner/build.js'
import { runCli } from '../helpers/run-cli.js'

/**
 * Issue 8, "no plan, file or value can crash, hang, exhaust or fool kupgrade": the cases that need more than a corpus
 * fixture (sizes, files that are not files, output formats). Each of these crashed, hung or lied before.
 */
const dir = mkdtempSync(join(tmpdir(), 'kupgrade-hostile-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const plan = (o: { nodes?: string; extra?: string; meta?: string; target?: string } = {}) => `apiVersion: kupgrade.dev/v1alpha1
kind: UpgradePlan
metadata:
  name: h
${o.meta ?? ''}spec:
  target:
    kubernetes: ${o.target ?? 'v1.30.4'}
  stages:
    - name: s
      clusters: [c]
  clusters:
    - name: c
      distribution: k3s
      from: v1.29.2
      apiEndpoint: https://10.0.0.1:6443
      nodes:
${o.nodes ?? `        - { name: cp-1, host: 10.0.0.11, role: control-plane }
        - { name: cp-2, host: 10.0.0.12, role: control-plane }
        - { name: cp-3, host: 10.0.0.13, role: control-plane }`}
${o.extra ?? ''}`

const errorsOf = (source: string) => parsePlan('h.yaml', source).problems.filter((p) => p.severity !== 'warning').map((p) => p.message)

describe('never crash: versions semver cannot order', () => {
  it.each(['v1.30.9007199254740992', 'v1.30.12345678901234567890', 'v1.30.4-rc.01', 'v1.30.4-rc..1', 'v01.30.4'])('%s is not a version, for plans and for facts alike', (v) => {
    expect(parseKubeVersion(v)).toBeUndefined()
    expect(() => parsePlan('h.yaml', plan({ target: v }))).not.toThrow()
    expect(errorsOf(plan({ target: v })).join('\n')).toMatch(/spec\.target\.kubernetes: .* is not a Kubernetes version/)
  })
  it('versions that parse can always be compared', () => {
    const a = parseKubeVersion('v1.30.999999999999999')!
    expect(compareKubeVersions(a, parseKubeVersion('v1.30.4')!)).toBe(1)
  })
})

describe('never crash: nesting', () => {
  // 2,550 nested block mappings under metadata.labels overflowed the positional parser's stack while locating the
  // labels problem found on the fast path: a RangeError out of parsePlan.
  it.each([
    ['block mappings', (d: number) => Array.from({ length: d }, (_, i) => `${' '.repeat(i + 4)}k${i}:\n`).join('')],
    ['block sequences', (d: number) => Array.from({ length: d }, (_, i) => `${' '.repeat(i + 4)}-\n`).join('')],
    ['compact sequences', (d: number) => `    ${'- '.repeat(d)}x\n`],
  ])('%s nested 2,550 deep are one located problem', (_what, nest) => {
    const source = plan({ meta: `  labels:\n${nest(2550)}` })
    const { problems } = parsePlan('h.yaml', source)
    expect(problems).toHaveLength(1)
    expect(problems[0]!.message).toMatch(/^YAML syntax error: the document is nested too deeply to read/)
    expect(problems[0]!.line).toBeGreaterThan(5)
  })
  it('a plan with a long literal block is not mistaken for deep nesting', () => {
    const text = Array.from({ length: 200 }, (_, i) => `${' '.repeat(6 + i)}line ${i}`).join('\n')
    expect(errorsOf(plan({ meta: `  description: |\n${text}\n` }))).toEqual([])
  })
})

describe('never crash: size', () => {
  it('a 10,000-node cluster with per-node gates and hooks validates and plans (spreading its steps into push overflowed)', () => {
    const nodes = Array.from({ length: 10_000 }, (_, i) => `        - { name: n${i}, host: 10.${i >> 16}.${(i >> 8) & 255}.${i & 255}, role: ${i < 3 ? 'control-plane' : 'worker'} }`).join('\n')
    const source = plan({ nodes, extra: '  gates:\n    beforeNode: [disk-space]\n    afterNode: [kube-proxy-sync, iptables-backend]\n  hooks:\n    beforeNode: [a, b, c]\n    afterNode: [a, b, c]\n' })
    const { plan: doc, problems } = parsePlan('big.yaml', source)
    expect(problems.filter((p) => p.severity !== 'warning')).toEqual([])
    const steps = buildExecutionPlan(doc!).steps
    expect(steps.length).toBeGreaterThan(150_000)
    expect(steps.filter((s) => s.node === 'n9999' && s.action === 'hook')).toHaveLength(6)
  })

  it('20,000 unknown fields: every one found, the first 50 printed, then "and N more"', () => {
    const keys = Array.from({ length: 20_000 }, (_, i) => `  x${i}: 1\n`).join('')
    const { problems } = parsePlan('wide.yaml', plan({ meta: keys }))
    expect(problems).toHaveLength(20_000)
    expect(problems[19_999]).toMatchObject({ line: 20_004, col: 3, message: 'metadata.x19999: unknown field "x19999"' })
    const lines = new PlanError(problems).message.split('\n')
    expect(lines).toHaveLength(51)
    expect(lines[49]).toBe('wide.yaml:54:3: metadata.x49: unknown field "x49"')
    expect(lines[50]).toBe('wide.yaml: and 19950 more problems (fix these first, then validate again)')
  })
})

describe('never hang, never exhaust: files that are not plans', () => {
  it('/dev/zero is refused by path, not read', () => {
    expect(() => loadPlan('/dev/zero')).toThrow('/dev/zero: cannot read the plan (a character device, not a regular file)')
  })
  it('a FIFO is refused at once, not waited on', () => {
    const fifo = join(dir, 'plan.fifo')
    execFileSync('mkfifo', [fifo])
    expect(() => loadPlan(fifo)).toThrow(`${fifo}: cannot read the plan (a FIFO, not a regular file)`)
  })
  it('a plan larger than 32 MiB is refused without reading it', () => {
    const big = join(dir, 'big.yaml')
    const fd = openSync(big, 'w')
    closeSync(fd)
    execFileSync('truncate', ['-s', '40M', big])
    expect(() => loadPlan(big)).toThrow(`${big}: cannot read the plan (larger than 32 MiB (40 MiB))`)
  })
  it('the CLI says so in one line, exit 2', async () => {
    const r = await runCli(['validate', '/dev/zero'], { env: {}, cwd: dir })
    expect(r).toEqual({ code: 2, out: '', err: '/dev/zero: cannot read the plan (a character device, not a regular file)\n' })
  })
})

describe('accept only what is meant', () => {
  it('a pre-release target is a warning', () => {
    const { plan: doc, problems } = parsePlan('h.yaml', plan({ target: 'v1.30.0-rc.1' }))
    expect(doc).toBeDefined()
    expect(problems.map((p) => `${p.severity}: ${p.message}`)).toContain('warning: spec.target.kubernetes: v1.30.0-rc.1 is a pre-release: pre-releases are for testing, never for clusters that matter')
  })
  it('an apiEndpoint with credentials never echoes the password, even when the schema refuses it', () => {
    const source = plan().replace('https://10.0.0.1:6443', 'http://admin:s3cret-pw@10.0.0.1:6443')
    const out = parsePlan('h.yaml', source).problems.map(formatProblem).join('\n')
    expect(out).toContain('apiEndpoint')
    expect(out).not.toContain('s3cret-pw')
  })
  it('a hook must be an executable regular file', () => {
    const hooks = join(dir, 'hooks')
    mkdirSync(hooks)
    writeFileSync(join(hooks, 'run.sh'), '#!/bin/sh\n')
    chmodSync(join(hooks, 'run.sh'), 0o755)
    writeFileSync(join(hooks, 'plain.sh'), '#!/bin/sh\n')
    chmodSync(join(hooks, 'plain.sh'), 0o644)
    const source = plan({ extra: '  hooks:\n    beforeNode: [hooks/run.sh, hooks/plain.sh, hooks]\n' })
    const errors = parsePlan('h.yaml', source, { dir }).problems.map((p) => p.message)
    expect(errors).toEqual([
      `spec.hooks.beforeNode[1]: hook hooks/plain.sh is not executable (at ${join(hooks, 'plain.sh')}; relative paths are relative to the plan file, ~ is your home directory): make it executable (chmod +x)`,
      `spec.hooks.beforeNode[2]: hook hooks is a directory, not an executable file (at ${hooks}; relative paths are relative to the plan file, ~ is your home directory)`,
    ])
  })
})

describe('print nothing that lies: control characters in every output format', () => {
  // DEL, a C1 CSI and the separators and overrides too: JSON.stringify leaves those raw, so json escapes them itself.
  const hook = join(dir, 'evil\u001b]0;pwned\u0007\nprod.yaml:1:1: forged\u009b31m\u007f\u2028\u202e')
  writeFileSync(hook, '#!/bin/sh\n')
  chmodSync(hook, 0o755)
  const file = join(dir, 'evil-hook.yaml')
  // YAML must not hold DEL, C1 or the separators raw: a double-quoted scalar writes them as \u escapes.
  const yamlQuoted = JSON.stringify(hook).replace(/[\u007f-\u009f\u2028-\u202e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  writeFileSync(file, plan({ extra: `  hooks:\n    beforeStage: [${yamlQuoted}]\n` }).replace('name: h', 'name: h\n  description: "\u009b31m"'))

  it.each(['text', 'markdown', 'json'])('plan --format %s escapes the hook name: no ESC, BEL, C1, DEL, separator or forged line', async (format) => {
    const r = await runCli(['plan', file, '--format', format], { env: { NO_COLOR: '1' }, cwd: dir })
    expect(r.code).toBe(0)
    expect(r.out).toContain('pwned')
    expect(r.out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028-\u202e]/)
    expect(r.out).not.toMatch(/^prod\.yaml:1:1/m)
    if (format === 'json') expect(JSON.parse(r.out).steps.find((s: { action: string }) => s.action === 'hook').params.hook).toBe(hook)
  })

  it('validate escapes values in problems: one problem is one line', async () => {
    writeFileSync(join(dir, 'forge.yaml'), plan({ target: '"v1.30.4\\nplans/prod.yaml:1:1: error: forged\\u0007"' }))
    const r = await runCli(['validate', join(dir, 'forge.yaml')], { env: {}, cwd: dir })
    expect(r.code).toBe(2)
    expect(r.err).toBe(`${join(dir, 'forge.yaml')}:7:17: spec.target.kubernetes: "v1.30.4\\nplans/prod.yaml:1:1: error: forged\\u0007" is not a Kubernetes version (expected e.g. v1.30.4)\n`)
  })
})
