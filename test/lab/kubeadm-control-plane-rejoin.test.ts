import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { labNodeFactory } from '../../src/lab/node-runtime.js'
import { eventually, kubeadmHaTopology, labKubectl, openSsh, startLab, type TestLab } from './helpers.js'

/**
 * A kubeadm control-plane node reset and joined again (kubernetes.io kubeadm-reset, "Rejoin a control-plane node"; facts
 * §3.3), driven with real OpenSSH and real kubectl: `kubeadm reset -f` removes its stacked etcd member through the
 * cluster, `kubeadm init phase upload-certs --upload-certs` on another control-plane node seals the shared
 * certificates into kube-system/kubeadm-certs under a fresh key, and `kubeadm join --control-plane --certificate-key`
 * downloads them, writes the static pods at the cluster's version and adds the node back as an etcd member. The lab
 * refuses what kubeadm refuses: a wrong key, no uploaded certificates, an etcd whose stale member is still listed.
 */
const NET = '127.0.155'
const { topology, cps } = kubeadmHaTopology(NET, 'kubeadm-cp-rejoin')


const ETCDCTL = 'ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key'

describe('kubeadm: a control-plane node reset and joined again with --control-plane --certificate-key (real OpenSSH, real kubectl)', () => {
  let t: TestLab
  const { ssh, ok } = openSsh(() => t)
  const kubectl = (args: string[]) => labKubectl(() => t, 'ha')(args)
  const [cp1, cp2, cp3] = cps as [typeof cps[0], typeof cps[0], typeof cps[0]]
  const members = async (on: { address: string }) => (await ok(on.address, `${ETCDCTL} member list`)).trim().split('\n').map((l) => l.split(', ')[2]).sort()
  const ready = async (name: string) => (await kubectl(['get', 'node', name, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).stdout
  /** The control-plane join command, made on cp-1 as the docs say: a certificate key from upload-certs, then a token. */
  const joinCommand = async () => {
    const upload = await ok(cp1.address, 'kubeadm init phase upload-certs --upload-certs')
    const key = upload.trim().split('\n').at(-1)!
    expect(upload).toContain('[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace')
    expect(key).toMatch(/^[0-9a-f]{64}$/)
    const line = (await ok(cp1.address, `kubeadm token create --print-join-command --certificate-key ${key}`)).trim()
    expect(line).toMatch(new RegExp(`^kubeadm join ${NET.replace(/\./g, '\\.')}\\.1:6443 --token [a-z0-9]{6}\\.[a-z0-9]{16} --discovery-token-ca-cert-hash sha256:[0-9a-f]{64} --control-plane --certificate-key ${key}$`))
    return { line, key }
  }

  beforeAll(async () => {
    t = await startLab(topology, { nodeFactory: labNodeFactory })
  }, 120_000)
  afterAll(async () => {
    await t?.stop()
  })

  it('reset removes the member; a wrong key and a missing Secret are refused; the right key joins it back as a member, Ready, its certificates in place', async () => {
    expect(await members(cp1)).toEqual(['cp-1', 'cp-2', 'cp-3'])
    const reset = await ssh(cp2.address, 'kubeadm reset -f')
    expect(reset.code).toBe(0)
    expect(await members(cp1)).toEqual(['cp-1', 'cp-3'])
    // The two left are a quorum of two: the API is still served, through either of them.
    await eventually(async () => ((await kubectl(['get', 'nodes', '-o', 'name'])).exitCode === 0 ? true : undefined), 10_000, 'the API served by cp-1 and cp-3')
    expect((await kubectl(['delete', 'node', cp2.name])).exitCode).toBe(0)

    // No Secret uploaded yet: refused before anything is written.
    const worker = (await ok(cp1.address, 'kubeadm token create --print-join-command')).trim()
    const noSecret = await ssh(cp2.address, `${worker} --control-plane --certificate-key ${'ab'.repeat(32)}`)
    expect(noSecret.code).toBe(1)
    expect(noSecret.err).toContain('error execution phase control-plane-prepare/download-certs: error downloading certs: error downloading the secret: Secret "kubeadm-certs" was not found in the "kube-system" Namespace. This Secret might have expired.')

    // A key that did not seal the Secret: nothing is written, the node is no member.
    const { line, key } = await joinCommand()
    const wrong = key.replace(/^./, (c) => (c === '0' ? '1' : '0'))
    const refused = await ssh(cp2.address, line.replace(key, wrong))
    expect(refused.code).toBe(1)
    expect(refused.err).toContain('error execution phase control-plane-prepare/download-certs: error downloading certs: error decoding secret data with provided key: cipher: message authentication failed')
    expect((await ssh(cp2.address, 'test -e /etc/kubernetes/pki/ca.key || test -e /etc/kubernetes/manifests/kube-apiserver.yaml')).code).toBe(1)
    expect(await members(cp1)).toEqual(['cp-1', 'cp-3'])

    const joined = await ssh(cp2.address, line)
    expect(joined.err).toBe('')
    expect(joined.code).toBe(0)
    expect(joined.out).toContain('[etcd] Announced new etcd member joining to the existing etcd cluster')
    expect(joined.out).toContain('This node has joined the cluster and a new control plane instance was created:')
    expect(await members(cp1)).toEqual(['cp-1', 'cp-2', 'cp-3'])
    // The shared CA came from cp-1 (the same key bytes), the static pods run the cluster's version.
    expect(await ok(cp2.address, 'sha256sum < /etc/kubernetes/pki/ca.key')).toBe(await ok(cp1.address, 'sha256sum < /etc/kubernetes/pki/ca.key'))
    expect(await ok(cp2.address, "sed -n 's|.*image: registry.k8s.io/kube-apiserver:||p' /etc/kubernetes/manifests/kube-apiserver.yaml")).toBe('v1.29.6')
    expect(await ok(cp2.address, "sed -n 's/^    - --initial-cluster-state=//p' /etc/kubernetes/manifests/etcd.yaml")).toBe('existing')
    await eventually(async () => ((await ready(cp2.name)) === 'True' ? true : undefined), 15_000, 'cp-2 Ready again')
    // Its own leaf certificates, as the certs phase writes them.
    await eventually(async () => ((await ssh(cp2.address, 'kubeadm certs check-expiration | grep -c MISSING')).out.trim() === '0' ? true : undefined), 10_000, 'no certificate missing on cp-2')
    // The node's member is part of the quorum again: with cp-3's etcd stopped, cp-1 and cp-2 still serve.
    await ok(cp3.address, 'mkdir -p /root/aside && mv /etc/kubernetes/manifests/etcd.yaml /root/aside/')
    await eventually(async () => ((await kubectl(['get', 'nodes', '-o', 'name'])).exitCode === 0 ? true : undefined), 10_000, 'the API served with cp-3 stopped')
    await ok(cp3.address, 'mv /root/aside/etcd.yaml /etc/kubernetes/manifests/')
  }, 120_000)

  it('a reset whose member removal failed leaves a stale member: the join is refused until etcdctl member remove', async () => {
    // cp-3's etcd sick while it resets: kubeadm only warns, and its member stays listed.
    await t.lab.setFault({ fault: 'etcd-unhealthy', cluster: 'ha', node: cp3.name }, true)
    const reset = await ssh(cp3.address, 'kubeadm reset -f')
    expect(reset.code).toBe(0)
    expect(reset.err).toContain('[reset] Failed to remove etcd member: context deadline exceeded, please manually remove this etcd member using etcdctl')
    await t.lab.setFault({ fault: 'etcd-unhealthy', cluster: 'ha', node: cp3.name }, false)
    expect(await members(cp1)).toEqual(['cp-1', 'cp-2', 'cp-3'])
    await kubectl(['delete', 'node', cp3.name])
    const { line } = await joinCommand()
    const refused = await ssh(cp3.address, line)
    expect(refused.code).toBe(1)
    expect(refused.err).toContain(`error execution phase check-etcd: etcd cluster is not healthy: failed to dial endpoint https://${cp3.address}:2379 with maintenance client: context deadline exceeded`)

    const stale = (await ok(cp1.address, `${ETCDCTL} member list`)).split('\n').find((l) => l.includes(', cp-3, '))!.split(', ')[0]!
    expect(await ok(cp1.address, `${ETCDCTL} member remove ${stale}`)).toMatch(new RegExp(`^Member ${stale} removed from cluster [0-9a-f]+`))
    // The refused join left files behind; a second reset clears them, as kubeadm's own hint says.
    await ok(cp3.address, 'kubeadm reset -f >/dev/null')
    const again = await joinCommand()
    const joined = await ssh(cp3.address, again.line)
    expect(joined.code).toBe(0)
    expect(await members(cp1)).toEqual(['cp-1', 'cp-2', 'cp-3'])
    await eventually(async () => ((await ready(cp3.name)) === 'True' ? true : undefined), 15_000, 'cp-3 Ready again')
  }, 120_000)
})
