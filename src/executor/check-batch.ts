import { randomBytes } from 'node:crypto'
import { commandLine, type RemoteCommand } from '../transport/quote.js'

/**
 * A step's node checks on one node, read in one SSH command instead of one each: every verify reads all of a step's
 * checks (before its commands and after them), and a channel, a session and a shell per check were most of what a
 * verify cost a node. Each command runs in its own subshell with no stdin and its stderr dropped (a check reads its
 * stdout and exit code only), one after the other; its output is framed by markers carrying a random nonce, so no
 * output a node prints can pass for a marker.
 */
export interface BatchedReads {
  script: RemoteCommand
  /** Each command's stdout and exit code, in order; undefined for one the output does not frame (cut short). */
  parse(stdout: string): ({ stdout: string; exitCode: number } | undefined)[]
}

export function batchReads(commands: readonly RemoteCommand[], nonce = randomBytes(8).toString('hex')): BatchedReads {
  const mark = (i: number) => `@@kupgrade-${nonce}-${i}`
  const script = commands
    .map((c, i) => `printf '%s\\n' '${mark(i)}'\n(\n${commandLine(c)}\n) </dev/null 2>/dev/null\nprintf '\\n%s %s\\n' '${mark(i)}-exit' "$?"`)
    .join('\n')
  return {
    script: { script },
    parse: (stdout) => commands.map((_, i) => {
      const begin = stdout.indexOf(`${mark(i)}\n`)
      if (begin === -1) return undefined
      const from = begin + mark(i).length + 1
      const end = stdout.indexOf(`\n${mark(i)}-exit `, from)
      if (end === -1) return undefined
      const code = /^(\d+)\n/.exec(stdout.slice(end + mark(i).length + 7))
      return code ? { stdout: stdout.slice(from, end), exitCode: Number(code[1]) } : undefined
    }),
  }
}
