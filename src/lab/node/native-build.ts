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
function sourceFile(name: string): string {
  for (const rel of [`./native/${name}`, `../../../src/lab/node/native/${name}`]) {
    const f = fileURLToPath(new URL(rel, import.meta.url))
    if (existsSync(f)) return f
  }
  throw new Error(`lab node: native/${name} not found`)
}

interface NativeSpec {
  /** The C file in native/. */
  source: string
  kind: 'shared-object' | 'program'
  /** What a lab without it would get wrong, when the interop suite (KUPGRADE_REQUIRE_INTEROP) must refuse to run;
   *  undefined where the lab has an equivalent fallback. */
  requiredBecause?: string
}

const built = new Map<string, Promise<string | undefined>>()

/**
 * A native part of the lab, built once per machine with the C compiler into a file named by the source's hash.
 * Undefined without a compiler (the caller falls back or does without); under KUPGRADE_REQUIRE_INTEROP a part with
 * `requiredBecause` fails instead.
 */
function buildNative(spec: NativeSpec): Promise<string | undefined> {
  let done = built.get(spec.source)
  if (done) return done
  done = (async () => {
    const src = sourceFile(spec.source)
    const hash = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 16)
    const base = spec.source.replace(/\.c$/, '')
    const out = join(tmpdir(), `kupgrade-lab-${base}-${hash}${spec.kind === 'shared-object' ? '.so' : ''}`)
    if (existsSync(out)) return out
    const part = `${out}.${process.pid}.part`
    const flags = spec.kind === 'shared-object' ? ['-shared', '-fPIC', '-o', part, src, '-ldl'] : ['-o', part, src]
    try {
      await run(process.env['CC'] || 'cc', ['-O2', ...flags], { timeout: 60_000 })
      renameSync(part, out)
      return out
    } catch (err) {
      rmSync(part, { force: true })
      if (spec.requiredBecause && process.env['KUPGRADE_REQUIRE_INTEROP'] === '1') {
        throw new KupgradeError(`the lab could not build ${src}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, {
          hint: `install a C compiler (apt-get install gcc libc6-dev): ${spec.requiredBecause}`,
        })
      }
      return undefined
    }
  })()
  built.set(spec.source, done)
  return done
}

/**
 * The node's network for every program, not only the stand-ins (native/vip-connect.c): the shared object each node
 * command preloads. Without it only the stand-ins (curl, wget, kubectl, nslookup) see the API VIP fault, and bash
 * `/dev/tcp` reaches the VIP under it — a lab more forgiving than a node.
 */
export const vipShim = (): Promise<string | undefined> =>
  buildNative({ source: 'vip-connect.c', kind: 'shared-object', requiredBecause: 'without it bash /dev/tcp on a lab node reaches the API VIP even under api-vip-unreachable' })

/** Whether the built entry program runs here: without arguments it prints its usage and exits 125. */
let enterRuns: Promise<boolean> | undefined

/**
 * How every command enters its node (native/lab-enter.c): namespace, mounts and bash in one program. Without a
 * compiler, or where the temporary directory does not allow running programs (noexec), the lab does the same with
 * unshare, mount and bash (exec.ts), only slower.
 */
export async function enterProgram(): Promise<string | undefined> {
  const program = await buildNative({ source: 'lab-enter.c', kind: 'program' })
  if (!program) return undefined
  enterRuns ??= run(program, []).then(() => false, (err: { code?: unknown }) => err.code === 125)
  return (await enterRuns) ? program : undefined
}
