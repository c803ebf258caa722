import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { nodesForThisFile, recordEvents, sshExec } from './helpers.js'

const node = nodesForThisFile()

describe('node lifecycle commands: kill, reset, uninstall, plan', () => {
  it('k3s agent: killall stops the service and keeps data; the agent uninstall script removes binary and data', async () => {
    const t = await node({ name: 'w-1', role: 'worker' })
    const ev = recordEvents(t.node)
    const kill = await sshExec(t.node, 'k3s-killall.sh; systemctl is-active k3s-agent; ls /var/lib/rancher/k3s/agent | head -n 1')
    expect(kill.stdout).toBe('inactive\nclient-ca.crt\n')
    expect(kill.stderr).toContain('+ systemctl stop k3s-agent\n')
    expect(await ev.next('service')).toEqual({ service: 'k3s-agent', state: 'stopped', version: 'v1.29.2+k3s1' })
    const un = await sshExec(t.node, 'k3s-agent-uninstall.sh >/dev/null 2>&1; echo rc=$?; command -v k3s || echo no-k3s; ls /var/lib/rancher')
    expect(un.stdout).toBe('rc=0\nno-k3s\n')
    expect(await ev.next('installed')).toEqual({ version: '', binary: 'k3s' })
    expect(t.node.getState().installedVersion).toBe('')
    expect(existsSync(join(t.node.paths.root, 'etc/systemd/system/k3s-agent.service'))).toBe(false)
    const start = await sshExec(t.node, 'systemctl start k3s-agent')
    expect(start).toMatchObject({ code: 5, stderr: 'Failed to start k3s-agent.service: Unit k3s-agent.service not found.\n' })
  })

  it('kubeadm: upgrade plan names the target, upgrade node on a worker, reset -f clears the node', async () => {
    const cp = await node({ distribution: 'kubeadm', version: 'v1.29.2', mirror: ['v1.29.2', 'v1.29.8', 'v1.30.4'] })
    const plan = await sshExec(cp.node, 'kubeadm upgrade plan')
    expect(plan.stdout).toContain('[upgrade/versions] Cluster version: v1.29.2\n[upgrade/versions] kubeadm version: v1.29.2\n[upgrade/versions] Latest version in the v1.29 series: v1.29.8\n')
    expect(plan.stdout).toMatch(/\n\tkubeadm upgrade apply v1\.29\.8\n/)
    expect(plan.stdout).toMatch(/\nkube-apiserver {12}cp-1 {6}v1\.29\.2 {4}v1\.29\.8\n/)

    const w = await node({ name: 'w-1', role: 'worker', distribution: 'kubeadm', version: 'v1.29.2', mirror: ['v1.29.2'] })
    const ev = recordEvents(w.node)
    const up = await sshExec(w.node, 'kubeadm upgrade node')
    expect(up.stdout).toContain('[upgrade] The configuration for this node was successfully updated!\n')
    expect(await ev.next('upgrade-applied')).toEqual({ command: 'node', version: 'v1.29.2' })
    const noAnswer = await sshExec(w.node, 'kubeadm reset', { stdin: '' })
    expect(noAnswer.code).toBe(1)
    expect(noAnswer.stderr).toContain("won't proceed; the user didn't answer (Y|y) in order to continue")
    const reset = await sshExec(w.node, 'kubeadm reset -f >/dev/null 2>&1; echo rc=$?; systemctl is-active kubelet; ls /var/lib/kubelet | wc -l')
    expect(reset.stdout).toBe('rc=0\ninactive\n0\n')
  })

  it('k0s: reset after stop removes data; etcd member-list on a controller', async () => {
    const t = await node({ distribution: 'k0s', version: 'v1.29.2+k0s.0', mirror: ['v1.29.2+k0s.0'] })
    const members = await sshExec(t.node, 'k0s etcd member-list')
    expect(JSON.parse(members.stdout)).toEqual({ members: { 'cp-1': `https://${t.node.options.address}:2380` } })
    const r = await sshExec(t.node, 'k0s stop && k0s reset 2>/dev/null; echo rc=$?; ls /var/lib/k0s | wc -l; k0s status')
    expect(r.stdout).toBe('rc=0\n0\n')
    expect(r.stderr).toBe('Error: k0s is not running\n')
  })

  it('writes the control side\'s admin kubeconfig where each distribution keeps it, on control-plane nodes only', async () => {
    const kubeconfig = 'apiVersion: v1\nkind: Config\ncurrent-context: lab\n'
    const k3s = await node({ adminKubeconfig: kubeconfig })
    expect((await sshExec(k3s.node, 'cat /etc/rancher/k3s/k3s.yaml')).stdout).toBe(kubeconfig)
    const kubeadm = await node({ name: 'cp-2', distribution: 'kubeadm', version: 'v1.30.4', mirror: ['v1.30.4'], adminKubeconfig: kubeconfig })
    expect((await sshExec(kubeadm.node, 'cat /etc/kubernetes/admin.conf; kubeadm certs check-expiration | grep -c "^admin.conf "')).stdout).toBe(`${kubeconfig}1\n`)
    // From this node the VIP is gone under api-vip-unreachable: kubectl's dial times out with its own message.
    kubeadm.node.setFault('api-vip-unreachable', true)
    const vip = await sshExec(kubeadm.node, 'kubectl --server https://127.0.10.1:6443 --request-timeout=1s get nodes')
    expect(vip).toMatchObject({ code: 1, stderr: 'Unable to connect to the server: dial tcp 127.0.10.1:6443: i/o timeout\n' })
    const worker = await node({ name: 'w-9', role: 'worker', distribution: 'kubeadm', version: 'v1.30.4', mirror: ['v1.30.4'], adminKubeconfig: kubeconfig })
    expect((await sshExec(worker.node, 'test -e /etc/kubernetes/admin.conf || echo absent')).stdout).toBe('absent\n')
  })

  it('rocky kubeadm node: dnf installs a package version from the repo, honouring exclude=', async () => {
    const t = await node({ os: 'rocky-9', distribution: 'kubeadm', version: 'v1.29.2', mirror: ['v1.29.2', 'v1.29.8'] })
    const excluded = await sshExec(t.node, 'dnf install -y kubeadm-1.29.8')
    expect(excluded).toMatchObject({ code: 1, stderr: 'No match for argument: kubeadm-1.29.8\nError: Unable to find a match: kubeadm-1.29.8\n' })
    const ok = await sshExec(t.node, 'dnf install -y kubeadm-1.29.8 --disableexcludes=kubernetes >/dev/null && rpm -q kubeadm && kubeadm version -o short')
    expect(ok.stdout).toBe('kubeadm-1.29.8-150500.1.1.x86_64\nv1.29.8\n')
  })
})
