import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { stringify } from 'yaml'
import { afterAll, describe, expect, it } from 'vitest'
import { smallTopology } from '../helpers.js'
import { nodesForThisFile, sshExec, waitFor } from './helpers.js'

/** A second lab process: `kupgrade lab up` from the build (npm run build first), in the foreground. */
const BIN = join(process.cwd(), 'bin/kupgrade.js')
const node = nodesForThisFile()
const buildVersion = (text: string) => /kubernetes_build_info\{.*git_version="([^"]+)"/.exec(text)?.[1]
const METRICS = '/usr/bin/curl -s http://127.0.0.1:10249/metrics | grep kubernetes_build_info{'

describe('two lab processes share the machine\'s 127.0.0.1 ports (local-ports.ts: one broker per network namespace)', () => {
  let dir = ''
  let other: ReturnType<typeof execa> | undefined
  afterAll(async () => {
    other?.kill('SIGKILL')
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('a node keeps its own 127.0.0.1:10249 for real curl while the lab process that came first stops', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kupgrade-two-labs-'))
    const labDir = join(dir, 'lab')
    await writeFile(join(dir, 'topology.yaml'), stringify(smallTopology('127.0.116', { distribution: 'k3s', workers: 0 })))
    // The other lab starts first: with a broker inside a lab process, it would be the one holding 127.0.0.1:10249.
    other = execa(process.execPath, [BIN, 'lab', 'up', '--topology', join(dir, 'topology.yaml'), '--dir', labDir], { reject: false, timeout: 90_000, env: { NO_COLOR: '1' } })
    await waitFor('the other lab to be up', () => existsSync(join(labDir, 'lab.json')) || (other!.exitCode !== null && other!.exitCode !== undefined ? 'exited' : undefined), 60_000)
    expect(existsSync(join(labDir, 'lab.json')), 'the other lab did not start').toBe(true)
    const mine = await node({ address: '127.0.117.1', name: 'b-1' })

    // Real curl on each lab's node reaches its own kube-proxy (real OpenSSH into the other lab's node).
    const theirs = await execa('ssh', ['-i', join(labDir, 'id_ed25519'), '-o', `UserKnownHostsFile=${join(labDir, 'known_hosts')}`, '-o', 'BatchMode=yes',
      '-p', '2222', 'root@127.0.116.101', METRICS], { reject: false, timeout: 30_000 })
    expect(theirs.exitCode, theirs.stderr).toBe(0)
    expect(buildVersion(theirs.stdout)).toBe('v1.29.6+k3s1')
    expect(buildVersion((await sshExec(mine.node, METRICS)).stdout)).toBe('v1.29.2+k3s1')

    // My node queries 127.0.0.1:10249 in a loop (each answer's HTTP code and curl's exit code to a file in its
    // /tmp) while the other lab stops; the loop ends when the test drops /tmp/stop in the node.
    const codes = join(mine.node.paths.root, 'tmp/codes')
    const lines = () => (existsSync(codes) ? readFileSync(codes, 'utf8').split('\n').filter(Boolean) : [])
    const loop = sshExec(mine.node, 'while [ ! -e /tmp/stop ]; do c=$(/usr/bin/curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:10249/metrics); echo "$c rc=$?" >> /tmp/codes; done', { timeoutMs: 90_000 })
    await waitFor('queries before the other lab stops', () => lines().length >= 5, 30_000)
    other.kill('SIGINT')
    const r = await other
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0)
    expect(r.stdout).toContain('lab stopped')
    const atExit = lines().length
    await waitFor('queries after the other lab stopped', () => lines().length >= atExit + 30, 30_000)
    writeFileSync(join(mine.node.paths.root, 'tmp/stop'), '')
    expect((await loop).code).toBe(0)
    const all = lines()
    expect(all.length).toBeGreaterThan(atExit + 30 - 1)
    expect(all.filter((l) => l !== '200 rc=0'), `${all.length} queries`).toEqual([])
  })
})
