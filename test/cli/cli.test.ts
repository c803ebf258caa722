import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { Command } from 'commander'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { commands } from '../../src/cli/commands/index.js'
import { main } from '../../src/cli/main.js'
import { ensureBuilt } from '../helpers/built.js'

/** The real CLI as a child process (`node bin/kupgrade.js`, which runs dist/bundle/; built if stale: ensureBuilt). */
const root = join(import.meta.dirname, '..', '..')
const bin = join(root, 'bin', 'kupgrade.js')
const ANSI = /\u001b\[/
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }

function kupgrade(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [bin, ...args], { cwd: opts.cwd ?? root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '', ...opts.env }, timeout: 30_000 })
}

let tmp: string
beforeAll(() => {
  ensureBuilt()
  tmp = mkdtempSync(join(tmpdir(), 'kupgrade-cli-'))
}, 120_000)
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

/** Every command path (`lab up`, `lab fault add`, …) and its long options, from the modules as registered. */
async function commandTree(): Promise<{ path: string[]; options: string[] }[]> {
  const out: { path: string[]; options: string[] }[] = []
  const walk = (cmd: Command, path: string[]) => {
    out.push({ path, options: cmd.options.map((o) => o.long!).filter(Boolean) })
    for (const sub of cmd.commands) if (sub.name() !== 'help') walk(sub, [...path, sub.name()])
  }
  for (const entry of commands) {
    const program = new Command('kupgrade')
    const ctx = { stdout: new PassThrough(), stderr: new PassThrough(), color: false, verbose: false, env: {}, cwd: root }
    ;(await entry.load()).register(program, ctx, () => {})
    const cmd = program.commands.find((c) => c.name() === entry.name)
    expect(cmd, `module for ${entry.name} registers a command of that name`).toBeDefined()
    walk(cmd!, [entry.name])
  }
  return out
}

describe('kupgrade --help and --version', () => {
  it('top-level --help lists every command and the global options, exit 0', () => {
    const r = kupgrade(['--help'])
    expect(r.status).toBe(0)
    for (const c of commands) expect(r.stdout).toContain(`  ${c.name}`)
    for (const flag of ['--version', '--verbose', '--no-color', '--help']) expect(r.stdout).toContain(flag)
    expect(r.stdout).toContain('NO_COLOR')
  })

  it('--help on every registered command (and subcommand) exits 0 and lists its options', async () => {
    const tree = await commandTree()
    expect(tree.map((t) => t.path.join(' '))).toEqual(expect.arrayContaining(['validate', 'plan', 'schema']))
    for (const { path, options } of tree) {
      const r = kupgrade([...path, '--help'])
      expect(r.status, `kupgrade ${path.join(' ')} --help: ${r.stderr}`).toBe(0)
      expect(r.stdout).toContain(`Usage: kupgrade ${path.join(' ')}`)
      for (const o of options) expect(r.stdout, `kupgrade ${path.join(' ')} --help lists ${o}`).toContain(o)
      expect(r.stderr).toBe('')
    }
  })

  it('kupgrade help CMD is the same as CMD --help', () => {
    expect(kupgrade(['help', 'plan']).stdout).toBe(kupgrade(['plan', '--help']).stdout)
  })

  it('--version prints the package version, exit 0', () => {
    const r = kupgrade(['--version'])
    expect(r.status).toBe(0)
    expect(r.stdout).toBe(`${pkg.version}\n`)
  })
})

describe('usage errors exit 2 with a clear message', () => {
  it.each([
    [['frobnicate'], "error: unknown command 'frobnicate'\n"],
    [['frobnicate', 'extra', 'args'], "error: unknown command 'frobnicate'\n"],
    [['plna', 'examples/kubeadm-ha.yaml'], "error: unknown command 'plna'\n(Did you mean plan?)\n"],
    [['--verbose', 'valdiate', 'x.yaml'], "error: unknown command 'valdiate'\n(Did you mean validate?)\n"],
    [['help', 'nope'], "error: unknown command 'nope'\n"],
    [['--bogus'], "error: unknown option '--bogus'\n"],
    [['validate', '--bogus', 'examples/kubeadm-ha.yaml'], "error: unknown option '--bogus'\n"],
    [['plan', 'examples/kubeadm-ha.yaml', '--fromat', 'json'], "error: unknown option '--fromat'\n(Did you mean --format?)\n"],
    [['plan', 'examples/kubeadm-ha.yaml', '--format', 'yaml'], "error: option '--format <format>' argument 'yaml' is invalid. Allowed choices are text, markdown, json.\n"],
    [['plan'], "error: missing required argument 'plan'\n"],
    [['validate'], "error: missing required argument 'plan'\n"],
    [['schema', 'extra'], "error: too many arguments for 'schema'. Expected 0 arguments but got 1.\n"],
  ])('kupgrade %j', (args, stderr) => {
    const r = kupgrade(args)
    expect(r.status).toBe(2)
    expect(r.stderr).toBe(stderr)
    expect(r.stdout).toBe('')
  })
})

describe('validate and plan', () => {
  it('validate: exit 0 and "valid" for each example; warnings on stderr', () => {
    const r = kupgrade(['validate', 'examples/kubeadm-ha.yaml', 'examples/k3s-homelab.yaml'])
    expect(r.status).toBe(0)
    expect(r.stdout).toBe('examples/kubeadm-ha.yaml: valid\nexamples/k3s-homelab.yaml: valid\n')
    expect(r.stderr).toMatch(/^examples\/k3s-homelab\.yaml:\d+:\d+: warning: .*\n$/)
  })

  it('plan on an invalid plan: exit 2, file:line:col lines with no prefix, a hint, no stack trace', () => {
    const r = kupgrade(['plan', 'test/fixtures/plans/invalid/downgrade.yaml'])
    expect(r.status).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toBe(`${readFileSync(join(root, 'test/fixtures/plans/invalid/downgrade.expected'), 'utf8')}hint: fix the problems above; nothing was changed\n`)
  })

  it('plan --out FILE writes the file, prints only a note, and the file equals stdout of the same plan', () => {
    const out = join(tmp, 'plan.md')
    const r = kupgrade(['plan', 'examples/kubeadm-ha.yaml', '--format', 'markdown', '--out', out])
    expect(r.status).toBe(0)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(new RegExp(`^wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(\\d+ steps\\)\\n$`))
    expect(readFileSync(out, 'utf8')).toBe(kupgrade(['plan', 'examples/kubeadm-ha.yaml', '--format', 'markdown']).stdout)
  })

  it('plan --format json --out FILE: the file equals stdout, written in pieces with every character escaped', () => {
    const out = join(tmp, 'plan.json')
    // kubeadm-ha has 294 steps: three pieces of planJsonChunks.
    const r = kupgrade(['plan', 'examples/kubeadm-ha.yaml', '--format', 'json', '--out', out])
    expect(r.status).toBe(0)
    expect(r.stdout).toBe('')
    const stdout = kupgrade(['plan', 'examples/kubeadm-ha.yaml', '--format', 'json']).stdout
    expect(readFileSync(out, 'utf8')).toBe(stdout)
    expect((JSON.parse(stdout) as { steps: unknown[] }).steps.length).toBeGreaterThan(256)
  })

  it('plan --out FILE (text) never writes colour escapes into the file, even on a colour terminal', async () => {
    const out = join(tmp, 'plan.txt')
    const stdout = Object.assign(new PassThrough(), { isTTY: true })
    const code = await main(['node', 'kupgrade', 'plan', join(root, 'examples/kubeadm-ha.yaml'), '--out', out], { stdout, stderr: new PassThrough(), env: {} })
    expect(code).toBe(0)
    expect(readFileSync(out, 'utf8')).not.toMatch(ANSI)
  })

  it('plan --out into a missing directory: exit 2, one clear line', () => {
    const r = kupgrade(['plan', 'examples/kubeadm-ha.yaml', '--out', join(tmp, 'no', 'such', 'dir', 'x.txt')])
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/^error: cannot write .*x\.txt: ENOENT: no such file or directory/)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })
})

describe('schema', () => {
  it('prints JSON equal to plans/schema.json', () => {
    const r = kupgrade(['schema'])
    expect(r.status).toBe(0)
    const printed = JSON.parse(r.stdout) as unknown
    expect(printed).toEqual(JSON.parse(readFileSync(join(root, 'plans', 'schema.json'), 'utf8')))
    expect(r.stdout).toBe(readFileSync(join(root, 'plans', 'schema.json'), 'utf8'))
  })
})

describe('colour', () => {
  /** Runs main() in-process with a stdout that claims to be a terminal, so colour would be on by default. */
  async function onTty(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string }> {
    const chunks: Buffer[] = []
    const stdout = Object.assign(new PassThrough(), { isTTY: true })
    stdout.on('data', (c: Buffer) => chunks.push(c))
    const code = await main(['node', 'kupgrade', ...args], { stdout, stderr: new PassThrough(), env })
    return { code, out: Buffer.concat(chunks).toString('utf8') }
  }
  const planArgs = ['plan', join(root, 'examples/kubeadm-ha.yaml')]

  it('a terminal gets colour by default (so the checks below can fail)', async () => {
    const r = await onTty(planArgs)
    expect(r.code).toBe(0)
    expect(r.out).toMatch(ANSI)
  })

  it('NO_COLOR=1 turns colour off', async () => {
    const r = await onTty(planArgs, { NO_COLOR: '1' })
    expect(r.code).toBe(0)
    expect(r.out).not.toMatch(ANSI)
  })

  it('--no-color turns colour off, before or after the command', async () => {
    expect((await onTty(['--no-color', ...planArgs])).out).not.toMatch(ANSI)
    expect((await onTty([...planArgs, '--no-color'])).out).not.toMatch(ANSI)
  })

  it('a pipe never gets colour, and NO_COLOR / --no-color output is identical to it', () => {
    const piped = kupgrade(['plan', 'examples/kubeadm-ha.yaml'])
    expect(piped.stdout).not.toMatch(ANSI)
    expect(kupgrade(['plan', 'examples/kubeadm-ha.yaml'], { env: { NO_COLOR: '1' } }).stdout).toBe(piped.stdout)
    expect(kupgrade(['--no-color', 'plan', 'examples/kubeadm-ha.yaml']).stdout).toBe(piped.stdout)
  })

  it('a real terminal (script(1) pty): colour by default, none with NO_COLOR or --no-color', () => {
    const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0
    if (!hasScript) return // util-linux script is not on every machine; the in-process checks above still run
    const viaPty = (cmd: string, env: NodeJS.ProcessEnv = {}) =>
      spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '', ...env } }).stdout
    const node = JSON.stringify(process.execPath)
    expect(viaPty(`${node} bin/kupgrade.js plan examples/kubeadm-ha.yaml`)).toMatch(ANSI)
    expect(viaPty(`${node} bin/kupgrade.js plan examples/kubeadm-ha.yaml`, { NO_COLOR: '1' })).not.toMatch(ANSI)
    expect(viaPty(`${node} bin/kupgrade.js --no-color plan examples/kubeadm-ha.yaml`)).not.toMatch(ANSI)
  })
})
