import { accessSync, constants, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import jsyaml from 'js-yaml'
import { KupgradeError, ExitCode, PlanError, type Problem } from '../errors.js'
import { FileReadError, MiB, readRegularFile } from '../util/read-file.js'
import { YAML_CORE_SCHEMA } from './core-schema.js'
import { Locator } from './locate.js'
import { MAX_NESTING, tooDeep } from './nesting.js'
import { planPath } from './paths.js'
import { planSchema, type PlanDocument } from './schema.js'
import { checkSemantics } from './semantics.js'
import { planSkewWalk } from '../planner/skew-walk.js'
import type { ExecutionPlan } from '../planner/types.js'
import { zodProblems } from './zod-problems.js'
import { dedupe, readYamlMapping, type YamlFileKind } from './yaml-file.js'

/** A 10,000-node plan is about 1 MiB; anything past this is not a plan someone wrote. */
export const MAX_PLAN_BYTES = 32 * MiB

const PLAN_FILE: YamlFileKind = { kind: 'UpgradePlan', noun: 'plan', hint: 'run `kupgrade schema` for the format', topKeys: 'apiVersion, kind, metadata and spec' }

export interface LoadedPlan {
  /** The path as the user gave it, for messages. */
  file: string
  /** Directory relative paths in the plan are resolved against. */
  dir: string
  plan: PlanDocument
  warnings: Problem[]
  /**
   * The offline expansion validation already built to walk the version skew (`buildExecutionPlan(plan)`: no facts,
   * no extra warnings), so `plan` need not build the same 2,000-node expansion twice. Absent when the walk did not run.
   */
  expanded?: ExecutionPlan
}

/** Reads and validates a plan file. Throws PlanError with every problem found (never just the first). */
export function loadPlan(file: string): LoadedPlan {
  const source = readPlanFile(file).toString('utf8')
  const { plan, problems, expanded } = parsePlan(file, source, { dir: dirname(resolve(file)) })
  const errors = problems.filter((p) => p.severity !== 'warning')
  if (errors.length > 0 || !plan) throw new PlanError(errors)
  return { file, dir: dirname(resolve(file)), plan, warnings: problems.filter((p) => p.severity === 'warning'), ...(expanded ? { expanded } : {}) }
}

/**
 * A plan file's bytes (what a run's sha256 is of), or a usage error naming it: never a crash, never a read without end
 * (a directory, a FIFO, /dev/zero). `shown` is the path as the user gave it.
 */
export function readPlanFile(file: string, shown = file): Buffer {
  try {
    return readRegularFile(file, { maxBytes: MAX_PLAN_BYTES })
  } catch (err) {
    const reason = err instanceof FileReadError ? err.reason : String(err)
    throw new KupgradeError(`${shown}: cannot read the plan (${reason})`, {
      exitCode: ExitCode.invalid,
      hint: 'pass the path of an UpgradePlan YAML file',
    })
  }
}

/**
 * Parse + validate plan text. `file` is only used in messages; with `dir`, paths the plan names (hooks) are also
 * checked to exist, relative to it.
 */
export function parsePlan(file: string, source: string, opts: { dir?: string } = {}): ParsedPlan {
  // Fast path: a plain YAML 1.2 parse without positions (5x quicker cold on a 2,000-node plan). Anything unusual — a
  // syntax error, duplicate keys, several documents, not a mapping — goes to the positional parser below, which
  // reports it precisely; positions for schema and semantic problems are computed lazily, only when there is one.
  const deep = tooDeep(source)
  if (deep) return { problems: [{ file, ...deep, message: DEEP_MESSAGE }] }
  try {
    const fast = fastParse(source)
    if (fast !== undefined) return validateRaw(file, fast, Locator.lazy(source), opts)
    const read = readYamlMapping(file, source, PLAN_FILE)
    return 'problems' in read ? read : validateRaw(file, read.raw, read.locator, opts)
  } catch (err) {
    // The depth check above keeps both parsers well inside the stack; should some shape still exhaust it, that is
    // bad input to report, never a crash.
    if (err instanceof RangeError) return { problems: [{ file, line: 1, col: 1, message: DEEP_MESSAGE }] }
    throw err
  }
}

const DEEP_MESSAGE = `YAML syntax error: the document is nested too deeply to read (more than ${MAX_NESTING} levels; a plan needs about 8)`

/** A mapping parsed by js-yaml with `yaml`'s YAML 1.2 core schema (plan/core-schema.ts), or undefined for the slow path. */
export function fastParse(source: string): Record<string, unknown> | undefined {
  // js-yaml expands aliases without a limit (a "billion laughs" plan would exhaust memory); the positional parser
  // caps them, so any plan that defines an anchor takes that path.
  if (ANCHOR.test(source)) return undefined
  // A directive (%YAML 1.1 changes what `yes` means) or a tag (which must be refused with its location) is read by
  // the positional parser alone, so a plan has one meaning whichever way it is read.
  if (DIRECTIVE.test(source) || TAG.test(source)) return undefined
  try {
    const raw = jsyaml.load(source, { schema: YAML_CORE_SCHEMA })
    return raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

const ANCHOR = /(^|[\s[{,:-])&[^\s,\]}]/m
const DIRECTIVE = /^%/m
const TAG = /(^|[\s[{,:?-])!/m

/** A parse's result: the plan when valid, every problem, and the expansion the skew walk built (see LoadedPlan). */
export interface ParsedPlan {
  plan?: PlanDocument
  problems: Problem[]
  expanded?: ExecutionPlan
}

function validateRaw(file: string, raw: Record<string, unknown>, locator: Locator, opts: { dir?: string }): ParsedPlan {
  const parsed = planSchema.safeParse(raw)
  const problems = parsed.success ? [] : zodProblems(file, parsed.error.issues, raw, planSchema, locator)
  // Semantic checks run even when the shape has errors, so the user sees every problem in one go.
  problems.push(...checkSemantics(raw, { file, locator }))
  if (opts.dir && parsed.success) problems.push(...checkHookFiles(parsed.data, opts.dir, file, locator))
  // A valid plan is expanded and walked step by step: no intermediate state may break the version skew policy.
  let expanded: ExecutionPlan | undefined
  if (parsed.success && !problems.some((p) => p.severity !== 'warning')) {
    const walk = planSkewWalk(parsed.data, file, locator)
    problems.push(...walk.problems)
    expanded = walk.expanded
  }
  problems.sort((a, b) => a.line - b.line || a.col - b.col)
  return { plan: parsed.success ? parsed.data : undefined, problems: dedupe(problems), ...(expanded ? { expanded } : {}) }
}

function checkHookFiles(plan: PlanDocument, dir: string, file: string, locator: Locator): Problem[] {
  const out: Problem[] = []
  const { timeout: _timeout, ...points } = plan.spec.hooks
  for (const [point, hooks] of Object.entries(points)) {
    ;(hooks ?? []).forEach((hook, i) => {
      const resolved = planPath(hook, dir)
      const problem = hookProblem(resolved)
      if (problem === undefined) return
      const where = resolved === hook ? '' : ` (${problem === 'not found' ? 'looked for' : 'at'} ${resolved}; relative paths are relative to the plan file, ~ is your home directory)`
      const fix = problem === NOT_EXECUTABLE ? ': make it executable (chmod +x)' : ''
      out.push({ file, ...locator.at(['spec', 'hooks', point, i]), message: `spec.hooks.${point}[${i}]: hook ${hook} ${problem}${where}${fix}` })
    })
  }
  return out
}

const NOT_EXECUTABLE = 'is not executable'

/** A hook is run as a program: it must be an executable regular file (a directory or /etc/passwd is not a hook). */
function hookProblem(path: string): string | undefined {
  let st
  try {
    st = statSync(path)
  } catch {
    return 'not found'
  }
  if (st.isDirectory()) return 'is a directory, not an executable file'
  if (!st.isFile()) return 'is not a regular file'
  try {
    accessSync(path, constants.X_OK)
  } catch {
    return NOT_EXECUTABLE
  }
  // root passes X_OK for any file with one x bit; a file with none is still not meant to be run.
  if ((st.mode & 0o111) === 0) return NOT_EXECUTABLE
  return undefined
}
