import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serveControl } from '../../src/lab/control.js'
import { formatEvent } from '../../src/lab/recorder/format.js'
import { labNodeFactory } from '../../src/lab/node-runtime.js'
import { describe as describeLab } from '../../src/lab/run.js'
import { writeState } from '../../src/lab/state-file.js'
import type { ApiEvent, LabEvent, NodeEvent } from '../../src/lab/recorder/types.js'
import { eventually, smallTopology, startLab, type TestLab } from './helpers.js'

/**
 * The lab's recorder (issue 7 item 16): real kubectl and real OpenSSH change the lab, the recorder says who changed
 * what and when, and its queries answer "did this change nothing", "how many were cordoned at once", "in which order
 * were nodes upgraded", "how many nodes were down at once". Also through `kupgrade lab events` (npm run build first).
 */
const NET = '127.0.65'
const BIN = join(process.cwd(), 'bin/kupgrade.js')

describe('lab recorder', () => {
  let t: TestLab
  let fingerprint: string
  const ssh = (host: string, command: string) =>
    execa('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${join(t.dir, 'known_hosts')}`,
      '-o', 'GlobalKnownHostsFile=/dev/null', '-i', join(t.dir, 'id_ed25519'), '-p', '2222', `root@${host}`, command], { reject: false, timeout: 60_000 })
  const rec = () => t.lab.recorder
  const apiEvents = (after: number) => rec().events({ afterSeq: after, source: 'api' }) as ApiEvent[]
  const nodeEvents = (after: number) => rec().events({ afterSeq: after, source: 'node' }) as NodeEvent[]

  beforeAll(async () => {
    t = await startLab(smallTopology(NET, { distribution: 'kubeadm', workers: 2 }), { nodeFactory: labNodeFactory })
    // The key's fingerprint as OpenSSH prints it: the recorder must name the SSH client the same way.
    fingerprint = execFileSync('ssh-keygen', ['-lf', join(t.dir, 'id_ed25519.pub')], { encoding: 'utf8' }).split(' ')[1]!
  }, 60_000)
  afterAll(async () => t?.stop())

  it('reads through kubectl and SSH change nothing: no mutations recorded', async () => {
    const mark = rec().mark()
    await t.kubectl(['get', 'nodes'])
    await t.kubectl(['get', 'pods', '-A', '-o', 'wide'])
    const r = await ssh(`${NET}.101`, 'systemctl is-active kubelet; cat /etc/kubernetes/admin.conf > /dev/null; df -h / > /dev/null; apt-mark showhold')
    expect(r.exitCode, r.stderr).toBe(0)
    expect(rec().mutations({ afterSeq: mark })).toEqual([])
  })

  it('records a cordon by real kubectl with the client certificate CN, the node and its cordon state', async () => {
    const mark = rec().mark()
    await t.kubectl(['cordon', 'w-1'])
    const [e] = apiEvents(mark)
    expect(e).toMatchObject({ cluster: 'lab', client: 'cert:CN=kupgrade-lab-admin', method: 'PATCH', verb: 'patch', resource: 'nodes', name: 'w-1', code: 200, unschedulable: true, nodeRole: 'worker' })
    expect(Date.parse(e!.at)).toBeGreaterThan(Date.now() - 60_000)
    await t.kubectl(['uncordon', 'w-1'])
  })

  it('maxConcurrentlyCordoned replays cordons: one at a time is 1, two at once is 2', async () => {
    await t.kubectl(['cordon', 'w-1'])
    await t.kubectl(['uncordon', 'w-1'])
    await t.kubectl(['cordon', 'w-2'])
    expect(rec().maxConcurrentlyCordoned('lab', 'worker')).toBe(1)
    await t.kubectl(['cordon', 'w-1'])
    expect(rec().maxConcurrentlyCordoned('lab', 'worker')).toBe(2)
    expect(rec().maxConcurrentlyCordoned('lab', 'control-plane')).toBe(0)
    await t.kubectl(['uncordon', 'w-1', 'w-2'])
  })

  it('records the evictions of a kubectl drain', async () => {
    const mark = rec().mark()
    const onW1 = JSON.parse((await t.kubectl(['get', 'pods', '-A', '--field-selector', 'spec.nodeName=w-1', '-o', 'json'])).stdout).items as { metadata: { name: string; ownerReferences?: { kind: string }[] } }[]
    const evictable = onW1.filter((p) => p.metadata.ownerReferences?.[0]?.kind !== 'DaemonSet').map((p) => p.metadata.name).sort()
    expect(evictable.length).toBeGreaterThan(0)
    await t.kubectl(['drain', 'w-1', '--ignore-daemonsets', '--delete-emptydir-data', '--timeout', '30s'])
    const evictions = apiEvents(mark).filter((e) => e.subresource === 'eviction')
    expect(evictions.map((e) => e.name).sort()).toEqual(evictable)
    expect(evictions.every((e) => e.verb === 'create' && e.resource === 'pods' && e.code === 201 && e.client === 'cert:CN=kupgrade-lab-admin')).toBe(true)
    await t.kubectl(['uncordon', 'w-1'])
  }, 60_000)

  it('records a refused write with its status, names a token by digest only, and does not count it as a mutation', async () => {
    const mark = rec().mark()
    const secret = 'not-the-lab-token-0123456789'
    const r = await t.https('/api/v1/nodes/w-1', { method: 'PATCH', token: secret, body: { spec: { unschedulable: true } }, headers: { 'Content-Type': 'application/merge-patch+json' } })
    expect(r.status).toBe(401)
    const [e] = apiEvents(mark)
    expect(e).toMatchObject({ verb: 'patch', resource: 'nodes', name: 'w-1', code: 401 })
    expect(e!.client).toMatch(/^token:sha256:[0-9a-f]{12}$/)
    expect(JSON.stringify(rec().events())).not.toContain(secret)
    expect(rec().mutations({ afterSeq: mark })).toEqual([])
  })

  it('records node commands run through OpenSSH with the login and key fingerprint: service restart, file write, package hold', async () => {
    const mark = rec().mark()
    const r = await ssh(`${NET}.111`, "systemctl restart kubelet && echo 'KUBELET_EXTRA_ARGS=--v=2' > /etc/default/kubelet && apt-mark unhold kubelet")
    expect(r.exitCode, r.stderr).toBe(0)
    const client = `ssh:root ${fingerprint}`
    const events = await eventually(() => {
      const e = nodeEvents(mark)
      return e.some((x) => x.action === 'package') ? e : undefined
    }, 10_000, 'the node events')
    expect(events.map((e) => [e.node, e.action, e.unit ?? e.path])).toEqual([
      ['w-1', 'service-stop', 'kubelet'],
      ['w-1', 'service-start', 'kubelet'],
      ['w-1', 'file-write', '/etc/default/kubelet'],
      ['w-1', 'package', '/var/lib/dpkg/status (apt-mark holds)'],
    ])
    expect(events.every((e) => e.client === client && e.role === 'worker' && e.cluster === 'lab')).toBe(true)
    expect(events[0]!.version).toBe('v1.29.6')
  }, 30_000)

  it('nodeUpgradeOrder and maxConcurrentDisruptions: nodes upgraded one after the other, then two restarted at once', async () => {
    const mark = rec().mark()
    const upgrade = (host: string) =>
      ssh(host, "sed -i 's|/v1.29/|/v1.30/|' /etc/apt/sources.list.d/kubernetes.list && apt-get update -q >/dev/null && apt-get install -y --allow-change-held-packages kubelet=1.30.4-1.1 >/dev/null && systemctl restart kubelet")
    for (const host of [`${NET}.112`, `${NET}.111`]) {
      const r = await upgrade(host)
      expect(r.exitCode, r.stderr).toBe(0)
    }
    const after = rec().events({ afterSeq: mark })
    expect(rec().nodeUpgradeOrder('lab', 'worker').slice(-2)).toEqual(['w-2', 'w-1'])
    const windows = rec().disruptionWindows('lab', 'worker').filter((w) => w.fromSeq > mark)
    expect(windows.map((w) => w.node)).toEqual(['w-2', 'w-1'])
    expect(windows.every((w) => w.toSeq !== undefined)).toBe(true)
    const { maxConcurrentDisruptions } = await import('../../src/lab/recorder/queries.js')
    expect(maxConcurrentDisruptions(after, 'lab', 'worker')).toBe(1)
    // Both workers down at the same time: the query must see the overlap.
    const mark2 = rec().mark()
    const both = await Promise.all([`${NET}.111`, `${NET}.112`].map((h) => ssh(h, 'systemctl stop kubelet && sleep 1 && systemctl start kubelet')))
    for (const r of both) expect(r.exitCode, r.stderr).toBe(0)
    await eventually(() => rec().events({ afterSeq: mark2, source: 'node' }).filter((e) => (e as NodeEvent).action === 'service-start').length === 2 || undefined, 10_000, 'both starts')
    expect(maxConcurrentDisruptions(rec().events({ afterSeq: mark2 }), 'lab', 'worker')).toBe(2)
  }, 60_000)

  it('kupgrade lab events reads the running lab: text and JSON, --since, and refuses a bad --since', async () => {
    const socket = join(t.dir, 'control.sock')
    const control = await serveControl(t.lab, socket, () => undefined)
    try {
      await writeState(describeLab(t.lab, t.dir, socket))
      const run = (args: string[]) => execa(process.execPath, [BIN, 'lab', 'events', '--dir', t.dir, ...args], { reject: false, timeout: 30_000, env: { NO_COLOR: '1' } })
      const json = await run(['--format', 'json'])
      expect(json.exitCode, json.stderr).toBe(0)
      const listed = JSON.parse(json.stdout) as LabEvent[]
      expect(listed.map((e) => e.seq)).toEqual(rec().events().map((e) => e.seq))
      const text = await run([])
      expect(text.exitCode, text.stderr).toBe(0)
      expect(text.stdout).toMatch(/lab {2}api {3}cert:CN=kupgrade-lab-admin {2}patch nodes\/w-1 → 200 \(cordoned\)/)
      expect(text.stdout).toContain(`lab/w-1  node  ssh:root ${fingerprint}  file-write /etc/default/kubelet (created)`)
      const future = await run(['--since', new Date(Date.now() + 3_600_000).toISOString(), '--format', 'json'])
      expect(JSON.parse(future.stdout)).toEqual([])
      const recent = await run(['--since', '10m', '--format', 'json'])
      expect((JSON.parse(recent.stdout) as LabEvent[]).length).toBe(listed.length)
      const bad = await run(['--since', 'yesterday'])
      expect(bad.exitCode).toBe(2)
      expect(bad.stderr).toContain('--since must be a duration')
      expect(await readFile(join(t.dir, 'lab.json'), 'utf8')).toContain(socket)
    } finally {
      await new Promise<void>((r) => control.close(() => r()))
    }
  }, 60_000)
  it('records which kubeadm upgrade ran: `upgrade apply` and `upgrade node` as upgrade-applied with their command', async () => {
    const mark = rec().mark()
    // Same-version runs on the control plane: each writes its manifests and reports itself, and no worker is touched.
    for (const command of ['kubeadm upgrade apply v1.29.6 -y', 'kubeadm upgrade node']) {
      const r = await ssh(`${NET}.101`, command)
      expect(r.exitCode, r.stderr).toBe(0)
    }
    const applied = nodeEvents(mark).filter((e) => e.action === 'upgrade-applied')
    expect(applied.map((e) => [e.node, e.command, e.version, e.client])).toEqual([
      ['cp-1', 'apply', 'v1.29.6', `ssh:root ${fingerprint}`],
      ['cp-1', 'node', 'v1.29.6', `ssh:root ${fingerprint}`],
    ])
    expect(formatEvent(applied[0]!)).toContain(`lab/cp-1  node  ssh:root ${fingerprint}  upgrade-applied apply v1.29.6`)
  }, 60_000)
})
