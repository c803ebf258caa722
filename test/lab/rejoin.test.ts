import { createHash, X509Certificate } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { labNodeFactory } from '../../src/lab/node-runtime.js'
import type { TopologyInput } from '../../src/lab/topology.js'
import { eventually, KUBECTL, labKubectl, openSsh, startLab, type TestLab } from './helpers.js'

/**
 * Rebuilding a node as the distributions do it (the `onFailure: rebuild` path), driven with real OpenSSH and real
 * kubectl: `kubectl delete node` removes the Node from lists, watches and its pods; only a kubelet *start* registers
 * it again (a new object: new uid, not cordoned, none of the old labels); kubeadm's reset leaves a kubelet that cannot
 * start, and only `kubeadm join` with a valid bootstrap token and the right CA pin brings the node back.
 */
const NET = '127.0.123'

function topology(): TopologyInput {
  return {
    apiVersion: 'kupgrade.dev/v1alpha1', kind: 'LabTopology', metadata: { name: 'rejoin' },
    spec: {
      mirror: ['v1.29.6', 'v1.30.4'],
      // The Ready delay is long enough to see a new Node NotReady first; the grace period keeps a stopped kubelet's
      // Node Ready for a while, as a real node-monitor grace period does.
      timing: { serviceRestart: '100ms', readyDelay: '1500ms', reboot: '300ms', drainEvictionDelay: '100ms', nodeMonitorGracePeriod: '20s', podStartDelay: '0s' },
      clusters: [{
        name: 'kubeadm', distribution: 'kubeadm', version: 'v1.29.6', apiAddress: `${NET}.1`,
        nodes: [
          { name: 'cp-1', role: 'control-plane', address: `${NET}.101` },
          { name: 'w-1', role: 'worker', address: `${NET}.111` },
          { name: 'w-2', role: 'worker', address: `${NET}.112` },
          { name: 'w-3', role: 'worker', address: `${NET}.113` },
        ],
        workloads: { deployments: [], daemonSets: [{ name: 'agent', namespace: 'kube-system', requests: { cpu: '10m', memory: '16Mi' } }], coredns: { replicas: 0 } },
      }],
    },
  }
}

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

describe('node rebuild: delete, reset, rejoin (real OpenSSH, real kubectl)', () => {
  let t: TestLab
  const { ssh, ok } = openSsh(() => t)
  const kubectl = labKubectl(() => t, 'kubeadm')
  const node = async (name: string): Promise<Obj | undefined> => {
    const r = await kubectl(['get', 'node', name, '-o', 'json'])
    return r.exitCode === 0 ? JSON.parse(r.stdout) as Obj : undefined
  }
  const ready = (n: Obj) => (n.status.conditions as Obj[]).find((c) => c.type === 'Ready')!.status as string
  const podsOn = async (name: string) => (await kubectl(['get', 'pods', '-A', '--field-selector', `spec.nodeName=${name}`, '-o', 'name'])).stdout.trim()
  // The CA pin as kubeadm computes it: sha256 of the CA certificate's DER SubjectPublicKeyInfo.
  const caPin = () => `sha256:${createHash('sha256').update(new X509Certificate(readFileSync(join(t.dir, 'ca.crt'))).publicKey.export({ type: 'spki', format: 'der' })).digest('hex')}`

  beforeAll(async () => {
    t = await startLab(topology(), { nodeFactory: labNodeFactory })
  }, 120_000)
  afterAll(async () => t?.stop())

  it('kubectl delete node: gone from get, list and watch, its pods collected; only a kubelet start registers a new Node', async () => {
    const w1 = `${NET}.111`
    expect((await kubectl(['cordon', 'w-1'])).exitCode).toBe(0)
    expect((await kubectl(['label', 'node', 'w-1', 'team=blue'])).exitCode).toBe(0)
    const before = (await node('w-1'))!
    expect(await podsOn('w-1')).toMatch(/^pod\/agent-/)
    // A watch opened before the delete sees it as a DELETED event.
    const watch = execa(KUBECTL, ['--kubeconfig', join(t.dir, 'kubeconfig'), '--context', 'kubeadm', '--cache-dir', join(t.dir, 'cache'), 'get', 'nodes', '--watch', '--output-watch-events', '-o', 'jsonpath={.type} {.object.metadata.name}{"\\n"}'], { reject: false, env: { HOME: t.dir }, timeout: 20_000 })
    await new Promise((r) => setTimeout(r, 1000))

    const del = await kubectl(['delete', 'node', 'w-1'])
    expect(del.stdout).toBe('node "w-1" deleted')
    const gone = await kubectl(['get', 'node', 'w-1'])
    expect([gone.exitCode, gone.stderr]).toEqual([1, 'Error from server (NotFound): nodes "w-1" not found'])
    expect((await kubectl(['get', 'nodes', '-o', 'name'])).stdout.split('\n')).not.toContain('node/w-1')
    expect((await kubectl(['get', 'leases', '-n', 'kube-node-lease', '-o', 'name'])).stdout.split('\n')).not.toContain('lease.coordination.k8s.io/w-1')
    await eventually(async () => ((await podsOn('w-1')) === '' ? true : undefined), 10_000, 'the pod GC to delete w-1\'s pods')
    await new Promise((r) => setTimeout(r, 600))
    watch.kill('SIGTERM')
    expect((await watch).stdout.split('\n')).toContain('DELETED w-1')

    // The kubelet keeps running: it does not register the Node again (past the Ready delay, nothing came back).
    expect(await ok(w1, 'systemctl is-active kubelet')).toBe('active')
    await new Promise((r) => setTimeout(r, 2000))
    expect(await node('w-1')).toBeUndefined()

    // Its next start does: a new object, NotReady first, then Ready; not cordoned, without the label it had.
    await ok(w1, 'systemctl restart kubelet')
    const fresh = await eventually(() => node('w-1'), 10_000, 'w-1 registered')
    expect(fresh.metadata.uid).not.toBe(before.metadata.uid)
    expect(Date.parse(fresh.metadata.creationTimestamp)).toBeGreaterThan(Date.parse(before.metadata.creationTimestamp))
    expect(fresh.spec.unschedulable).toBeUndefined()
    expect(fresh.metadata.labels.team).toBeUndefined()
    expect(fresh.metadata.labels['kubernetes.io/hostname']).toBe('w-1')
    expect(Object.keys(fresh.metadata.labels).filter((l) => l.startsWith('node-role.kubernetes.io/'))).toEqual([])
    const readyNode = await eventually(async () => ((n) => (n && ready(n) === 'True' ? n : undefined))(await node('w-1')), 10_000, 'w-1 Ready')
    // NotReady from its registration until the Ready delay (1.5 s) passed: Ready's transition is that much later.
    const readyCondition = (readyNode.status.conditions as Obj[]).find((c) => c.type === 'Ready')!
    expect(Date.parse(readyCondition.lastTransitionTime) - Date.parse(fresh.metadata.creationTimestamp)).toBeGreaterThanOrEqual(1000)
    expect((await kubectl(['get', 'events', '--field-selector', `involvedObject.uid=${fresh.metadata.uid},reason=NodeNotReady`, '-o', 'name'])).stdout).not.toBe('')
    // The DaemonSet runs its pod there again.
    await eventually(async () => ((await podsOn('w-1')).startsWith('pod/agent-') ? true : undefined), 10_000, 'agent pod on w-1')
  }, 90_000)

  it('kubeadm reset: the kubelet cannot start (auto-restart) and the deleted Node does not come back', async () => {
    const w2 = `${NET}.112`
    await ok(w2, 'kubeadm reset -f')
    expect((await kubectl(['delete', 'node', 'w-2'])).stdout).toBe('node "w-2" deleted')
    await ok(w2, 'systemctl start kubelet')
    expect((await ssh(w2, 'systemctl is-active kubelet')).out).toBe('activating')
    const status = await ssh(w2, 'systemctl status kubelet')
    expect(status.code).toBe(3)
    expect(status.out).toMatch(/Active: activating \(auto-restart\) \(Result: exit-code\)/)
    expect(await ok(w2, 'journalctl -u kubelet --no-pager | tail -n 3')).toMatch(/kubelet\[\d+\]: E\d{4} [\d:.]+ +\d+ run\.go:72\] "command failed" err="failed to run Kubelet: unable to load bootstrap kubeconfig: stat \/etc\/kubernetes\/bootstrap-kubelet\.conf: no such file or directory"/)
    await new Promise((r) => setTimeout(r, 2000))
    expect(await node('w-2')).toBeUndefined()
  }, 60_000)

  it('kubeadm token create --print-join-command prints the join command and stores the token as kubeadm does', async () => {
    const out = await ok(`${NET}.101`, 'kubeadm token create --print-join-command')
    const m = /^kubeadm join (\S+) --token ([a-z0-9]{6})\.([a-z0-9]{16}) --discovery-token-ca-cert-hash (sha256:[0-9a-f]{64}) $/.exec(out)
    expect(m, out).not.toBeNull()
    expect(m![1]).toBe(`${NET}.1:6443`)
    expect(m![4]).toBe(caPin())
    const secret = JSON.parse((await kubectl(['-n', 'kube-system', 'get', 'secret', `bootstrap-token-${m![2]}`, '-o', 'json'])).stdout) as Obj
    expect(secret.type).toBe('bootstrap.kubernetes.io/token')
    const data = Object.fromEntries(Object.entries(secret.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]))
    expect(data).toMatchObject({ 'token-id': m![2], 'token-secret': m![3], 'usage-bootstrap-authentication': 'true', 'usage-bootstrap-signing': 'true', 'auth-extra-groups': 'system:bootstrappers:kubeadm:default-node-token' })
    const ttl = Date.parse(data.expiration!) - Date.now()
    expect(ttl).toBeGreaterThan(23.9 * 3600_000)
    expect(ttl).toBeLessThanOrEqual(24 * 3600_000)
    // The token authenticates as system:bootstrap:<id>, which reads what a join needs and nothing else.
    writeFileSync(join(t.dir, 'empty-kubeconfig'), 'apiVersion: v1\nkind: Config\n')
    const asToken = (args: string[]) => execa(KUBECTL, ['--kubeconfig', join(t.dir, 'empty-kubeconfig'), '--server', `https://${m![1]}`, '--certificate-authority', join(t.dir, 'ca.crt'), '--token', `${m![2]}.${m![3]}`, '--cache-dir', join(t.dir, 'cache-token'), ...args], { reject: false, env: { HOME: t.dir }, timeout: 30_000 })
    expect((await asToken(['get', 'node', 'cp-1', '-o', 'name'])).stdout).toBe('node/cp-1')
    const secrets = await asToken(['-n', 'kube-system', 'get', 'secrets'])
    expect(secrets.exitCode).toBe(1)
    expect(secrets.stderr).toContain(`system:bootstrap:${m![2]}`)
    // The bare token, and --ttl 0 for one that never expires.
    const bare = await ok(`${NET}.101`, 'kubeadm token create --ttl 0')
    expect(bare).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/)
    const forever = JSON.parse((await kubectl(['-n', 'kube-system', 'get', 'secret', `bootstrap-token-${bare.slice(0, 6)}`, '-o', 'json'])).stdout) as Obj
    expect(forever.data.expiration).toBeUndefined()
  }, 60_000)

  it('kubeadm join: refuses an unknown or expired token and a wrong CA pin; joins the reset node with a fresh token', async () => {
    const w2 = `${NET}.112`
    const cp = `${NET}.101`
    const ep = `${NET}.1:6443`
    const unknown = await ssh(w2, `kubeadm join ${ep} --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash ${caPin()}`)
    expect(unknown.code).toBe(1)
    expect(unknown.err).toContain('error execution phase preflight: couldn\'t validate the identity of the API Server: could not find a JWS signature in the cluster-info ConfigMap for token ID "abcdef"')

    const expiring = await ok(cp, 'kubeadm token create --ttl 1s --print-join-command')
    await new Promise((r) => setTimeout(r, 2000))
    const expired = await ssh(w2, expiring)
    expect(expired.code).toBe(1)
    expect(expired.err).toMatch(/could not find a JWS signature in the cluster-info ConfigMap for token ID "[a-z0-9]{6}"/)

    const command = await ok(cp, 'kubeadm token create --print-join-command')
    const wrongPin = await ssh(w2, command.replace(/sha256:[0-9a-f]{64}/, `sha256:${'0'.repeat(64)}`))
    expect(wrongPin.code).toBe(1)
    expect(wrongPin.err).toContain(`error execution phase preflight: couldn't validate the identity of the API Server: cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "${caPin()}" are pinned`)
    expect(await node('w-2')).toBeUndefined()

    const joined = await ssh(w2, command)
    expect(joined.code, joined.err).toBe(0)
    expect(joined.out).toContain('[kubelet-start] Starting the kubelet')
    expect(joined.out).toContain('This node has joined the cluster:')
    expect(await ok(w2, 'systemctl is-active kubelet')).toBe('active')
    expect(await ok(w2, 'test -f /etc/kubernetes/kubelet.conf && test -f /etc/kubernetes/pki/ca.crt && echo written')).toBe('written')
    const n = await eventually(async () => ((x) => (x && ready(x) === 'True' ? x : undefined))(await node('w-2')), 15_000, 'w-2 Ready')
    expect(n.spec.unschedulable).toBeUndefined()

    // Not reset: kubeadm's preflight names what is in the way.
    const again = await ssh(w2, command)
    expect(again.code).toBe(1)
    expect(again.err).toContain([
      'error execution phase preflight: [preflight] Some fatal errors occurred:',
      '\t[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists',
      '\t[ERROR Port-10250]: Port 10250 is in use',
      '\t[ERROR FileAvailable--etc-kubernetes-pki-ca.crt]: /etc/kubernetes/pki/ca.crt already exists',
      '[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`',
    ].join('\n'))
  }, 90_000)

  it('kubeadm join: a reset node whose Node is still there and Ready is refused until the Node is deleted', async () => {
    const w3 = `${NET}.113`
    await ok(w3, 'kubeadm reset -f')
    const command = await ok(`${NET}.101`, 'kubeadm token create --print-join-command')
    // Within the node-monitor grace period the stopped kubelet's Node still reads Ready.
    expect(ready((await node('w-3'))!)).toBe('True')
    const refused = await ssh(w3, command)
    expect(refused.code).toBe(1)
    expect(refused.err).toContain('error execution phase kubelet-start: a Node with name "w-3" and status "Ready" already exists in the cluster. You must delete the existing Node or change the name of this new joining Node')
    expect((await kubectl(['delete', 'node', 'w-3'])).exitCode).toBe(0)
    // kubelet-start failed after writing nothing of the kubelet's credentials: the same command now joins.
    const joined = await ssh(w3, command)
    expect(joined.code, joined.err).toBe(0)
    await eventually(async () => ((x) => (x && ready(x) === 'True' ? x : undefined))(await node('w-3')), 15_000, 'w-3 Ready')
  }, 90_000)
})
