import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TopologyInput } from '../../src/lab/topology.js'
import { openSsh } from '../lab/helpers.js'
import { events, recoverOnFailure, startExecLab, type ExecLab } from './helpers.js'

/**
 * An air-gapped k3s fleet (`install.path`): no node reaches a registry, so each loads k3s's system images from the
 * release's k3s-airgap-images-<arch> archive in /var/lib/rancher/k3s/agent/images, which k3s imports at every start
 * (docs.k3s.io installation/airgap, "Manually Deploy Images"). k3s's own upgrade of such a node puts the new release's
 * archive there, takes the old one out, replaces the binary and restarts. kupgrade replaced only the binary: the
 * upgraded k3s started with the old release's images alone, and the new release's system pods could not be pulled.
 * Now the new archive comes from the same folder as the binary, checked against the same checksum list, before the
 * binary; the old one is kept with the hop's backup and put back by a rollback. A folder without it stops the node's
 * upgrade before anything is replaced, saying what to put there.
 */
const NET = '127.0.173'
const SERVER = `${NET}.11`
const AGENT = `${NET}.12`
const PI = `${NET}.13`
const IMAGES = '/var/lib/rancher/k3s/agent/images'
const KEPT = '/var/lib/kupgrade/backup/v1.29.6+k3s1/airgap-images'
const GITHUB = 'https://github.com/k3s-io/k3s/releases/download/v1.30.4%2Bk3s1'

const topology: TopologyInput = {
  apiVersion: 'kupgrade.dev/v1alpha1',
  kind: 'LabTopology',
  metadata: { name: 'airgap' },
  spec: {
    mirror: ['v1.29.6', 'v1.30.4'],
    timing: { serviceRestart: '100ms', readyDelay: '200ms', reboot: '300ms', drainEvictionDelay: '50ms' },
    clusters: [
      {
        name: 'vault', distribution: 'k3s', version: 'v1.29.6', apiAddress: `${NET}.1`,
        nodes: [
          { name: 'vault-server', role: 'control-plane', address: SERVER, airgapImages: true },
          { name: 'vault-agent', role: 'worker', address: AGENT, airgapImages: true },
          { name: 'vault-pi', role: 'worker', address: PI, arch: 'arm64', airgapImages: true },
        ],
        workloads: { deployments: [], daemonSets: [], coredns: { replicas: 1 } },
      },
    ],
  },
}

describe('apply on air-gapped k3s nodes that load their images from archives', () => {
  let l: ExecLab
  beforeAll(async () => {
    // Logged in as a user with sudo, as a site's operators are (the archives and the backup folder are root's).
    l = await startExecLab(topology, { nodeUsers: [{ name: 'ops', sudo: true }] })
  }, 90_000)
  afterAll(async () => l?.stop())
  const { ok, ssh } = openSsh(() => l)
  const state = (node: string) => l.lab.clusters.get('vault')!.nodes.get(node)!.getState()
  const archives = async (address: string, dir = IMAGES) => (await ok(address, `ls -1 ${dir}`)).trim().split('\n')
  const imagesRelease = async (address: string, file: string) => (await ok(address, `sed -n "s/^LAB_IMAGES_RELEASE='\\(.*\\)'$/\\1/p" ${file}`)).trim()

  it("the lab's k3s imports every archive in agent/images at start, and the release lists its archives beside its binary", async () => {
    expect(await archives(SERVER)).toEqual(['k3s-airgap-images-amd64.tar.zst'])
    expect(await archives(PI)).toEqual(['k3s-airgap-images-arm64.tar.zst'])
    expect(state('vault-pi').airgapImages).toEqual(['v1.29.6+k3s1'])
    await ok(AGENT, 'systemctl restart k3s-agent')
    expect(await ok(AGENT, 'journalctl -u k3s-agent --no-pager')).toContain(`level=info msg="Importing images from ${IMAGES}/k3s-airgap-images-amd64.tar.zst"`)
    // GitHub's checksum list of an architecture names its binary and the three formats of its images archive.
    const sums = await ok(PI, `curl -sSfL ${GITHUB}/sha256sum-arm64.txt`)
    expect(sums.trim().split('\n').map((line) => line.split(/\s+/)[1])).toEqual(['k3s-arm64', 'k3s-airgap-images-arm64.tar', 'k3s-airgap-images-arm64.tar.gz', 'k3s-airgap-images-arm64.tar.zst'])
    await ok(PI, `mkdir -p /tmp/rel && cd /tmp/rel && curl -sSfL -O ${GITHUB}/k3s-airgap-images-arm64.tar.zst && curl -sSfL -o sums ${GITHUB}/sha256sum-arm64.txt && sha256sum --check --ignore-missing --strict sums && rm -rf /tmp/rel`)
    // One byte of an asset, as the release-source pre-gate reads it: 206 and the file's first byte; a missing one 404.
    const first = await ok(PI, `curl -sSfL -r 0-0 -w ' %{http_code}' -o /tmp/byte ${GITHUB}/k3s-arm64 && od -An -c /tmp/byte && curl -sSfL ${GITHUB}/k3s-arm64 | head -c 1 | od -An -c`)
    expect(first.trim().split(/\s+/)).toEqual(['206', '#', '#'])
    expect((await ssh(PI, `curl -sSfL -r 0-0 -o /dev/null ${GITHUB}/k3s-mips`)).err).toBe('curl: (22) The requested URL returned error: 404')
  }, 60_000)

  it("gets the release's images archive from the plan's folder with the binary, keeps the old one, and a rollback puts it back", async () => {
    // Each node's air-gap folder, filled as a user would: the release's files for its architecture.
    const folder = '/srv/k3s/v1.30.4+k3s1'
    const fill = (address: string, binary: string, arch: string, archive: boolean) =>
      ok(address, `mkdir -p ${folder} && cd ${folder} && curl -sSfL -O ${GITHUB}/${binary} && curl -sSfL -O ${GITHUB}/sha256sum-${arch}.txt${archive ? ` && curl -sSfL -O ${GITHUB}/k3s-airgap-images-${arch}.tar.gz` : ''}`)
    await fill(SERVER, 'k3s', 'amd64', false)
    await fill(AGENT, 'k3s', 'amd64', true)
    // The arm64 agent's folder got the x86_64 binary (the checksum list and images archive are its own).
    await fill(PI, 'k3s', 'arm64', true)
    await l.editPlan((d) => {
      d.spec.clusters[0].install = { path: '/srv/k3s' }
      Object.assign(d.spec.clusters[0].ssh, { user: 'ops', sudo: true })
    })

    // The server's folder has the binary but not the images, the arm64 agent's not its binary: the pre-gate finds both
    // before anything changes (else the server would have moved, and the run stopped at the agent).
    const before = l.lab.recorder.mark()
    const first = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(first.code, first.err + first.out.slice(-3000)).toBe(3)
    const gate = events(first.out).find((e) => e.type === 'gate-result' && e.gate === 'release-source')
    expect(gate).toMatchObject({ status: 'fail', step: { id: expect.stringMatching(/^[a-z0-9-]+\/vault\/pre\/gate\/release-source$/) } })
    expect(gate.summary).toContain(`vault-server: this node loads the k3s images from archives in ${IMAGES} (air-gapped), and /srv/k3s/v1.30.4+k3s1/ has no k3s-airgap-images-amd64.tar.zst, .tar.gz, .tar (k3s v1.30.4+k3s1 for x86_64): put the images archive of the release there, listed in sha256sum-amd64.txt`)
    expect(gate.summary).toContain('vault-pi: cannot get k3s-arm64 (k3s v1.30.4+k3s1 for aarch64) from /srv/k3s/v1.30.4+k3s1/')
    expect(gate.summary).not.toContain('vault-agent')
    expect(gate.evidence).toContain(`node vault-agent: v1.30.4+k3s1 from install.path /srv/k3s on the node: ${folder}/k3s, ${folder}/sha256sum-amd64.txt, ${folder}/k3s-airgap-images-amd64.tar.gz`)
    expect(events(first.out).filter((e) => e.type === 'step-started').map((e) => e.step.action)).not.toContain('cordon')
    // Nothing on a node changed (the check read the folders), and no Node was cordoned.
    expect(l.lab.recorder.mutations({ afterSeq: before, source: 'node' })).toEqual([])
    expect(l.lab.recorder.mutations({ afterSeq: before, source: 'api' }).filter((e) => e.source === 'api' && e.resource === 'nodes')).toEqual([])
    expect(await ok(SERVER, 'k3s --version')).toMatch(/^k3s version v1\.29\.6\+k3s1 /)
    expect(await archives(SERVER)).toEqual(['k3s-airgap-images-amd64.tar.zst'])
    // The folders completed, the plan is applied again.
    await ok(SERVER, `cd ${folder} && curl -sSfL -O ${GITHUB}/k3s-airgap-images-amd64.tar.zst`)
    await ok(PI, `cd ${folder} && rm k3s && curl -sSfL -O ${GITHUB}/k3s-arm64`)
    const mark = l.lab.recorder.mark()
    const r = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(r.code, r.err + r.out.slice(-4000)).toBe(0)
    expect([...new Set(l.lab.recorder.mutations({ afterSeq: mark, source: 'node' }).map((e) => e.client.split(' ')[0]))]).toEqual(['ssh:ops'])
    const replaced = events(r.out).filter((e) => e.type === 'step-done' && e.step.action === 'replace-binary').map((e) => `${e.step.node}:${e.changed}`)
    expect(replaced.sort()).toEqual(['vault-agent:true', 'vault-pi:true', 'vault-server:true'])
    // Each node has its architecture's archive of the new release in agent/images, and k3s imported it at its restart;
    // the old archive is kept with the hop's backup.
    for (const [address, node, file] of [[SERVER, 'vault-server', 'k3s-airgap-images-amd64.tar.zst'], [AGENT, 'vault-agent', 'k3s-airgap-images-amd64.tar.gz'], [PI, 'vault-pi', 'k3s-airgap-images-arm64.tar.gz']] as const) {
      expect(await ok(address, 'k3s --version'), node).toMatch(/^k3s version v1\.30\.4\+k3s1 /)
      expect(await archives(address), node).toEqual([file])
      expect(await imagesRelease(address, `${IMAGES}/${file}`), node).toBe('v1.30.4+k3s1')
      expect(state(node).airgapImages, node).toEqual(['v1.29.6+k3s1', 'v1.30.4+k3s1'])
      const old = file.replace(/\.tar\.gz$/, '.tar.zst')
      expect(await archives(address, KEPT), node).toEqual([old])
      expect(await imagesRelease(address, `${KEPT}/${old}`), node).toBe('v1.29.6+k3s1')
      expect(await ok(address, `ls -A ${IMAGES}/..`), node).not.toContain('kupgrade-new')
    }

    // The run rolled back: the old binaries run and the old archives are in agent/images again.
    const back = await l.cli(['rollback', '--yes', '--output', 'json'])
    expect(back.code, back.err + back.out.slice(-4000)).toBe(0)
    for (const [address, file] of [[SERVER, 'k3s-airgap-images-amd64.tar.zst'], [AGENT, 'k3s-airgap-images-amd64.tar.zst'], [PI, 'k3s-airgap-images-arm64.tar.zst']] as const) {
      expect(await ok(address, 'k3s --version'), address).toMatch(/^k3s version v1\.29\.6\+k3s1 /)
      expect(await archives(address), address).toEqual([file])
      expect(await imagesRelease(address, `${IMAGES}/${file}`), address).toBe('v1.29.6+k3s1')
    }
  }, 240_000)

  it("a rebuilt agent gets its release's images archive again: the uninstall took agent/images and k3s's image store", async () => {
    // The folder holds the old release too (the rebuild reinstalls it), and the agent never comes back Ready upgraded.
    const old = 'https://github.com/k3s-io/k3s/releases/download/v1.29.6%2Bk3s1'
    await ok(AGENT, `mkdir -p /srv/k3s/v1.29.6+k3s1 && cd /srv/k3s/v1.29.6+k3s1 && curl -sSfL -O ${old}/k3s && curl -sSfL -O ${old}/sha256sum-amd64.txt && curl -sSfL -O ${old}/k3s-airgap-images-amd64.tar.zst`)
    await l.editPlan(recoverOnFailure('rebuild', 1))
    // The arm64 agent's folder lacks the old release: were it to fail, its rebuild would uninstall k3s and find nothing
    // to reinstall. The pre-gate checks what a rebuild would fetch too.
    const refused = await l.cli(['apply', l.plan, '--output', 'json'])
    expect(refused.code, refused.err + refused.out.slice(-3000)).toBe(3)
    // (Only the arm64 agent: the agent's folder has the old release; the only server is restored, never rebuilt.)
    expect(events(refused.out).find((e) => e.type === 'gate-result' && e.gate === 'release-source')?.summary).toBe('vault-pi: cannot get k3s-arm64 (k3s v1.29.6+k3s1 for aarch64) from /srv/k3s/v1.29.6+k3s1/ (what a rebuild of it reinstalls) (still after 3 checks)')
    await ok(PI, `mkdir -p /srv/k3s/v1.29.6+k3s1 && cd /srv/k3s/v1.29.6+k3s1 && curl -sSfL -O ${old}/k3s-arm64 && curl -sSfL -O ${old}/sha256sum-arm64.txt && curl -sSfL -O ${old}/k3s-airgap-images-arm64.tar.zst`)
    const fault = { fault: 'node-not-ready-after-upgrade' as const, cluster: 'vault', node: 'vault-agent' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    const rebuilt = ev.slice(ev.findIndex((e) => e.type === 'rebuild-started' && e.node === 'vault-agent'))
    expect(rebuilt.filter((e) => e.type === 'step-done').map((e) => e.step.action)).toEqual(expect.arrayContaining(['reset-node', 'replace-binary', 'restart']))
    expect(await ok(AGENT, 'k3s --version'), 'rebuilt at the old release').toMatch(/^k3s version v1\.29\.6\+k3s1 /)
    // The old release's archive from the folder, in place again, and imported by the reinstalled k3s (its image store
    // was empty after the uninstall: without the archive an air-gapped node has not even the pause image).
    expect(await archives(AGENT)).toEqual(['k3s-airgap-images-amd64.tar.zst'])
    expect(await imagesRelease(AGENT, `${IMAGES}/k3s-airgap-images-amd64.tar.zst`)).toBe('v1.29.6+k3s1')
    expect(state('vault-agent').airgapImages).toEqual(['v1.29.6+k3s1'])
  }, 240_000)

  it('an agent that fails before its binary moved (its OS upgrade) is rebuilt with its images: kept before the uninstall', async () => {
    // vault-pi was not reached by the last run and its kept folder is empty (the rollback before put its archive back):
    // its OS upgrade fails, before the release's archive was fetched and its old one kept. The uninstall of the rebuild
    // took agent/images, and the reinstall, finding no archive anywhere, took the node for one that pulls its images.
    expect(await archives(PI)).toEqual(['k3s-airgap-images-arm64.tar.zst'])
    expect((await ok(PI, `ls -A ${KEPT} 2>/dev/null | wc -l`)).trim()).toBe('0')
    await l.editPlan((d) => {
      d.spec.target.os = { packages: 'all', reboot: 'if-required' }
    })
    const fault = { fault: 'upgrade-command-fails' as const, cluster: 'vault', node: 'vault-pi' }
    l.lab.setFault(fault, true)
    const r = await l.cli(['apply', l.plan, '--output', 'json']).finally(() => l.lab.setFault(fault, false))
    expect(r.code, r.err + r.out.slice(-4000)).toBe(1)
    const ev = events(r.out)
    expect(ev.find((e) => e.type === 'step-failed' && e.step.node === 'vault-pi')?.step.action).toBe('os-upgrade')
    const rebuilt = ev.slice(ev.findIndex((e) => e.type === 'rebuild-started' && e.node === 'vault-pi'))
    expect(rebuilt.filter((e) => e.type === 'step-done').map((e) => e.step.action)).toEqual(expect.arrayContaining(['reset-node', 'replace-binary', 'restart']))
    expect(rebuilt.find((e) => e.type === 'rebuild-done')).toBeDefined()
    expect(await ok(PI, 'k3s --version')).toMatch(/^k3s version v1\.29\.6\+k3s1 /)
    // The old release's archive, fetched again from the folder into agent/images and imported by the reinstalled k3s.
    expect(await archives(PI)).toEqual(['k3s-airgap-images-arm64.tar.zst'])
    expect(await imagesRelease(PI, `${IMAGES}/k3s-airgap-images-arm64.tar.zst`)).toBe('v1.29.6+k3s1')
    expect(state('vault-pi').airgapImages).toEqual(['v1.29.6+k3s1'])
    expect(await archives(PI, KEPT)).toEqual(['k3s-airgap-images-arm64.tar.zst'])
  }, 240_000)
})
