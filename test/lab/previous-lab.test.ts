import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { labStatePaths, replacePreviousLab } from '../../src/lab/previous-lab.js'
import { normalizeTopology } from '../../src/lab/topology.js'
import { smallTopology } from './helpers.js'

/** `lab up` in a dir an earlier lab used: what that lab made goes; nothing else does. */
describe('replacing the previous lab in a dir', () => {
  const dirs: string[] = []
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'kupgrade-previous-lab-'))
    dirs.push(d)
    return d
  }
  const put = (dir: string, rel: string, text = 'x\n') => {
    mkdirSync(join(dir, rel, '..'), { recursive: true })
    writeFileSync(join(dir, rel), text)
  }
  /** What a running lab of smallTopology leaves: node roots, its simulated etcd, a snapshot. */
  const runLab = (dir: string) => {
    for (const n of ['cp-1', 'w-1', 'w-2']) put(dir, `nodes/lab/${n}/lab/initialized`)
    put(dir, 'etcd-sim/lab/members')
    put(dir, 'datastore-snapshots/index.json')
  }
  const t = normalizeTopology(smallTopology('127.0.200'))

  it("removes the last lab's node roots, etcd and snapshots, and keeps the user's own files beside them", async () => {
    const dir = tmp()
    put(dir, 'nodes/inventory.ini', '[all]\n')
    put(dir, 'etcd/backup.db')
    await replacePreviousLab(dir, t)
    expect(existsSync(join(dir, 'nodes/inventory.ini'))).toBe(true)
    expect(JSON.parse(readFileSync(join(dir, '.kupgrade-lab.json'), 'utf8')).paths).toEqual(labStatePaths(t))
    runLab(dir)
    await replacePreviousLab(dir, t)
    expect(existsSync(join(dir, 'nodes/lab'))).toBe(false)
    expect(existsSync(join(dir, 'etcd-sim'))).toBe(false)
    expect(existsSync(join(dir, 'datastore-snapshots'))).toBe(false)
    expect(readFileSync(join(dir, 'nodes/inventory.ini'), 'utf8')).toBe('[all]\n')
    expect(existsSync(join(dir, 'etcd/backup.db'))).toBe(true)
  })

  it('a lab from before the list is known by its node roots', async () => {
    const dir = tmp()
    runLab(dir)
    await replacePreviousLab(dir, t)
    expect(existsSync(join(dir, 'nodes'))).toBe(false)
    expect(existsSync(join(dir, 'etcd-sim'))).toBe(false)
    // A folder with no lab node root in it is nobody's to remove.
    const mine = tmp()
    put(mine, 'nodes/web/host-1/facts.json')
    put(mine, 'etcd-sim/notes.txt')
    await replacePreviousLab(mine, t)
    expect(existsSync(join(mine, 'nodes/web/host-1/facts.json'))).toBe(true)
    expect(existsSync(join(mine, 'etcd-sim/notes.txt'))).toBe(true)
  })

  it('never follows a listed path out of the dir', async () => {
    const dir = tmp()
    const outside = tmp()
    put(outside, 'keep.txt')
    writeFileSync(join(dir, '.kupgrade-lab.json'), JSON.stringify({ paths: [`../${outside.split('/').pop()}`, outside, 'nodes/../../x'] }))
    await replacePreviousLab(dir, t)
    expect(existsSync(join(outside, 'keep.txt'))).toBe(true)
  })
})
