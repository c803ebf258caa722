/** What every command gets from the global flags, so commands never read process.argv or env for these. */
export interface CliContext {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number }
  stderr: NodeJS.WritableStream & { isTTY?: boolean }
  color: boolean
  verbose: boolean
  env: NodeJS.ProcessEnv
  cwd: string
}

export const wantsColor = (opts: { color?: boolean }, env: NodeJS.ProcessEnv, stream: { isTTY?: boolean }): boolean =>
  opts.color !== false && !('NO_COLOR' in env && env.NO_COLOR !== '') && Boolean(stream.isTTY)
