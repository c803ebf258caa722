import type { Command } from 'commander'
import type { CliContext } from '../context.js'

/**
 * One entry per top-level command, in the order `--help` lists them. A command module registers its own flags and
 * reports its exit code through `setExit`; it throws KupgradeError for anything the user must fix.
 */
export type RegisterCommand = (program: Command, ctx: CliContext, setExit: (code: number) => void) => void

import { register as validate } from './validate.js'
import { register as plan } from './plan.js'
import { register as schema } from './schema.js'

export const commands: RegisterCommand[] = [validate, plan, schema]
