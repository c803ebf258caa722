import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { labNodeFactory } from '../../src/lab/node-runtime.js'
import { eventually, kubeadmHaTopology, labKubectl, openSsh, startLab, type TestLab } from './helpers.js'

/**
 * A kubeadm control plane of three stacked etcd members, restored from one snapshot the way the etcd and Kubernetes
 * docs say (kubernetes.io "Restoring an etcd cluster"; etcd "Disaster recovery"), driven with real OpenSSH and real
 * kubectl: every API server stopped, every member restored from the same snapshot with its own --name and peer URL
 * and the same --initial-cluster and token, then started. The lab must refuse what etcd refuses: a member restored
 * alone has no quorum, a member restored with etcdutl's defaults is a cluster of its own, a name missing from
 * --initial-cluster is an error before anything is written.
 */
const NET = '127.0.148'
const { topology, cps } = kubeadmHaTopology(NET, 'kubeadm-ha-restore')
const peer = (c: { address: string }) => `https://${c.address}:2380`
const INITIAL = cps.map((c) => `${c.name}=${peer(c)}`).join(',')


type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

describe('kubeadm HA: three etcd members restored from one snapshot (real OpenSSH, real kubectl)', () => {
  let t: TestLab
  const { ssh, ok } = openSsh(() => t)
  const kubectl = (args: string[]) => labKubectl(() => t, 'ha')(args)
  const version = async () => {
    const r = await kubectl(['version', '-o', 'json'])
    return r.exitCode === 0 ? (JSON.parse(r.stdout) as Obj).serverVersion.gitVersion as string : `refused: ${r.stderr.trim().split('\n').at(-1)}`
  }
  // The apiserver's latest word: one log per pod (a pod per version), each line starting with its time.
  const apiserverLog = (c: { address: string; name: string }) => ok(c.address, `cat /var/log/pods/kube-system_kube-apiserver-${c.name}_*/kube-apiserver/0.log 2>/dev/null | sort | tail -n 1`)
  const restore = (c: { address: string; name: string }, flags: string) =>
    ssh(c.address, `rm -rf /var/lib/etcd && etcdutl snapshot restore /root/snapshot.db --data-dir /var/lib/etcd ${flags}`)
  // One after the other: the last one running loses its quorum once the second stops (and its apiserver says so).
  const stopAll = async () => {
    for (const c of cps) await ok(c.address, 'mkdir -p /root/aside && mv /etc/kubernetes/manifests/*.yaml /root/aside/')
  }
  const startOn = (c: { address: string }) => ok(c.address, 'mv /root/aside/*.yaml /etc/kubernetes/manifests/')
  const oldManifestsOn = (c: { address: string }) => ok(c.address, 'cp /etc/kubernetes/tmp/kubeadm-backup-manifests-*/*.yaml /root/aside/')

  beforeAll(async () => {
    t = await startLab(topology, { nodeFactory: labNodeFactory })
  }, 120_000)
  afterAll(async () => {
    await t?.stop()
  })

  it("each member's etcd manifest names it and its peer URL as kubeadm writes them (init, then joins)", async () => {
    const flags = async (c: { address: string }) => (await ok(c.address, "sed -n 's/^    - --\\(name\\|initial-advertise-peer-urls\\|initial-cluster\\|initial-cluster-state\\)=/\\1=/p' /etc/kubernetes/manifests/etcd.yaml")).trim().split('\n')
    expect(await flags(cps[0]!)).toEqual([`initial-advertise-peer-urls=${peer(cps[0]!)}`, `initial-cluster=cp-1=${peer(cps[0]!)}`, 'name=cp-1'])
    expect(await flags(cps[2]!)).toEqual([`initial-advertise-peer-urls=${peer(cps[2]!)}`, `initial-cluster=${INITIAL}`, 'initial-cluster-state=existing', 'name=cp-3'])
  })

  it('one member restored alone has no quorum; one restored with etcdutl defaults is a cluster of its own; all with the same flags bring v1.29 back', async () => {
    // The snapshot on cp-1, on every member (etcdutl restores from a local file); then the whole control plane to v1.30.
    const etcdctl = 'ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key'
    await ok(cps[0]!.address, `${etcdctl} snapshot save /root/snapshot.db 2>/dev/null`)
    const snapshot = Buffer.from(await ok(cps[0]!.address, 'base64 -w0 /root/snapshot.db'), 'base64')
    for (const c of cps.slice(1)) expect((await ssh(c.address, 'cat > /root/snapshot.db', snapshot)).code).toBe(0)
    const upgrade = (cmd: string) => ["sed -i 's|/v1.29/|/v1.30/|' /etc/apt/sources.list.d/kubernetes.list", 'apt-get update >/dev/null', 'apt-get install -y --allow-change-held-packages kubeadm=1.30.4-1.1 >/dev/null', `${cmd} >/dev/null`].join(' && ')
    await ok(cps[0]!.address, upgrade('kubeadm upgrade apply v1.30.4 -y'))
    for (const c of cps.slice(1)) await ok(c.address, upgrade('kubeadm upgrade node'))
    await eventually(async () => ((await version()) === 'v1.30.4' ? true : undefined), 10_000, 'the API at v1.30.4')

    // A name that is not in --initial-cluster: refused before anything is written (etcd's VerifyBootstrap).
    await stopAll()
    expect(await apiserverLog(cps[2]!)).toContain("etcd has no quorum: 1 of 3 members run with this member's cluster ID")
    await eventually(async () => ((await version()).startsWith('refused') ? true : undefined), 10_000, 'the API down with every manifest aside')
    const missing = await restore(cps[1]!, `--name cp-2 --initial-cluster cp-1=${peer(cps[0]!)} --initial-advertise-peer-urls ${peer(cps[1]!)}`)
    expect([missing.code, missing.err]).toEqual([1, 'Error: couldn\'t find local name "cp-2" in the initial cluster configuration'])
    const wrongUrl = await restore(cps[1]!, `--name cp-2 --initial-cluster ${INITIAL} --initial-advertise-peer-urls https://${NET}.200:2380`)
    expect([wrongUrl.code, wrongUrl.err]).toEqual([1, `Error: --initial-cluster has cp-2=${peer(cps[1]!)} but missing from --initial-advertise-peer-urls=https://${NET}.200:2380`])
    expect((await ssh(cps[1]!.address, 'test -e /var/lib/etcd')).code).toBe(1)

    // cp-1 restored alone and started with its old manifests: its etcd is a new cluster of one running member, no
    // quorum, so its apiserver cannot serve; cp-2 and cp-3 still hold the old cluster and serve v1.30.
    const flags = (c: { name: string; address: string }) => `--name ${c.name} --initial-cluster ${INITIAL} --initial-cluster-token kupgrade-restore --initial-advertise-peer-urls ${peer(c)}`
    const one = await restore(cps[0]!, flags(cps[0]!))
    expect(one.code, one.err).toBe(0)
    for (const c of cps) await oldManifestsOn(c)
    await startOn(cps[0]!)
    expect(await version()).toMatch(/^refused: /)
    expect(await apiserverLog(cps[0]!)).toContain('etcd has no quorum: 1 of 3 members run with this member\'s cluster ID')

    // cp-3 restored with etcdutl's defaults (member "default" on localhost): a cluster of its own, whatever it holds.
    const defaults = await restore(cps[2]!, '')
    expect(defaults.code, defaults.err).toBe(0)
    await startOn(cps[2]!)
    expect(await version()).toMatch(/^refused: /)
    expect(await apiserverLog(cps[2]!)).toContain('etcd: the member data in /var/lib/etcd is of an etcd cluster of default=http://localhost:2380')

    // Done as documented: cp-2 and cp-3 restored with the same --initial-cluster and token. Quorum as soon as two
    // run, and cp-1, waiting for it, serves too: v1.29.6 from the snapshot.
    const two = await restore(cps[1]!, flags(cps[1]!))
    expect(two.code, two.err).toBe(0)
    await startOn(cps[1]!)
    await eventually(async () => ((await version()) === 'v1.29.6' ? true : undefined), 10_000, 'the API back at v1.29.6 with two members')
    await ok(cps[2]!.address, 'mv /etc/kubernetes/manifests/*.yaml /root/aside/')
    const three = await restore(cps[2]!, flags(cps[2]!))
    expect(three.code, three.err).toBe(0)
    await startOn(cps[2]!)
    await eventually(async () => {
      const pods = JSON.parse((await kubectl(['get', 'pods', '-n', 'kube-system', '-l', 'component=kube-apiserver', '-o', 'json'])).stdout) as Obj
      const ready = (pods.items as Obj[]).filter((p) => (p.status.conditions as Obj[] | undefined)?.some((c) => c.type === 'Ready' && c.status === 'True'))
      return ready.length === 3 ? true : undefined
    }, 10_000, 'all three apiservers Ready')
    expect(await version()).toBe('v1.29.6')
  }, 180_000)
})
