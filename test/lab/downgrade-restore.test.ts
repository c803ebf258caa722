import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { labNodeFactory } from '../../src/lab/node-runtime.js'
import type { TopologyInput } from '../../src/lab/topology.js'
import { eventually, labKubectl, openSsh, startLab, type TestLab } from './helpers.js'

/**
 * Downgrades as the distributions document them (issue 7 item 14), driven the way an operator would, with real
 * OpenSSH and real kubectl: a worker's older binary within skew starts; a control plane put back on its older binary
 * across a minor does not come up (its unit fails, the journal says why); the documented snapshot restore with the old
 * binary brings it back at the old version. The datastore remembers the newest release that ran on it.
 */
const K3S = '127.0.91'
const K0S = '127.0.92'
const KUBEADM = '127.0.93'

function topology(): TopologyInput {
  const node = (net: string, name: string, role: 'control-plane' | 'worker', i: number) => ({ name, role, address: `${net}.${100 + i}` })
  return {
    apiVersion: 'kupgrade.dev/v1alpha1', kind: 'LabTopology', metadata: { name: 'down' },
    spec: {
      mirror: ['v1.29.6', 'v1.30.4'],
      timing: { serviceRestart: '200ms', readyDelay: '200ms', reboot: '500ms', drainEvictionDelay: '100ms', podStartDelay: '200ms' },
      clusters: [
        { name: 'k3s', distribution: 'k3s', version: 'v1.29.6', apiAddress: `${K3S}.1`, nodes: [node(K3S, 'server-1', 'control-plane', 1), node(K3S, 'agent-1', 'worker', 2)], workloads: { coredns: { replicas: 0 } } },
        { name: 'k3sha', distribution: 'k3s', version: 'v1.29.6', apiAddress: `${K3S}.2`, nodes: [node(K3S, 'ha-1', 'control-plane', 3), node(K3S, 'ha-2', 'control-plane', 4)], workloads: { coredns: { replicas: 0 } } },
        { name: 'k0s', distribution: 'k0s', version: 'v1.29.6', apiAddress: `${K0S}.1`, nodes: [{ ...node(K0S, 'ctl-1', 'control-plane', 1), enableWorker: true }, node(K0S, 'w-1', 'worker', 2)], workloads: { coredns: { replicas: 0 } } },
        { name: 'kubeadm', distribution: 'kubeadm', version: 'v1.29.6', apiAddress: `${KUBEADM}.1`, nodes: [{ ...node(KUBEADM, 'cp-1', 'control-plane', 1), os: 'debian-12' as const }], workloads: { coredns: { replicas: 0 } } },
      ],
    },
  }
}

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

describe('downgrades and snapshot restores as documented (real OpenSSH, real kubectl)', () => {
  let t: TestLab
  const { ssh, ok } = openSsh(() => t)
  const kubectl = (context: string, args: string[]) => labKubectl(() => t, context)(args)
  const nodeInfo = async (context: string, name: string) => {
    const n = JSON.parse((await kubectl(context, ['get', 'node', name, '-o', 'json'])).stdout) as Obj
    return { version: n.status.nodeInfo.kubeletVersion as string, ready: (n.status.conditions as Obj[]).find((c) => c.type === 'Ready')!.status as string }
  }
  const readyAt = (context: string, name: string, version: string) =>
    eventually(async () => {
      const n = await nodeInfo(context, name)
      return n.ready === 'True' && n.version === version ? n : undefined
    }, 15_000, `${name} Ready at ${version}`)

  // A snapshot holds the API's objects as they were: a Lease written before it, changed after it, is after a restore
  // the snapshot's again, at the resourceVersion it had then, and an update with the later one is refused (409).
  const PROBE = 'snapshot-probe'
  const leaseNow = async (context: string) => {
    const r = await kubectl(context, ['get', 'lease', '-n', 'kube-system', PROBE, '-o', 'json'])
    expect(r.exitCode, r.stderr).toBe(0)
    const l = JSON.parse(r.stdout) as Obj
    return { holder: l.spec.holderIdentity as string, resourceVersion: l.metadata.resourceVersion as string }
  }
  const holdLease = async (context: string, holder: string) => {
    const file = join(t.dir, `lease-${context}.json`)
    writeFileSync(file, JSON.stringify({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: PROBE, namespace: 'kube-system' }, spec: { holderIdentity: holder, leaseDurationSeconds: 60 } }))
    const exists = (await kubectl(context, ['get', 'lease', '-n', 'kube-system', PROBE])).exitCode === 0
    const r = exists
      ? await kubectl(context, ['patch', 'lease', '-n', 'kube-system', PROBE, '--type=merge', '-p', JSON.stringify({ spec: { holderIdentity: holder } })])
      : await kubectl(context, ['create', '-f', file])
    expect(r.exitCode, r.stderr).toBe(0)
    return leaseNow(context)
  }
  const expectSnapshotLease = async (context: string, before: { holder: string; resourceVersion: string }, after: { holder: string; resourceVersion: string }) => {
    expect(await leaseNow(context)).toEqual(before)
    const file = join(t.dir, `lease-${context}-stale.json`)
    writeFileSync(file, JSON.stringify({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: PROBE, namespace: 'kube-system', resourceVersion: after.resourceVersion }, spec: { holderIdentity: after.holder, leaseDurationSeconds: 60 } }))
    const stale = await kubectl(context, ['replace', '-f', file])
    expect(stale.exitCode).toBe(1)
    expect(stale.stderr).toContain(`Error from server (Conflict): error when replacing "${file}": Operation cannot be fulfilled on leases.coordination.k8s.io "${PROBE}": the object has been modified; please apply your changes to the latest version and try again`)
  }

  beforeAll(async () => {
    t = await startLab(topology(), { nodeFactory: labNodeFactory })
  }, 120_000)
  afterAll(async () => t?.stop())

  it('k3s: binary-only downgrade of the server fails; cluster-reset from the pre-upgrade snapshot with the old binary restores v1.29', async () => {
    const server = `${K3S}.101`
    const agent = `${K3S}.102`
    // Before the upgrade: an on-demand snapshot (k3s etcd-snapshot save) and the old binary kept.
    const before = await holdLease('k3s', 'holder-at-snapshot')
    const saved = await ok(server, 'k3s etcd-snapshot save --name pre-upgrade 2>&1; cp /usr/local/bin/k3s /root/k3s-v1.29.6')
    expect(saved).toMatch(/Snapshot pre-upgrade-server-1-\d+ saved\./)
    const after = await holdLease('k3s', 'holder-after-snapshot')
    const install = (v: string) => `curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=${v} sh -`
    // The agent joins with the server's token (its K3S_TOKEN must match it).
    const token = await ok(server, 'cat /var/lib/rancher/k3s/server/token')
    await ok(server, install('v1.30.4+k3s1'))
    await ok(agent, `curl -sfL https://get.k3s.io | K3S_URL=https://${K3S}.1:6443 K3S_TOKEN=${token} INSTALL_K3S_VERSION=v1.30.4+k3s1 sh -`)
    await readyAt('k3s', 'server-1', 'v1.30.4+k3s1')
    await readyAt('k3s', 'agent-1', 'v1.30.4+k3s1')

    // The agent alone goes back one minor (within skew of the v1.30 server): it starts and is Ready at v1.29.
    await ok(agent, `curl -sfL https://get.k3s.io | K3S_URL=https://${K3S}.1:6443 K3S_TOKEN=${token} INSTALL_K3S_VERSION=v1.29.6+k3s1 sh -`)
    await readyAt('k3s', 'agent-1', 'v1.29.6+k3s1')

    // The server's old binary alone: k3s does not come up, and its journal says why.
    const down = await ssh(server, 'systemctl stop k3s && cp /root/k3s-v1.29.6 /usr/local/bin/k3s && systemctl start k3s')
    expect(down.code).toBe(1)
    expect(down.err).toContain('Job for k3s.service failed because the control process exited with error code.')
    expect(await ok(server, 'systemctl is-active k3s || true')).toBe('failed')
    const journal = await ok(server, 'journalctl -u k3s --no-pager | tail -n 4')
    expect(journal).toMatch(/k3s\[\d+\]: time="[^"]+" level=fatal msg="apiserver exited: the datastore was written by Kubernetes v1\.30\.4 and cannot be read by v1\.29\.6: downgrading the control plane is not supported; restore a snapshot taken before the upgrade"/)
    expect(journal).toContain("k3s.service: Failed with result 'exit-code'.")

    // The documented restore: k3s server --cluster-reset --cluster-reset-restore-path=<snapshot>, then start.
    const busy = await ssh(server, 'systemctl start k3s; true')
    expect(busy.code).toBe(0)
    const reset = await ssh(server, 'k3s server --cluster-reset --cluster-reset-restore-path=$(ls /var/lib/rancher/k3s/server/db/snapshots/pre-upgrade-server-1-*)')
    expect(reset.code, reset.err).toBe(0)
    expect(reset.err).toContain('Managed etcd cluster membership has been reset, restart without --cluster-reset flag now.')
    expect(await ok(server, 'test -f /var/lib/rancher/k3s/server/db/reset-flag && echo flag')).toBe('flag')
    await ok(server, 'systemctl start k3s')
    expect(await ok(server, 'systemctl is-active k3s')).toBe('active')
    await readyAt('k3s', 'server-1', 'v1.29.6+k3s1')
    expect((await kubectl('k3s', ['version', '-o', 'json'])).stdout).toContain('"gitVersion": "v1.29.6+k3s1"')
    await expectSnapshotLease('k3s', before, after)
  }, 180_000)

  it('k3s: a cluster-reset refuses while k3s runs, and names a missing snapshot file', async () => {
    const server = `${K3S}.101`
    const running = await ssh(server, 'k3s server --cluster-reset')
    expect(running.code).toBe(1)
    expect(running.err).toBe('FATA[0000] starting kubernetes: preparing server: start managed database: listen tcp 127.0.0.1:2380: bind: address already in use')
    await ok(server, 'systemctl stop k3s')
    const missing = await ssh(server, 'k3s server --cluster-reset --cluster-reset-restore-path=/root/nope')
    expect(missing.code).toBe(1)
    expect(missing.err).toContain('open /root/nope: no such file or directory')
    await ok(server, 'systemctl start k3s')
  }, 60_000)

  it('k3s with two servers: after a cluster-reset on the first, the other starts only once its server/db is gone (it rejoins)', async () => {
    const [first, peer] = [`${K3S}.103`, `${K3S}.104`]
    expect(await ok(first, 'k3s etcd-snapshot save --name pre 2>&1')).toMatch(/Snapshot pre-ha-1-\d+ saved\./)
    await ok(peer, 'systemctl stop k3s')
    await ok(first, 'systemctl stop k3s')
    const reset = await ssh(first, 'k3s server --cluster-reset --cluster-reset-restore-path=$(ls -1 /var/lib/rancher/k3s/server/db/snapshots/pre-* | head -n 1)')
    expect(reset.code, reset.err).toBe(0)
    expect(reset.err).toContain('Managed etcd cluster membership has been reset')
    await ok(first, 'systemctl start k3s')
    // The peer's member data belongs to the cluster the reset replaced: k3s does not come up, and says why.
    const stale = await ssh(peer, 'systemctl start k3s')
    expect(stale.code).toBe(1)
    expect(await ok(peer, 'journalctl -u k3s --no-pager | tail -n 5')).toContain('request cluster ID mismatch')
    expect((await ssh(peer, 'systemctl is-active k3s')).code).not.toBe(0)
    // As k3s documents it: delete server/db on the peer and start it; it joins the restored cluster, and stays in it.
    await ok(peer, 'rm -rf /var/lib/rancher/k3s/server/db && systemctl start k3s')
    expect(await ok(peer, 'systemctl is-active k3s')).toBe('active')
    await ok(peer, 'systemctl restart k3s')
    expect(await ok(peer, 'systemctl is-active k3s')).toBe('active')
  }, 60_000)

  it('k0s: binary-only downgrade of a controller fails; k0s restore of the pre-upgrade backup with the old binary restores v1.29', async () => {
    const ctl = `${K0S}.101`
    const w = `${K0S}.102`
    const before = await holdLease('k0s', 'holder-at-backup')
    await ok(ctl, 'mkdir -p /root/backup && k0s backup --save-path=/root/backup 2>/dev/null && cp /usr/local/bin/k0s /root/k0s-v1.29.6')
    const after = await holdLease('k0s', 'holder-after-backup')
    const upgrade = (v: string) => `k0s stop && curl --proto '=https' --tlsv1.2 -sSf https://get.k0s.sh | K0S_VERSION=${v} sh && k0s start`
    await ok(ctl, upgrade('v1.30.4+k0s.0'))
    await ok(w, upgrade('v1.30.4+k0s.0'))
    await readyAt('k0s', 'ctl-1', 'v1.30.4+k0s')
    await readyAt('k0s', 'w-1', 'v1.30.4+k0s')

    // The worker alone back on v1.29 (within skew): it starts and is Ready at v1.29.
    await ok(w, upgrade('v1.29.6+k0s.0'))
    await readyAt('k0s', 'w-1', 'v1.29.6+k0s')

    // The controller's old binary alone: `k0s start` returns (systemd started it), then the controller fails.
    await ok(ctl, 'k0s stop && cp /root/k0s-v1.29.6 /usr/local/bin/k0s && k0s start')
    expect(await ok(ctl, 'systemctl is-active k0scontroller || true')).toBe('failed')
    const status = await ssh(ctl, 'k0s status')
    expect([status.code, status.err]).toEqual([1, 'Error: k0s is not running'])
    expect(await ok(ctl, 'journalctl -u k0scontroller --no-pager | tail -n 3')).toMatch(/k0s\[\d+\]: time="[^"]+" level=error msg="Failed to start controller" error="kube-apiserver: the datastore was written by Kubernetes v1\.30\.4 and cannot be read by v1\.29\.6/)

    // With k0s down (a failed controller is: stop says so), a restore over the controller's own etcd data is refused
    // (etcdutl's snapshot restore wants an empty data dir); on the reset node it restores, and the controller,
    // installed again with its flags, starts at v1.29.
    const stopped = await ssh(ctl, 'k0s stop')
    expect([stopped.code, stopped.err]).toEqual([1, 'Error: already stopped'])
    const over = await ssh(ctl, 'cd /root && k0s restore /root/backup/k0s_backup_*.tar.gz')
    expect([over.code, over.err.split('\n').at(-1)]).toEqual([1, 'Error: failed to restore on step `etcd`: data-dir "/var/lib/k0s/etcd" not empty or could not be read'])
    await ok(ctl, 'k0s reset')
    const restore = await ssh(ctl, 'cd /root && k0s restore /root/backup/k0s_backup_*.tar.gz')
    expect(restore.code, restore.err).toBe(0)
    expect(restore.err).toContain('level=info msg="restore finished successfully"')
    await ok(ctl, 'k0s install controller --enable-worker && k0s start')
    await eventually(async () => ((await ssh(ctl, 'k0s status')).out.includes('Version: v1.29.6+k0s.0') ? true : undefined), 10_000, 'k0s status at v1.29.6')
    await readyAt('k0s', 'ctl-1', 'v1.29.6+k0s')
    await expectSnapshotLease('k0s', before, after)
    const again = await ssh(ctl, 'k0s restore /root/backup/k0s_backup_*.tar.gz')
    expect(again.code).toBe(1)
    expect(again.err).toContain('level=fatal msg="k0s seems to be running! k0s must be down during the restore operation."')
  }, 180_000)

  it('kubeadm: old static-pod manifests alone crash-loop the apiserver; etcdutl snapshot restore with them brings v1.29 back', async () => {
    const cp = `${KUBEADM}.101`
    const version = async () => {
      const r = await kubectl('kubeadm', ['version', '-o', 'json'])
      return r.exitCode === 0 ? (JSON.parse(r.stdout) as Obj).serverVersion.gitVersion as string : `refused: ${r.stderr.trim().split('\n').at(-1)}`
    }
    // The documented etcd snapshot (configure-upgrade-etcd.md), then kubeadm upgrade apply to v1.30.
    const etcdctl = 'ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key'
    const before = await holdLease('kubeadm', 'holder-at-snapshot')
    expect(await ok(cp, `mkdir -p /var/lib/etcd-backup && ${etcdctl} snapshot save /var/lib/etcd-backup/snapshot.db 2>/dev/null`)).toBe('Snapshot saved at /var/lib/etcd-backup/snapshot.db')
    const after = await holdLease('kubeadm', 'holder-after-snapshot')
    await ok(cp, ["sed -i 's|/v1.29/|/v1.30/|' /etc/apt/sources.list.d/kubernetes.list", 'apt-get update >/dev/null',
      'apt-get install -y --allow-change-held-packages kubeadm=1.30.4-1.1 >/dev/null', 'kubeadm upgrade apply v1.30.4 -y >/dev/null'].join(' && '))
    expect(await version()).toBe('v1.30.4')

    // Binary-only downgrade: the pre-upgrade manifests kubeadm kept, put back. The kubelet runs them and the old
    // apiserver crash-loops on the newer datastore: the API refuses, the kubelet's journal shows the back-off.
    await ok(cp, 'cp /etc/kubernetes/tmp/kubeadm-backup-manifests-*/*.yaml /etc/kubernetes/manifests/')
    await eventually(async () => ((await version()).startsWith('refused') ? true : undefined), 10_000, 'the API down')
    expect(await ok(cp, 'journalctl -u kubelet --no-pager | tail -n 1')).toMatch(/kubelet\[\d+\]: E\d{4} [\d:.]+ +\d+ pod_workers\.go:1298\] "Error syncing pod, skipping" err="failed to \\"StartContainer\\" for \\"kube-apiserver\\" with CrashLoopBackOff: \\"back-off 10s restarting failed container=kube-apiserver pod=kube-apiserver-cp-1_kube-system\(/)
    expect(await ok(cp, 'cat /var/log/pods/kube-system_kube-apiserver-cp-1_*/kube-apiserver/0.log')).toContain('run.go:72] "command failed" err="the datastore was written by Kubernetes v1.30.4 and cannot be read by v1.29.6')

    // The documented restore: the static pods stopped first (their manifests moved away: the kubelet stops a pod
    // whose manifest is gone, and the only apiserver with it), etcdutl snapshot restore into a fresh data dir (an
    // existing one is refused), the old manifests back: the apiserver comes up at v1.29.
    await ok(cp, 'mkdir -p /root/manifests && mv /etc/kubernetes/manifests/*.yaml /root/manifests/')
    await eventually(async () => (/refused: .*(connection refused|was refused)/.test(await version()) ? true : undefined), 10_000, 'the API down without its manifest')
    const busy = await ssh(cp, 'etcdutl snapshot restore /var/lib/etcd-backup/snapshot.db --data-dir /var/lib/etcd')
    expect([busy.code, busy.err]).toEqual([1, 'Error: data-dir "/var/lib/etcd" not empty or could not be read'])
    const restored = await ssh(cp, 'mv /var/lib/etcd /var/lib/etcd.v1.30 && etcdutl snapshot restore /var/lib/etcd-backup/snapshot.db --data-dir /var/lib/etcd')
    expect(restored.code, restored.err).toBe(0)
    expect(restored.err).toContain('"msg":"restored snapshot"')
    expect(await version()).toMatch(/^refused: /)
    await ok(cp, 'mv /root/manifests/*.yaml /etc/kubernetes/manifests/')
    await eventually(async () => ((await version()) === 'v1.29.6' ? true : undefined), 10_000, 'the API back at v1.29.6')
    await expectSnapshotLease('kubeadm', before, after)
  }, 180_000)
})
