import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { labNodeFactory } from '../../../src/lab/node-runtime.js'
import type { LabNode } from '../../../src/lab/node/index.js'
import { eventually, smallTopology, startLab, type TestLab } from '../helpers.js'
import { sshExec as sshAs } from './helpers.js'

function labSsh(t: () => TestLab) {
  return (name: string, command: string) => {
    const node = [...t().lab.clusters.values()][0]!.nodes.get(name) as unknown as LabNode
    return sshAs(node, command, { privateKey: readFileSync(join(t().dir, 'id_ed25519'), 'utf8') })
  }
}

/** `valid` or `expired`: the certificate file on the node as real openssl judges it now. */
const validity = async (ssh: ReturnType<typeof labSsh>, node: string, file: string) =>
  (await ssh(node, `openssl x509 -checkend 0 -noout -in ${file} >/dev/null && echo valid || echo expired`)).stdout.trim()
/** The lab's certificate and other faults, `fault` or `fault@node`. */
const faultsOf = (t: TestLab) => t.lab.status().clusters[0]!.faults.map((f) => `${f.fault}${f.node ? `@${f.node}` : ''}`).sort()

// The node's CA files are the CA the API serves under, and renewing certificates the documented way (renew, then
// restart what serves them) ends the cluster's certificate faults.
describe('kubeadm lab: certificates', () => {
  let t: TestLab
  const ssh = labSsh(() => t)
  beforeAll(async () => {
    t = await startLab(smallTopology('127.0.60', { workers: 1 }), { nodeFactory: labNodeFactory })
  })
  afterAll(async () => t?.stop())

  it('pki/ca.crt on every node verifies the certificate the API serves on the kubernetes ClusterIP', async () => {
    for (const n of ['cp-1', 'w-1']) {
      const r = await ssh(n, 'curl -sS --cacert /etc/kubernetes/pki/ca.crt https://10.96.0.1/readyz; echo " rc=$?"')
      expect(r.stdout).toBe('ok rc=0\n')
    }
  })

  it('cert-expired: curl refuses the API certificate; kubeadm certs renew all + kubelet restart ends it', async () => {
    t.lab.setFault({ fault: 'cert-expired', cluster: 'lab' }, true)
    const bad = await ssh('cp-1', 'curl -sS --cacert /etc/kubernetes/pki/ca.crt https://10.96.0.1/readyz; echo " rc=$?"; kubeadm certs check-expiration | grep "^apiserver "')
    expect(bad.stdout).toMatch(/^ rc=60\napiserver .*<invalid>/)
    expect(bad.stderr).toMatch(/certificate has expired|certificate is not yet valid|expired/i)
    const renewed = await ssh('cp-1', 'kubeadm certs renew all && systemctl restart kubelet')
    expect(renewed.code).toBe(0)
    expect(renewed.stdout).toContain('Done renewing certificates. You must restart the kube-apiserver, kube-controller-manager, kube-scheduler and etcd, so that they can use the new certificates.\n')
    await eventually(() => (t.lab.status().clusters[0]!.faults.length === 0 ? true : undefined), 10_000, 'cert fault cleared')
    const good = await ssh('cp-1', 'curl -sS --cacert /etc/kubernetes/pki/ca.crt https://10.96.0.1/readyz; echo " rc=$?"; kubeadm certs check-expiration | grep "^apiserver "')
    expect(good.stdout).toMatch(/^ok rc=0\napiserver .* 36[45]d /)
  })
})

describe('k3s lab: certificates', () => {
  let t: TestLab
  const ssh = labSsh(() => t)
  beforeAll(async () => {
    t = await startLab(smallTopology('127.0.64', { distribution: 'k3s', workers: 0 }), { nodeFactory: labNodeFactory })
  })
  afterAll(async () => t?.stop())

  it('server-ca.crt verifies the API; k3s certificate rotate + restart ends cert-expiring', async () => {
    const ca = '/var/lib/rancher/k3s/server/tls/server-ca.crt'
    expect((await ssh('cp-1', `curl -sS --cacert ${ca} https://10.43.0.1/readyz; echo " rc=$?"`)).stdout).toBe('ok rc=0\n')
    t.lab.setFault({ fault: 'cert-expiring', cluster: 'lab' }, true)
    expect((await ssh('cp-1', 'k3s certificate check --output table | grep serving-kube-apiserver')).stdout).toMatch(/WARNING\n$/)
    const r = await ssh('cp-1', 'systemctl stop k3s && k3s certificate rotate && systemctl start k3s')
    expect(r.code).toBe(0)
    await eventually(() => (t.lab.status().clusters[0]!.faults.length === 0 ? true : undefined), 10_000, 'cert fault cleared')
    expect((await ssh('cp-1', 'k3s certificate check --output table | grep serving-kube-apiserver')).stdout).toMatch(/OK\n$/)
  })
})

// k3s renews what expired or expires within 90 days at each start (facts §3.1), each node its own: an agent fetches its
// certificates from a server, so restarting agents did nothing until the server was fixed (the k3s post-mortem).
describe('k3s lab: certificates renewed at start, a server first', () => {
  let t: TestLab
  const ssh = labSsh(() => t)
  const agentCert = '/var/lib/rancher/k3s/agent/client-kubelet.crt'
  const valid = (n: string, file: string) => validity(ssh, n, file)
  const faults = () => faultsOf(t)
  beforeAll(async () => {
    t = await startLab(smallTopology('127.0.168', { distribution: 'k3s', workers: 1 }), { nodeFactory: labNodeFactory })
  })
  afterAll(async () => t?.stop())

  it('expired: an agent restarted first stays expired; the server restarted serves a renewed certificate; then the agent renews its own', async () => {
    t.lab.setFault({ fault: 'cert-expired', cluster: 'lab' }, true)
    const ca = '/var/lib/rancher/k3s/server/tls/server-ca.crt'
    expect((await ssh('w-1', 'systemctl restart k3s-agent')).code).toBe(0)
    await new Promise((r) => setTimeout(r, 600))
    expect(await valid('w-1', agentCert)).toBe('expired')
    expect(faults()).toEqual(['cert-expired'])

    expect((await ssh('cp-1', 'systemctl restart k3s')).code).toBe(0)
    await eventually(() => (faults().includes('cert-expired') ? undefined : true), 10_000, 'the cluster-wide fault ended by the server start')
    expect((await ssh('cp-1', `curl -sS --cacert ${ca} https://10.43.0.1/readyz; echo " rc=$?"`)).stdout).toBe('ok rc=0\n')
    expect(await valid('cp-1', '/var/lib/rancher/k3s/server/tls/serving-kube-apiserver.crt')).toBe('valid')
    expect(faults()).toEqual(['cert-expired@w-1'])
    expect(await valid('w-1', agentCert)).toBe('expired')

    expect((await ssh('w-1', 'systemctl restart k3s-agent')).code).toBe(0)
    await eventually(() => (faults().length === 0 ? true : undefined), 10_000, 'the agent renewed its own')
    expect(await valid('w-1', agentCert)).toBe('valid')
  })

  it('expiring in more than 90 days: a start renews nothing; k3s certificate rotate does', async () => {
    t.lab.setFault({ fault: 'cert-expiring', cluster: 'lab', params: { days: 100 } }, true)
    expect((await ssh('cp-1', 'systemctl restart k3s')).code).toBe(0)
    await new Promise((r) => setTimeout(r, 600))
    expect(faults()).toEqual(['cert-expiring'])
    expect((await ssh('cp-1', 'systemctl stop k3s && k3s certificate rotate && systemctl start k3s')).code).toBe(0)
    await eventually(() => (faults().includes('cert-expiring') ? undefined : true), 10_000, 'rotated')
    expect(faults()).toEqual(['cert-expiring@w-1'])
    t.lab.clearFault({ fault: 'cert-expiring', cluster: 'lab', node: 'w-1' })
  })
})

// k0s renews a controller's certificates at every start; a worker's kubelet its client certificate from the API.
describe('k0s lab: certificates renewed at start, a controller first', () => {
  let t: TestLab
  const ssh = labSsh(() => t)
  const faults = () => faultsOf(t)
  const valid = (n: string, file: string) => validity(ssh, n, file)
  beforeAll(async () => {
    t = await startLab(smallTopology('127.0.171', { distribution: 'k0s', workers: 1 }), { nodeFactory: labNodeFactory })
  })
  afterAll(async () => t?.stop())

  it('expired: a worker restarted first stays expired; the controller restarted renews its own; then the worker renews its kubelet certificate', async () => {
    const kubelet = '/var/lib/k0s/kubelet/pki/kubelet-client-current.pem'
    t.lab.setFault({ fault: 'cert-expired', cluster: 'lab' }, true)
    expect((await ssh('w-1', 'systemctl restart k0sworker')).code).toBe(0)
    await new Promise((r) => setTimeout(r, 600))
    expect(await valid('w-1', kubelet)).toBe('expired')
    expect((await ssh('cp-1', 'systemctl restart k0scontroller')).code).toBe(0)
    await eventually(() => (faults().includes('cert-expired') ? undefined : true), 10_000, 'the controller renewed its own')
    expect(await valid('cp-1', '/var/lib/k0s/pki/server.crt')).toBe('valid')
    expect([faults(), await valid('w-1', kubelet)]).toEqual([['cert-expired@w-1'], 'expired'])
    expect((await ssh('w-1', 'systemctl restart k0sworker')).code).toBe(0)
    await eventually(() => (faults().length === 0 ? true : undefined), 10_000, 'the worker renewed its own')
    expect(await valid('w-1', kubelet)).toBe('valid')
  })
})
