import { Writable } from 'node:stream'
import { main } from '../../src/cli/main.js'

/** Runs the kupgrade CLI in this process (so lab servers started by the test keep answering) and captures its output. */
export async function runCli(args: string[], o: { env: NodeJS.ProcessEnv; cwd: string }): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const sink = (add: (s: string) => void) => new Writable({ write(c, _e, cb) { add(String(c)); cb() } })
  const code = await main(['node', 'kupgrade', ...args], { stdout: sink((s) => (out += s)), stderr: sink((s) => (err += s)), env: o.env, cwd: o.cwd })
  return { code, out, err }
}
