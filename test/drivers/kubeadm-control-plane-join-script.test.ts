import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { programFor } from '../../src/drivers/registry.js'
import type { Step } from '../../src/planner/types.js'

/**
 * The first script of a kubeadm control-plane join runs on another control-plane node under `sh` (dash on Debian):
 * upload-certs, then a join command made with the key it printed. sh has no pipefail, so a failing upload-certs must not
 * hide behind a pipe: whatever it printed, its failure stops the script before `kubeadm token create` runs. Run here
 * with the real sh and a kubeadm on PATH that records what it was asked.
 */
const KEY = 'a'.repeat(64)
let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kupgrade-cp-join-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const step = {
  id: 'kh/kh/hop1/kh-cp-2/rebuild/6-join-node', title: '', action: 'join-node', phase: 'control-plane', stage: 'kh', cluster: 'kh',
  hop: 1, node: 'kh-cp-2', role: 'control-plane', mutates: true, params: { kind: 'kubeadm-control-plane' },
} as unknown as Step

function runMake(uploadExit: number): { status: number | null; stdout: string; stderr: string; tokenCreated: boolean } {
  const make = programFor(step, { distribution: 'kubeadm' }).run[0]!
  if (make.on !== 'node' || typeof make.command !== 'object' || !('script' in make.command)) throw new Error('expected a node script')
  const bin = join(dir, `bin-${uploadExit}`)
  const created = join(dir, `token-created-${uploadExit}`)
  spawnSync('mkdir', ['-p', bin])
  // upload-certs prints its log and the key last, as kubeadm does, then exits with uploadExit.
  writeFileSync(join(bin, 'kubeadm'), [
    '#!/bin/sh',
    'case "$*" in',
    `  "init phase upload-certs --upload-certs") echo '[upload-certs] Using certificate key:'; echo ${KEY}; exit ${uploadExit} ;;`,
    `  "token create "*) touch '${created}'; echo "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:00 --control-plane --certificate-key $7" ;;`,
    'esac',
  ].join('\n'))
  chmodSync(join(bin, 'kubeadm'), 0o755)
  const r = spawnSync('sh', ['-c', make.command.script], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin` } })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, tokenCreated: existsSync(created) }
}

describe('kubeadm control-plane join: the upload-certs script on the peer', () => {
  it('makes the join command with the key upload-certs printed', () => {
    const r = runMake(0)
    expect(r.status, r.stderr).toBe(0)
    expect(r.tokenCreated).toBe(true)
    expect(r.stdout).toContain(`--control-plane --certificate-key ${KEY}`)
  })

  it('stops when upload-certs fails, even after printing a key: no join command is made', () => {
    const r = runMake(1)
    expect(r.status).not.toBe(0)
    expect(r.tokenCreated).toBe(false)
    expect(r.stdout).not.toContain('kubeadm join')
  })
})
