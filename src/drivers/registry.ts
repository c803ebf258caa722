import type { Step, StepAction } from '../planner/types.js'
import type { Distribution } from '../plan/versions.js'
import { k0s } from './k0s/index.js'
import { k3s } from './k3s/index.js'
import { kubeadm } from './kubeadm/index.js'
import { kubectlModule } from './kubectl/index.js'
import { osModule } from './os/index.js'
import type { ActionProgram, StepProgram } from './program.js'
import type { ActionModule, Driver, DriverNodeFacts } from './types.js'

/** Every distribution driver, in one explicit map (a test checks it against the distributions the schema allows). */
export const drivers: ReadonlyMap<Distribution, Driver> = new Map<Distribution, Driver>([
  ['k0s', k0s],
  ['k3s', k3s],
  ['kubeadm', kubeadm],
])

export const driverFor = (d: Distribution): Driver => {
  const driver = drivers.get(d)
  if (!driver) throw new Error(`no driver registered for distribution ${d}`)
  return driver
}

/** Actions the executor carries out itself, with no commands of their own (gates and hooks have their own runners). */
export const EXECUTOR_ACTIONS: readonly StepAction[] = ['approval', 'lock', 'unlock', 'gate', 'hook', 'soak']

/** The modules that are not distributions: kubectl (cordon, drain, uncordon, wait-ready) and the OS. */
export const COMMON_MODULES: readonly ActionModule[] = [kubectlModule, osModule]

export const hasProgram = (action: StepAction): boolean => !EXECUTOR_ACTIONS.includes(action)

/** Which module makes the program of `action` in a cluster of `distribution`. */
export function moduleFor(action: StepAction, distribution: Distribution): ActionModule {
  for (const m of COMMON_MODULES) if (m.actions.includes(action)) return m
  const driver = driverFor(distribution)
  if (driver.actions.includes(action)) return driver
  throw new Error(EXECUTOR_ACTIONS.includes(action) ? `${action} is carried out by the executor itself and has no program` : `the ${distribution} driver has no program for action ${action}`)
}

export interface ProgramContext {
  distribution: Distribution
  /** The node's facts; absent (offline `plan`), programs that depend on them decide on the node itself. */
  node?: DriverNodeFacts
}

/**
 * The one entry point for the executor and `plan`: the step's commands (verify, run, wait) from the module that
 * owns its action, and its undo from the step's undo spec — the program of the undo action, in the same step
 * context — or why it cannot be undone.
 */
export function programFor(step: Step, ctx: ProgramContext): StepProgram {
  const program: ActionProgram = moduleFor(step.action, ctx.distribution).programFor(step, ctx.node)
  const spec = step.undo
  if (spec === undefined) return { ...program, undo: { nothing: true } }
  if ('irreversible' in spec) return { ...program, undo: { irreversible: spec.irreversible } }
  const undoStep = { ...step, action: spec.action, params: spec.params, undo: undefined } as unknown as Step
  const u = moduleFor(spec.action, ctx.distribution).programFor(undoStep, ctx.node)
  return { ...program, undo: { title: u.title, verify: u.verify, run: u.run, ...(u.wait ? { wait: u.wait } : {}), ...(u.readsBackup ? { readsBackup: u.readsBackup } : {}) } }
}

/** The title `plan` prints for a step that has a program: rendered from the same commands that run, with the node's
 *  facts where they are known (`plan --live`, `apply`), as the executor runs them. */
export const titleFor = (step: Step, distribution: Distribution, node?: DriverNodeFacts): string => moduleFor(step.action, distribution).programFor(step, node).title
