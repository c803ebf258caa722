import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { formatProblem, PlanError } from '../../src/errors.js'
import { loadPlan, parsePlan } from '../../src/plan/load.js'

/**
 * The malformed-plan corpus: every test/fixtures/plans/invalid/NAME.yaml must produce exactly the lines in
 * NAME.expected — what `kupgrade validate` prints, `file:line:col: message`, with the file path as given here
 * (relative to the repository root). One substitution: `<repo>` stands for the absolute repository path, which
 * appears where a message shows a resolved hook path.
 *
 * To add a case: write NAME.yaml, run `kupgrade validate test/fixtures/plans/invalid/NAME.yaml`, judge every line
 * (exact position, says what is wrong and what to do, no zod or yaml internals), then save it as NAME.expected.
 */
const root = join(import.meta.dirname, '..', '..')
const invalidDir = join(root, 'test', 'fixtures', 'plans', 'invalid')
const validDir = join(root, 'test', 'fixtures', 'plans', 'valid')
const rel = (p: string) => relative(root, p)
const names = readdirSync(invalidDir).filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -'.yaml'.length)).sort()

const expectedOf = (name: string): string => readFileSync(join(invalidDir, `${name}.expected`), 'utf8').replaceAll('<repo>', root)

/** What validate prints for one file, through loadPlan, as lines. */
function validateLines(file: string): string[] {
  // The path as the user passes it, relative to where they run kupgrade (vitest already runs from the root).
  const cwd = process.cwd()
  if (cwd !== root) process.chdir(root)
  try {
    loadPlan(file)
    return []
  } catch (err) {
    if (err instanceof PlanError) return err.problems.map(formatProblem)
    throw err
  } finally {
    if (cwd !== root) process.chdir(cwd)
  }
}

// zod and yaml wording that must never reach a user: each of these once did.
const INTERNALS = /Invalid input|Invalid option|received (string|number|object|array|boolean)|Too (big|small):|expected (string|number|array|object|int)\b|at line \d+, column \d+|ZodError|\bat .*\.(js|ts):\d+/

describe('invalid plan corpus', () => {
  it('has at least 45 cases, each with its .expected file', () => {
    expect(names.length).toBeGreaterThanOrEqual(45)
    const expectedFiles = readdirSync(invalidDir).filter((f) => f.endsWith('.expected')).map((f) => f.slice(0, -'.expected'.length)).sort()
    expect(expectedFiles).toEqual(names)
  })

  it('has at least 5 cases that report 3 or more problems at once', () => {
    const multi = names.filter((n) => expectedOf(n).trimEnd().split('\n').length >= 3)
    expect(multi.length).toBeGreaterThanOrEqual(5)
  })

  it.each(names)('%s: validate prints exactly the expected problems', (name) => {
    const file = rel(join(invalidDir, `${name}.yaml`))
    const lines = validateLines(file)
    expect(lines.length).toBeGreaterThan(0)
    expect(lines.join('\n')).toBe(expectedOf(name).trimEnd())
    for (const line of lines) {
      expect(line).toMatch(/^test\/fixtures\/plans\/invalid\/[a-z0-9-]+\.yaml:\d+:\d+: \S/)
      expect(line).not.toMatch(INTERNALS)
    }
  })

  it.each(names)('%s: parsePlan on the text alone agrees (no file system needed except for hooks)', (name) => {
    const file = rel(join(invalidDir, `${name}.yaml`))
    const source = readFileSync(join(invalidDir, `${name}.yaml`), 'utf8')
    const { plan, problems } = parsePlan(file, source, { dir: invalidDir })
    const errors = problems.filter((p) => p.severity !== 'warning')
    expect(plan === undefined || errors.length > 0).toBe(true)
    expect(errors.map(formatProblem).join('\n')).toBe(expectedOf(name).trimEnd())
  })

  // Not a fixture: where the parser gives up depends on the stack size, so only the outcome is fixed.
  it.each([
    ['a deeply nested flow sequence', `a: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n`],
    ['a deeply nested mapping', `spec:\n${Array.from({ length: 5000 }, (_, i) => `${'  '.repeat(i + 1)}k${i}:\n`).join('')}`],
  ])('%s is one located problem, not a crash', (_what, source) => {
    const { plan, problems } = parsePlan('deep.yaml', source)
    expect(plan).toBeUndefined()
    expect(problems.length).toBeGreaterThan(0)
    expect(problems.some((p) => /nested too deeply|YAML syntax error/.test(p.message))).toBe(true)
    for (const p of problems) expect(p.message).not.toMatch(/Maximum call stack/)
  })

  it('an unreadable plan path is one clear error, not a stack trace', () => {
    expect(() => loadPlan('test/fixtures/plans/invalid/no-such-plan.yaml')).toThrow(
      'test/fixtures/plans/invalid/no-such-plan.yaml: cannot read the plan (no such file)',
    )
    expect(() => loadPlan('test/fixtures/plans/invalid')).toThrow(/cannot read the plan \(a directory, not a regular file\)/)
  })
})

describe('valid plan fixtures', () => {
  const valid = readdirSync(validDir).filter((f) => f.endsWith('.yaml')).sort()
  it('has at least 6 plans', () => {
    expect(valid.length).toBeGreaterThanOrEqual(6)
  })
  it.each(valid)('%s validates with no errors', (f) => {
    const loaded = loadPlan(join(validDir, f))
    expect(loaded.plan.kind).toBe('UpgradePlan')
  })
})

describe('warnings (the plan is valid, validate prints them on stderr)', () => {
  const plan = (cps: number, workers: number, extra: { via?: string[]; canary?: number; from?: string; distribution?: string; maxUnavailable?: number | string } = {}) =>
    JSON.stringify({
      apiVersion: 'kupgrade.dev/v1alpha1', kind: 'UpgradePlan', metadata: { name: 'w' },
      spec: {
        target: { kubernetes: 'v1.30.4', ...(extra.via ? { via: extra.via } : {}) },
        stages: [{ name: 's', clusters: ['c'] }],
        clusters: [{ name: 'c', distribution: extra.distribution ?? 'k3s', from: extra.from ?? 'v1.29.2', apiEndpoint: 'https://10.0.0.1:6443', nodes: [
          ...Array.from({ length: cps }, (_, i) => ({ name: `cp-${i}`, host: `10.0.0.${10 + i}`, role: 'control-plane' })),
          ...Array.from({ length: workers }, (_, i) => ({ name: `w-${i}`, host: `10.0.1.${10 + i}`, role: 'worker' })),
        ] }],
        ...(extra.canary !== undefined || extra.maxUnavailable !== undefined ? { strategy: { workers: { ...(extra.canary !== undefined ? { canary: extra.canary } : {}), ...(extra.maxUnavailable !== undefined ? { maxUnavailable: extra.maxUnavailable } : {}) } } } : {}),
      },
    }, null, 1)
  const warnings = (source: string) => {
    const { plan: doc, problems } = parsePlan('w.yaml', source)
    expect(doc).toBeDefined()
    expect(problems.filter((p) => p.severity !== 'warning')).toEqual([])
    return problems.map((p) => p.message)
  }

  it('none for 3 control-plane nodes and a plain one-minor upgrade', () => {
    expect(warnings(plan(3, 2))).toEqual([])
  })
  it('a single or an even number of control-plane nodes', () => {
    expect(warnings(plan(1, 0))).toEqual(['spec.clusters[0].nodes: cluster c has 1 control-plane node: a single point of failure during the upgrade (control-plane-ha gate)'])
    expect(warnings(plan(2, 0))).toEqual(['spec.clusters[0].nodes: cluster c has 2 control-plane nodes: taking either down for its upgrade leaves etcd without quorum (control-plane-ha gate)'])
    expect(warnings(plan(4, 0))).toEqual(['spec.clusters[0].nodes: cluster c has 4 control-plane nodes: an even count tolerates no more failures than one fewer (control-plane-ha gate)'])
  })
  it('a canary larger than any cluster\'s workers', () => {
    expect(warnings(plan(3, 2, { canary: 3 }))).toEqual(["spec.strategy.workers.canary: canary 3 is more than the largest cluster's 2 workers"])
  })
  it('a batch of every worker where the control plane keeps workloads off (kubeadm, k0s): their pods have nowhere to go', () => {
    expect(warnings(plan(3, 2, { distribution: 'kubeadm', maxUnavailable: 2, canary: 0 }))).toEqual(['spec.strategy.workers.maxUnavailable: cluster c: all 2 workers are drained at once (maxUnavailable 2, canary 0): their pods need room on the control-plane nodes, which kubeadm keeps workloads off (capacity gate)'])
    expect(warnings(plan(3, 4, { distribution: 'k0s', maxUnavailable: '100%', canary: 0 }))).toHaveLength(1)
    // A canary first, batches smaller than the workers, or k3s (its servers take workloads): none.
    expect(warnings(plan(3, 2, { distribution: 'kubeadm', maxUnavailable: 2 }))).toEqual([])
    expect(warnings(plan(3, 3, { distribution: 'kubeadm', maxUnavailable: 2, canary: 0 }))).toEqual([])
    expect(warnings(plan(3, 2, { maxUnavailable: 2, canary: 0 }))).toEqual([])
  })
  it('via versions no cluster uses: outside every hop, or an earlier patch of a listed minor', () => {
    expect(warnings(plan(3, 0, { via: ['v1.28.9'] }))).toEqual(['spec.target.via[0]: v1.28.9 is not used: no cluster passes through 1.28 on its way to the target'])
    expect(warnings(plan(3, 0, { from: 'v1.28.1', via: ['v1.29.1', 'v1.29.8'] }))).toEqual(['spec.target.via[0]: v1.29.1 is not used: v1.29.8 is the later patch of 1.29, and hops go to the latest one listed'])
    expect(warnings(plan(3, 0, { from: 'v1.28.1', via: ['v1.29.8'] }))).toEqual([])
  })
})

// The real CLI for a handful: exit code 2, the same lines on stderr, nothing on stdout, and no stack trace.
describe('kupgrade validate on invalid plans (child process)', () => {
  const cli = join(root, 'bin', 'kupgrade.js')
  const sample = ['yaml-unclosed-quote', 'duplicate-key', 'empty', 'two-documents', 'wrong-types', 'hostile-hosts', 'kitchen-sink', 'alias-bomb', 'alias-bomb-top-level-list', 'missing-hook-file']

  it.each(sample)('%s: exit 2, expected lines on stderr, no stack trace', (name) => {
    const file = `test/fixtures/plans/invalid/${name}.yaml`
    const r = spawnSync(process.execPath, [cli, 'validate', file], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
    expect(r.status).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr.trimEnd()).toBe(expectedOf(name).trimEnd())
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /)
  })

  it('validates several files in one call and reports each; exit 2 if any is invalid', () => {
    const r = spawnSync(process.execPath, [cli, 'validate', 'examples/kubeadm-ha.yaml', 'test/fixtures/plans/invalid/downgrade.yaml'], { cwd: root, encoding: 'utf8' })
    expect(r.status).toBe(2)
    expect(r.stdout).toBe('examples/kubeadm-ha.yaml: valid\n')
    expect(r.stderr.trimEnd()).toBe(expectedOf('downgrade').trimEnd())
  })

  it('a missing plan file: exit 2 and one line', () => {
    const r = spawnSync(process.execPath, [cli, 'validate', 'nope.yaml'], { cwd: root, encoding: 'utf8' })
    expect(r.status).toBe(2)
    expect(r.stderr).toBe('nope.yaml: cannot read the plan (no such file)\n')
  })

  it('apply, dry-run or not, on a plan it cannot read: exit 2 with the plan named, never an internal error, never a read without end', () => {
    for (const [plan, reason] of [['nope.yaml', 'no such file'], ['test/fixtures', 'a directory, not a regular file'], ['/dev/zero', 'a character device, not a regular file']]) {
      for (const dry of [[], ['--dry-run']]) {
        const r = spawnSync(process.execPath, [cli, 'apply', plan!, ...dry], { cwd: root, encoding: 'utf8', timeout: 60_000 })
        expect(r.status, `${plan} ${dry}: ${r.stderr}`).toBe(2)
        expect(r.stderr).toBe(`error: ${plan}: cannot read the plan (${reason})\nhint: pass the path of an UpgradePlan YAML file\n`)
      }
    }
  })
})
