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
