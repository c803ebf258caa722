import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
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

const HOSTILE = ['', ' ', '-oProxyCommand=x', '$(id)', '`id`', 'a\nb', '../../etc/passwd', 'ü', '%', '{}', '[]', '*', '&', '#', 'null', 'v1.30', '1e400']
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
