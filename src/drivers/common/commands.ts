import { commandLine, shellJoin, shellQuote, type RemoteCommand } from '../../transport/quote.js'
import type { Check, Command } from '../program.js'

/**
 * Small constructors for the command data drivers return. Everything sent to a shell is an argv (quoted by
 * transport/quote.ts); the few steps that need shell logic (a pipe, a branch) are scripts built here from argvs and
 * `shellQuote`d words only, never from raw strings.
 */

export const onNode = (argv: readonly string[], why: string, extra: Partial<Extract<Command, { on: 'node' }>> = {}): Command => ({ on: 'node', command: argv, why, ...extra })

export const script = (lines: readonly string[], why: string, extra: Partial<Extract<Command, { on: 'node' }>> = {}): Command => ({ on: 'node', command: { script: lines.join('\n') }, why, ...extra })

export const kubectl = (args: readonly string[], why: string, timeoutMs?: number): Command => ({ on: 'kubectl', args, why, ...(timeoutMs !== undefined ? { timeoutMs } : {}) })

/** A read-only check on the node (never through sudo unless the file is root-only). */
export const nodeCheck = (argv: readonly string[], describe: string, expect: Check['expect'], extra: { privileged?: boolean; okExitCodes?: number[]; at?: 'peer-control-plane' | 'first-control-plane' } = {}): Check => ({
  read: { on: 'node', command: argv, why: `check: ${describe}`, privileged: extra.privileged ?? false, ...(extra.okExitCodes ? { okExitCodes: extra.okExitCodes } : {}), ...(extra.at ? { at: extra.at } : {}) },
  describe,
  expect,
})

export const kubectlCheck = (args: readonly string[], describe: string, expect: Check['expect']): Check => ({ read: { on: 'kubectl', args, why: `check: ${describe}` }, describe, expect })

/** `a && b && c` from argvs, for the inside of a script. */
export const and = (...argvs: readonly (readonly string[])[]): string => argvs.map(shellJoin).join(' && ')

export const q = shellQuote

/** The command line a person would type, for titles: `k3s etcd-snapshot save --name …`. */
export const line = (c: Command): string => (c.on === 'kubectl' ? shellJoin(['kubectl', ...c.args]) : commandLine(c.command as RemoteCommand))

/** A regex source that matches `text` literally. */
export const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** Where kupgrade keeps what it backs up on a node before a hop: one directory per version the node is leaving. */
export const backupDir = (fromRelease: string): string => `/var/lib/kupgrade/backup/${fromRelease}`

/** Where the executor keeps a cluster backup's copies, next to the plan (executor/backup-copy.ts), as titles name it. */
export const OFF_NODE = '.kupgrade/backups/'

/** The checksum list `backup-files` writes and verifies (`sha256sum -c`), relative to the copies in `<dir>/files`. */
export const SUMS = 'SHA256SUMS'
