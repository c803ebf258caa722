import type { Command } from 'commander'
import type { CliContext } from '../context.js'

/**
 * A command module registers its own flags and reports its exit code through `setExit`; it throws KupgradeError for
 * anything the user must fix.
 */
export type RegisterCommand = (program: Command, ctx: CliContext, setExit: (code: number) => void) => void

export interface CommandEntry {
  name: string
  summary: string
  /** Loaded only when this command runs (or for its --help): `validate` must not pay for ssh2 or the lab. */
  load: () => Promise<{ register: RegisterCommand }>
}

/** Every top-level command, in the order `kupgrade --help` lists them. Add one entry per command. */
export const commands: CommandEntry[] = [
  { name: 'validate', summary: 'check plans offline: schema and semantics, every problem as file:line:col', load: () => import('./validate.js') },
  { name: 'plan', summary: 'the dry-run: the exact ordered steps `apply` would run', load: () => import('./plan.js') },
  { name: 'apply', summary: 'execute a plan: stages, clusters, nodes in order, journaled, behind gates and the cluster lock', load: () => import('./apply.js') },
  { name: 'resume', summary: 'continue an interrupted, paused or waiting run from its journal', load: () => import('./resume.js') },
  { name: 'rollback', summary: "undo a run's changed nodes, newest first, back at their old versions, post-gates re-run", load: () => import('./rollback.js') },
  { name: 'restore', summary: "rebuild a cluster from a hop's pre-hop backup, every node back at its old version (prints the steps; runs them with --yes)", load: () => import('./restore.js') },
  { name: 'status', summary: 'show a run from its journal', load: () => import('./status.js') },
  { name: 'runs', summary: 'list the runs recorded next to a plan', load: () => import('./runs.js') },
  { name: 'check', summary: "a health report: the plan's pre-gates, read-only, with evidence; exit 3 when one fails", load: () => import('./check.js') },
  { name: 'inventory', summary: 'read the live facts of every node: versions, OS, kernel, iptables, disk, reboot-required', load: () => import('./inventory.js') },
  { name: 'schema', summary: "print the plan's JSON Schema", load: () => import('./schema.js') },
  { name: 'lab', summary: 'run a simulated fleet (API servers + SSH nodes on loopback): up, down, status, fault', load: () => import('./lab.js') },
  { name: 'demo', summary: 'start the demo lab, show the dry-run of its plan, apply it staging → production, tear it down', load: () => import('./demo.js') },
]
