import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { formatProblem } from '../../src/errors.js'
import { parsePlan } from '../../src/plan/load.js'
import { buildExecutionPlan } from '../../src/planner/build.js'
import { generatePlan, int, mulberry32, pick, type Rng } from '../planner/gen-plan.js'

/**
 * Validation never crashes: valid generated plans, damaged at random (fields deleted, replaced by values of the
 * wrong type or hostile strings, unknown fields added), must give located problems with readable messages - or,
 * when the damage happens to be harmless, a plan the planner accepts. A failure prints the seed. FUZZ_PRINT=1 prints
 * every message, to review the wording of the whole space at once (sort | uniq -c).
 */
const CASES = 400
const root = join(import.meta.dirname, '..', '..')

const HOSTILE = ['', ' ', '-oProxyCommand=x', '$(id)', '`id`', 'a\nb', '../../etc/passwd', 'ü', '%', '{}', '[]', '*', '&', '#', 'null', 'v1.30', '1e400',
  // issue 8: values semver cannot order, control characters, credentials, absurd sizes and durations
  'v1.30.9007199254740992', 'v1.30.12345678901234567890+k3s1', 'v1.30.04', ' v1.30.4', 'v1.30.0-rc.01', 'a\u001b]0;x\u0007b', 'x\nf.yaml:1:1: forged',
  '\u009b31m', 'https://u:pw@10.0.0.1:6443', 'https://', '0.0.0.0/0', '10.96.0.1/12', '::ffff:10.0.0.11', '9999999d', '99999999Ti', '/etc/passwd', '/dev/zero']
const VALUES = (rng: Rng): unknown => {
  switch (int(rng, 0, 9)) {
    case 0: return null
    case 1: return int(rng, -5, 70000)
    case 2: return rng() * 10
    case 3: return rng() < 0.5
    case 4: return pick(rng, HOSTILE)
    case 5: return []
    case 6: return {}
    case 7: return [pick(rng, HOSTILE), int(rng, 0, 3)]
    case 8: return { [pick(rng, ['name', 'x', 'etcd', 'host'])]: pick(rng, HOSTILE) }
    default: return 'x'.repeat(int(rng, 1, 300))
  }
}

/** Every (container, key) in the document, to pick a place to damage. */
function places(doc: unknown, out: [Record<string | number, unknown>, string | number][] = []): typeof out {
  if (doc !== null && typeof doc === 'object') {
    for (const [k, v] of Object.entries(doc)) {
      out.push([doc as Record<string | number, unknown>, Array.isArray(doc) ? Number(k) : k])
      places(v, out)
    }
  }
  return out
}

function damage(raw: Record<string, unknown>, rng: Rng): void {
  for (let n = int(rng, 1, 5); n > 0; n--) {
    const all = places(raw)
    const [container, key] = pick(rng, all)
    switch (int(rng, 0, 3)) {
      case 0:
        if (Array.isArray(container)) container.splice(Number(key), 1)
        else delete container[key]
        break
      case 1:
      case 2:
        container[key] = VALUES(rng)
        break
      default:
        if (!Array.isArray(container)) container[pick(rng, ['nmae', 'hosts', 'timeout', 'etcd', 'x-extra'])] = VALUES(rng)
    }
  }
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/

const INTERNALS = /Invalid input|Invalid option|received (string|number|object|array|boolean|null|undefined)|Too (big|small):|expected (string|number|array|object|int|record)\b|ZodError|undefined|\[object Object\]|NaN/

describe(`validation of ${CASES} randomly damaged plans`, () => {
  it('never throws, locates every problem inside the file, and words it without internals', () => {
    const failures: string[] = []
    let invalid = 0
    for (let i = 0; i < CASES && failures.length < 5; i++) {
      const seed = 0x5eed_0000 + i
      const rng = mulberry32(seed ^ 0x9e3779b9)
      const raw = structuredClone(generatePlan(seed).raw)
      damage(raw, rng)
      const source = rng() < 0.5 ? JSON.stringify(raw, null, 2) : stringify(raw)
      const lines = source.split('\n')
      try {
        const { plan, problems } = parsePlan(`fuzz-${seed}.yaml`, source, { dir: root })
        const errors = problems.filter((p) => p.severity !== 'warning')
        if (errors.length) invalid++
        if (process.env.FUZZ_PRINT) for (const p of problems) console.log(p.message)
        for (const p of problems) {
          if (!(p.line >= 1 && p.line <= lines.length + 1 && p.col >= 1 && p.col <= (lines[p.line - 1]?.length ?? 0) + 1)) failures.push(`seed ${seed}: ${p.line}:${p.col} is outside the file: ${p.message}`)
          if (INTERNALS.test(p.message)) failures.push(`seed ${seed}: internal wording: ${p.message}`)
          if (CONTROL.test(formatProblem(p))) failures.push(`seed ${seed}: a control character reaches the output: ${JSON.stringify(formatProblem(p))}`)
        }
        if (plan && errors.length === 0) buildExecutionPlan(plan)
        if (!plan && errors.length === 0) failures.push(`seed ${seed}: no plan and no error`)
      } catch (err) {
        failures.push(`seed ${seed}: threw ${(err as Error).stack}`)
      }
    }
    expect(failures, failures.join('\n')).toEqual([])
    expect(invalid).toBeGreaterThan(CASES / 2) // the damage really does damage
  })
})

/**
 * Damage at the level of the text, where the YAML parsers themselves are attacked (issue 8): tags, directives, deep
 * nesting, versions semver cannot order, control characters, huge repetition. Never a throw, never a problem outside
 * the file, never a control character in what is printed.
 */
const TEXT_DAMAGE: ((lines: string[], rng: Rng) => void)[] = [
  (l, rng) => { const i = int(rng, 0, l.length - 1); l[i] = l[i]!.replace(/: (\S)/, `: ${pick(rng, ['!evil ', '!!js/function ', '!<tag:x> ', '!!binary ', '!!str ', '!!float '])}$1`) },
  (l, rng) => { l.unshift(pick(rng, ['%YAML 1.1', '%YAML 1.2', '%TAG !e! tag:example.com,2000:']), '---') },
  (l, rng) => { const d = int(rng, 50, 3000); l.push('x-deep:', ...Array.from({ length: d }, (_, i) => `${' '.repeat(i + 1)}${pick(rng, ['k:', '-'])}`)) },
  (l, rng) => { const i = int(rng, 0, l.length - 1); l[i] = l[i]!.replace(/v1\.(\d+)\.\d+/, `v1.$1.${pick(rng, ['9007199254740993', '00', '1'.repeat(30)])}`) },
  (l, rng) => { const i = int(rng, 0, l.length - 1); l[i] = l[i]!.replace(/: ([\w.-]+)$/, `: "$1${pick(rng, ['\\e[2J', '\\a', '\\n', '\\u009b', '\\x7f', '\\u2028'])}"`) },
  (l, rng) => { const i = int(rng, 0, l.length - 1); l.splice(i, 0, ...Array<string>(int(rng, 1, 200)).fill(l[i]!)) },
  (l, rng) => { l.push(`x-flow: ${'['.repeat(int(rng, 10, 5000))}`) },
  (l, rng) => { const i = int(rng, 0, l.length - 1); l[i] = `${l[i]}  # &anchor-like ${pick(rng, ['*', '&a', '<<'])}` },
]

describe(`validation of ${CASES / 2} plans damaged as text`, () => {
  it('never throws, locates every problem inside the file, and prints no control character', () => {
    const failures: string[] = []
    for (let i = 0; i < CASES / 2 && failures.length < 5; i++) {
      const seed = 0x7e47_0000 + i
      const rng = mulberry32(seed ^ 0x85ebca6b)
      const lines = stringify(generatePlan(seed).raw).split('\n')
      for (let n = int(rng, 1, 3); n > 0; n--) pick(rng, TEXT_DAMAGE)(lines, rng)
      const source = lines.join('\n')
      const count = source.split('\n')
      try {
        const { plan, problems } = parsePlan(`text-${seed}.yaml`, source)
        for (const p of problems) {
          if (!(p.line >= 1 && p.line <= count.length + 1 && p.col >= 1 && p.col <= (count[p.line - 1]?.length ?? 0) + 1)) failures.push(`seed ${seed}: ${p.line}:${p.col} is outside the file: ${p.message}`)
          if (CONTROL.test(formatProblem(p))) failures.push(`seed ${seed}: a control character reaches the output: ${JSON.stringify(formatProblem(p))}`)
          if (/Maximum call stack|Invalid (patch|minor|major) version|Invalid Version/.test(p.message)) failures.push(`seed ${seed}: internal error as a problem: ${p.message}`)
        }
        if (plan && !problems.some((p) => p.severity !== 'warning')) buildExecutionPlan(plan)
      } catch (err) {
        failures.push(`seed ${seed}: threw ${(err as Error).stack}`)
      }
    }
    expect(failures, failures.join('\n')).toEqual([])
  })
})
