import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { KupgradeError } from '../../errors.js'

const run = promisify(execFile)

/** The C source next to this module's source (from dist/ it is found in the source tree, as the stand-ins are). */
function sourceFile(): string {
  for (const rel of ['./native/vip-connect.c', '../../../src/lab/node/native/vip-connect.c']) {
    const f = fileURLToPath(new URL(rel, import.meta.url))
    if (existsSync(f)) return f
  }
  throw new Error('lab node: native/vip-connect.c not found')
}

let built: Promise<string | undefined> | undefined

/**
 * The node's network for every program, not only the stand-ins (native/vip-connect.c): the shared object each node
 * command preloads, built once per machine with the C compiler into a file named by the source's hash. Undefined
 * without a compiler: then only the stand-ins (curl, wget, kubectl, nslookup) see the API VIP fault, and bash
 * `/dev/tcp` reaches the VIP under it — a lab more forgiving than a node, so the interop suite
 * (KUPGRADE_REQUIRE_INTEROP) refuses to run without it.
 */
export function vipShim(): Promise<string | undefined> {
  built ??= (async () => {
    const src = sourceFile()
    const hash = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 16)
    const out = join(tmpdir(), `kupgrade-lab-vip-connect-${hash}.so`)
    if (existsSync(out)) return out
    const part = `${out}.${process.pid}.part`
    try {
      await run(process.env['CC'] || 'cc', ['-O2', '-shared', '-fPIC', '-o', part, src, '-ldl'], { timeout: 60_000 })
      renameSync(part, out)
      return out
    } catch (err) {
      rmSync(part, { force: true })
      if (process.env['KUPGRADE_REQUIRE_INTEROP'] === '1') {
        throw new KupgradeError(`the lab could not build its node network shim (${src}): ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, {
          hint: 'install a C compiler (apt-get install gcc libc6-dev): without it bash /dev/tcp on a lab node reaches the API VIP even under api-vip-unreachable',
        })
      }
      return undefined
    }
  })()
  return built
}
