import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KUBECTL, smallTopology } from './helpers.js'

/** `kupgrade lab up --detach / status / fault / down` end to end through the built CLI (npm run build first). */
const BIN = join(process.cwd(), 'bin/kupgrade.js')
const kupgrade = (args: string[]) => execa(process.execPath, [BIN, ...args], { reject: false, timeout: 90_000, env: { NO_COLOR: '1' } })

/** A command on w-1 through the real OpenSSH client, with the lab's key and known_hosts (host keys checked). */
const sshOn = (labDir: string, host: string, command: string) => execa('ssh', ['-i', join(labDir, 'id_ed25519'), '-o', `UserKnownHostsFile=${join(labDir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-F', '/dev/null', '-p', '2222', `root@${host}`, command], { reject: false, timeout: 30_000 })

describe('kupgrade lab (CLI)', () => {
  let dir: string
  let labDir: string
  let pid = 0
  const sshW1 = (command: string) => sshOn(labDir, '127.0.33.111', command)
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kupgrade-lab-cli-'))
    labDir = join(dir, 'lab')
    await writeFile(join(dir, 'topology.yaml'), stringify(smallTopology('127.0.33')))
  })
  afterAll(async () => {
    // Never leave a lab behind, even when a test failed half-way: stop the pid this suite started.
    if (pid && existsSync(join(labDir, 'lab.json'))) {
      try { process.kill(pid, 'SIGTERM') } catch { /* already gone */ }
    }
    await rm(dir, { recursive: true, force: true })
  })

  it('up --detach starts the lab in the background and returns once it is ready', async () => {
    const r = await kupgrade(['lab', 'up', '--topology', join(dir, 'topology.yaml'), '--dir', labDir, '--detach'])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toContain('lab "test" is up')
    const state = JSON.parse(await readFile(join(labDir, 'lab.json'), 'utf8')) as { pid: number; clusters: { api: string }[] }
    pid = state.pid
    expect(state.clusters[0]!.api).toBe('https://127.0.33.1:6443')
    expect(Number((await readFile(join(labDir, 'lab.pid'), 'utf8')).trim())).toBe(pid)
    for (const f of ['kubeconfig', 'known_hosts', 'id_ed25519', 'plan.yaml']) expect(existsSync(join(labDir, f)), f).toBe(true)
    expect((await readFile(join(labDir, 'plan.yaml'), 'utf8')).split('\n')[0]).toMatch(/^# yaml-language-server: \$schema=/)
  })

  it('a second up in the same directory is refused', async () => {
    const r = await kupgrade(['lab', 'up', '--topology', join(dir, 'topology.yaml'), '--dir', labDir, '--detach'])
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toContain('a lab is already running')
  })

  it('the written plan is valid for kupgrade validate', async () => {
    const r = await kupgrade(['validate', join(labDir, 'plan.yaml')])
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0)
  })

  it('status shows clusters, nodes, versions and readiness', async () => {
    const r = await kupgrade(['lab', 'status', '--dir', labDir])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/lab \(kubeadm\)\s+cp-1\s+control-plane\s+v1\.29\.6\s+Ready/)
    expect(r.stdout).toMatch(/w-2\s+worker\s+v1\.29\.6\s+Ready/)
  })

  it('from inside the lab directory (where its plan is run), the lab commands find it without --dir', async () => {
    const inside = await execa(process.execPath, [BIN, 'lab', 'status'], { cwd: labDir, reject: false, timeout: 90_000, env: { NO_COLOR: '1' } })
    expect(inside.exitCode, inside.stderr).toBe(0)
    expect(inside.stdout).toMatch(/w-2\s+worker\s+v1\.29\.6\s+Ready/)
    // Elsewhere, with no lab in ./.kupgrade/lab, it is still an error naming where it looked.
    const elsewhere = await execa(process.execPath, [BIN, 'lab', 'status'], { cwd: dir, reject: false, timeout: 90_000, env: { NO_COLOR: '1' } })
    expect(elsewhere.exitCode).toBe(1)
    expect(elsewhere.stderr).toContain(`no lab is running in ${join(dir, '.kupgrade/lab')}`)
  })

  it('fault add shows in status, in kubectl, and fault clear removes it', async () => {
    const add = await kupgrade(['lab', 'fault', 'add', 'lab/w-1', 'disk-full', '--dir', labDir])
    expect(add.exitCode, add.stderr).toBe(0)
    expect((await kupgrade(['lab', 'status', '--dir', labDir])).stdout).toMatch(/w-1 .*disk-full/)
    expect((await kupgrade(['lab', 'fault', 'list', '--dir', labDir])).stdout).toContain('lab/w-1\tdisk-full')
    const k = await execa(KUBECTL, ['--kubeconfig', join(labDir, 'kubeconfig'), '--cache-dir', join(dir, 'kc'), 'get', 'node', 'w-1', '-o', 'jsonpath={.status.conditions[?(@.type=="DiskPressure")].status}'], { env: { HOME: dir }, timeout: 30_000 })
    expect(k.stdout).toBe('True')
    const clear = await kupgrade(['lab', 'fault', 'clear', 'lab/w-1', 'disk-full', '--dir', labDir])
    expect(clear.stdout).toContain('fault disk-full cleared on lab/w-1')
    expect((await kupgrade(['lab', 'fault', 'list', '--dir', labDir])).stdout).toContain('no active faults')
  })

  it('fault add rejects unknown faults and targets with a usage error', async () => {
    const bad = await kupgrade(['lab', 'fault', 'add', 'lab/w-1', 'disk-ful', '--dir', labDir])
    expect(bad.exitCode).toBe(2)
    expect(bad.stderr).toContain('unknown fault "disk-ful"')
    const noNode = await kupgrade(['lab', 'fault', 'add', 'lab/w-9', 'disk-full', '--dir', labDir])
    expect(noNode.exitCode).toBe(1)
    expect(noNode.stderr).toContain('no node "w-9"')
  })

  it('down stops the lab and removes lab.json', async () => {
    // Something the next lab in this dir must not find (see 'up again in the same directory').
    expect((await sshW1('echo kept > /root/left-behind; systemctl stop kubelet')).exitCode).toBe(0)
    const r = await kupgrade(['lab', 'down', '--dir', labDir])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toContain('lab "test" stopped')
    expect(existsSync(join(labDir, 'lab.json'))).toBe(false)
    const status = await kupgrade(['lab', 'status', '--dir', labDir])
    expect(status.exitCode).toBe(1)
    expect(status.stderr).toContain('no lab is running')
  })

  it('up again in the same directory makes a fresh lab: nothing of the last one is left on its nodes', async () => {
    // Each up makes a new CA, cluster token and keys and API objects at the topology's versions; node roots the last
    // lab left (a k3s agent with the old token, a binary it upgraded) would disagree with them.
    const r = await kupgrade(['lab', 'up', '--topology', join(dir, 'topology.yaml'), '--dir', labDir, '--detach'])
    expect(r.exitCode, r.stderr).toBe(0)
    pid = (JSON.parse(await readFile(join(labDir, 'lab.json'), 'utf8')) as { pid: number }).pid
    const w1 = await sshW1('test -e /root/left-behind && echo left || echo gone; systemctl is-active kubelet')
    expect(w1.stdout).toBe('gone\nactive')
    expect((await kupgrade(['lab', 'status', '--dir', labDir])).stdout).toMatch(/w-1\s+worker\s+v1\.29\.6\s+Ready/)
    expect((await kupgrade(['lab', 'down', '--dir', labDir])).exitCode).toBe(0)
  })

  it('up in the foreground runs until interrupted, then cleans up', async () => {
    const fg = join(dir, 'fg')
    await writeFile(join(dir, 'fg.yaml'), stringify(smallTopology('127.0.38')))
    const child = execa(process.execPath, [BIN, 'lab', 'up', '--api-only', '--topology', join(dir, 'fg.yaml'), '--dir', fg], { reject: false, timeout: 60_000 })
    const deadline = Date.now() + 30_000
    while (!existsSync(join(fg, 'lab.json')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    expect(existsSync(join(fg, 'lab.json'))).toBe(true)
    child.kill('SIGINT')
    const r = await child
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toContain('lab "test" is up')
    expect(r.stdout).toContain('lab stopped')
    expect(existsSync(join(fg, 'lab.json'))).toBe(false)
  })
})
