/**
 * The one place where remote command lines are built. Everything kupgrade sends to a node's shell goes through
 * `shellJoin`: each argument is wrapped in POSIX single quotes, inside which the shell interprets nothing, and an
 * embedded `'` becomes `'\''` (close, escaped quote, reopen). So a node name, a path or a version containing spaces,
 * `;`, `$()`, backticks, globs, newlines or a leading dash reaches the remote program as one literal argument.
 */

/**
 * Words that never need quoting; keeping them bare makes logged commands readable. A leading `=` is excluded
 * because zsh (a possible login shell on a node) expands `=word` to the path of the command `word`.
 */
const SAFE = /^[A-Za-z0-9_@%+:,./-][A-Za-z0-9_@%+=:,./-]*$/

export function shellQuote(arg: string): string {
  // A leading dash is safe for the shell; whether a program treats it as an option is the caller's `--` business.
  return arg !== '' && SAFE.test(arg) ? arg : singleQuote(arg)
}

/** Always single-quoted, even a safe word: for generated scripts that are read back by pattern (`KEY='value'`). */
export const singleQuote = (arg: string): string => `'${arg.replaceAll("'", `'\\''`)}'`

/** argv → one shell command line. */
export const shellJoin = (argv: readonly string[]): string => {
  if (argv.length === 0) throw new TypeError('shellJoin: empty argv')
  return argv.map(shellQuote).join(' ')
}

/** A command as the transport accepts it: an argv array (preferred, quoted here) or a trusted script built by kupgrade. */
export type RemoteCommand = readonly string[] | { script: string }

export const commandLine = (cmd: RemoteCommand): string => ('script' in cmd ? cmd.script : shellJoin(cmd))

/**
 * Wraps a command for a non-root user. `-n` makes sudo fail instead of prompting (there is no TTY to answer a
 * password prompt), and a script runs under `sh -c` so that sudo covers all of it, not just its first word.
 */
export function withSudo(cmd: RemoteCommand): string {
  if ('script' in cmd) return shellJoin(['sudo', '-n', '--', 'sh', '-c', cmd.script])
  return shellJoin(['sudo', '-n', '--', ...cmd])
}
