import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { FileScan } from '../../src/lab/recorder/file-scan.js'

/** The recorder's view of a node's files (what a command changed), on a bare node root. */
describe('FileScan', () => {
  let root = ''
  afterEach(() => rmSync(root, { recursive: true, force: true }))
  const at = (rel: string) => join(root, rel)

  it('sees files created under a watched path that was absent at the baseline, then modified and deleted', () => {
    root = mkdtempSync(join(tmpdir(), 'kupgrade-scan-'))
    mkdirSync(at('usr/local/bin'), { recursive: true })
    writeFileSync(at('usr/local/bin/k3s'), 'v1.29.6+k3s1')
    const scan = new FileScan(root)
    scan.baseline()
    expect(scan.diff()).toEqual([])

    // etc/rancher did not exist at the baseline (the node is not k3s-configured yet).
    mkdirSync(at('etc/rancher/k3s'), { recursive: true })
    writeFileSync(at('etc/rancher/k3s/config.yaml'), 'token: x\n')
    writeFileSync(at('usr/local/bin/k3s'), 'v1.30.4+k3s1')
    expect(scan.diff()).toEqual([
      { rel: 'etc/rancher/k3s/config.yaml', change: 'created' },
      { rel: 'usr/local/bin/k3s', change: 'modified' },
    ])

    // Touched with the same content: no change; a new mode is one; a symlink's target is its content.
    utimesSync(at('etc/rancher/k3s/config.yaml'), new Date(), new Date(Date.now() + 5_000))
    expect(scan.diff()).toEqual([])
    chmodSync(at('usr/local/bin/k3s'), 0o755)
    symlinkSync('/usr/local/bin/k3s', at('usr/local/bin/kubectl'))
    expect(scan.diff()).toEqual([
      { rel: 'usr/local/bin/k3s', change: 'modified' },
      { rel: 'usr/local/bin/kubectl', change: 'created' },
    ])

    rmSync(at('etc/rancher'), { recursive: true })
    expect(scan.diff()).toEqual([{ rel: 'etc/rancher/k3s/config.yaml', change: 'deleted' }])
    // Outside the watched paths nothing is seen.
    mkdirSync(at('home/ops'), { recursive: true })
    writeFileSync(at('home/ops/notes'), 'x')
    expect(scan.diff()).toEqual([])
  })

  it('reports package state kept in lab/state as its own path', () => {
    root = mkdtempSync(join(tmpdir(), 'kupgrade-scan-'))
    const scan = new FileScan(root)
    scan.baseline()
    mkdirSync(at('lab/state'), { recursive: true })
    writeFileSync(at('lab/state/apt-holds'), 'kubeadm\n')
    expect(scan.diff()).toEqual([{ rel: 'lab/state/apt-holds', change: 'created' }])
  })
})
