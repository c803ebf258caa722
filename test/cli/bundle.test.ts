import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt } from '../helpers/built.js'

/**
 * bin/kupgrade.js runs dist/bundle/ (scripts/bundle.mjs), not the few hundred modules of dist/: these tests catch a
 * launcher or build that falls back to them, a bundle that behaves differently from the modules it was made from, and
 * a bundled module whose `import.meta.url` no longer finds the files beside its compiled twin.
 */
const root = join(import.meta.dirname, '..', '..')
const bin = join(root, 'bin', 'kupgrade.js')
const example = join(root, 'examples', 'kubeadm-ha.yaml')
let tmp: string

beforeAll(() => {
  ensureBuilt()
  tmp = mkdtempSync(join(tmpdir(), 'kupgrade-bundle-'))
}, 120_000)
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

/** Runs `node [--import hook] SCRIPT ARGS` and returns its output, with every ES module file it loaded when traced. */
function run(script: string[], args: string[], trace = false) {
  const log = join(tmp, `loaded-${Math.random().toString(36).slice(2)}.txt`)
  const hooks = join(tmp, 'hooks.mjs')
  const register = join(tmp, 'register.mjs')
  writeFileSync(hooks, `import { appendFileSync } from 'node:fs'\nexport async function load(url, context, next) { if (url.startsWith('file:')) appendFileSync(${JSON.stringify(log)}, url + '\\n'); return next(url, context) }\n`)
  writeFileSync(register, `import { register } from 'node:module'\nregister(${JSON.stringify(pathToFileURL(hooks).href)})\n`)
  const r = spawnSync(process.execPath, [...(trace ? ['--import', register] : []), ...script, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 })
  const loaded = trace && existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').map((u) => u.replace(pathToFileURL(root).href + '/', '')) : []
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, loaded }
}

/** The same CLI from dist/'s modules, unbundled. */
const unbundled = ['--input-type=module', '-e', `const { main } = await import(${JSON.stringify(pathToFileURL(join(root, 'dist', 'cli', 'main.js')).href)}); process.exitCode = await main(['node', 'kupgrade', ...process.argv.slice(1)])`, '--']

describe('the bundled CLI', () => {
  it('runs `plan` from dist/bundle alone: none of dist/’s modules, no zod module from node_modules', () => {
    const r = run([bin], ['plan', example, '--format', 'json'], true)
    expect(r.status, r.stderr).toBe(0)
    const ours = r.loaded.filter((u) => !u.startsWith('node_modules/'))
    expect(ours.length).toBeGreaterThan(1)
    expect(ours.filter((u) => u !== 'bin/kupgrade.js' && !u.startsWith('dist/bundle/'))).toEqual([])
    expect(r.loaded.filter((u) => u.startsWith('node_modules/zod/'))).toEqual([])
  })

  it.each([
    ['plan json', ['plan', example, '--format', 'json']],
    ['plan text', ['plan', example]],
    ['plan markdown', ['plan', example, '--format', 'markdown']],
    ['validate', ['validate', example]],
    ['an invalid plan', ['validate', join(root, 'package.json')]],
    ['schema', ['schema']],
    ['--help', ['--help']],
    ['--version', ['--version']],
  ])('%s: the same output and exit code as the unbundled modules', (_name, args) => {
    const a = run([bin], args)
    const b = run(unbundled, args)
    expect(a.status).toBe(b.status)
    expect(a.stdout).toBe(b.stdout)
    expect(a.stderr).toBe(b.stderr)
    expect(a.stdout.length + a.stderr.length).toBeGreaterThan(0)
  })

  it('carries zod with its English locale alone, which zod still uses for its own messages', async () => {
    const dir = join(root, 'dist', 'bundle')
    const chunks = readdirSync(dir).filter((n) => n.endsWith('.js'))
    const zodChunk = chunks.find((f) => readFileSync(join(dir, f), 'utf8').includes('// node_modules/zod/v4/core/core.js'))
    expect(zodChunk).toBeDefined()
    const text = readFileSync(join(dir, zodChunk!), 'utf8')
    expect([...text.matchAll(/^\/\/ node_modules\/zod\/v4\/locales\/([^\n]+)$/gm)].map((m) => m[1])).toEqual(['en.js'])
    // The chunk exports zod's namespace under a minified name: find the export whose value has `locales`.
    const mod = await import(pathToFileURL(join(dir, zodChunk!)).href)
    const z = Object.values(mod).find((v) => typeof v === 'object' && v !== null && 'locales' in v && 'string' in v) as typeof import('zod')
    expect(Object.keys(z.locales)).toEqual(['en'])
    const r = z.string().safeParse(5)
    expect(r.success ? '' : r.error.issues[0]!.message).toBe('Invalid input: expected string, received number')
  })

  it('points every bundled import.meta.url back at its compiled module, which exists beside the bundle', () => {
    const dir = join(root, 'dist', 'bundle')
    const owners = new Set<string>()
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.js'))) {
      const text = readFileSync(join(dir, f), 'utf8')
      // The banner's createRequire is the chunk's own; every other import.meta.url is wrapped by the build.
      const bare = text.replace(/^import \{ createRequire as __kupgradeCreateRequire \}[^\n]*\n/, '').split('import.meta.url').length - 1
      const wrapped = [...text.matchAll(/new URL\("\.\.\/([^"]+)", import\.meta\.url\)\.href/g)].map((m) => m[1]!)
      expect(bare, f).toBe(wrapped.length)
      for (const w of wrapped) owners.add(w)
    }
    // The lab's stand-ins and helper processes are found this way (the demo runs them from the bundle).
    expect([...owners]).toEqual(expect.arrayContaining(['lab/node/paths.js', 'lab/node/off-loop-spawn.js', 'cli/main.js']))
    for (const o of owners) expect(existsSync(join(root, 'dist', o)), o).toBe(true)
  })
})
