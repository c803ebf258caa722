import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { nodesForThisFile, recordEvents, sshExec, waitFor } from './helpers.js'

const node = nodesForThisFile()
const mirror = ['v1.29.2+k3s1', 'v1.30.4+k3s1']

describe('nodes are separate machines', () => {
  it('each node has its own /tmp', async () => {
    const a = await node({ address: '127.0.63.1', name: 'cp-1' })
    const b = await node({ address: '127.0.63.2', name: 'w-1', role: 'worker' })
    await sshExec(a.node, 'echo from-a > /tmp/marker')
    expect((await sshExec(b.node, 'cat /tmp/marker; echo "rc=$?"; stat -c %a /tmp')).stdout).toBe('rc=1\n1777\n')
    expect((await sshExec(a.node, 'cat /tmp/marker')).stdout).toBe('from-a\n')
  })

  it("each node has its own /opt and /srv (an air-gapped site's release folders), and none reaches the host's", async () => {
    const a = await node({ address: '127.0.63.6', name: 'cp-2' })
    const b = await node({ address: '127.0.63.7', name: 'w-2', role: 'worker' })
    for (const dir of ['/opt', '/srv']) {
      await sshExec(a.node, `mkdir -p ${dir}/k3s-lab-marker && echo from-a > ${dir}/k3s-lab-marker/file`)
      expect((await sshExec(b.node, `cat ${dir}/k3s-lab-marker/file; echo "rc=$?"`)).stdout, dir).toBe('rc=1\n')
      expect(existsSync(`${dir}/k3s-lab-marker`), `the host's ${dir}`).toBe(false)
      expect((await sshExec(a.node, `cat ${dir}/k3s-lab-marker/file`)).stdout, dir).toBe('from-a\n')
    }
  })
})

describe('node-not-ready-after-upgrade fires only after a version change', () => {
  it('a plain restart stays ready; the restart onto a new binary leaves the node NotReady', async () => {
    const t = await node({ address: '127.0.63.3', name: 'cp-2', mirror, timing: { serviceStartMs: 100 } })
    const ev = recordEvents(t.node)
    t.node.setFault('node-not-ready-after-upgrade', true)
    await sshExec(t.node, 'systemctl restart k3s')
    await ev.next('service', (d) => d['state'] === 'started')
    expect(t.node.getState()).toMatchObject({ serviceActive: true, notReady: false })
    await sshExec(t.node, 'curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.30.4+k3s1 sh -')
    await ev.next('service', (d) => d['state'] === 'started' && d['version'] === 'v1.30.4+k3s1')
    expect(t.node.getState()).toMatchObject({ serviceActive: true, notReady: true, runningVersion: 'v1.30.4+k3s1' })
  })
})

describe('journalctl keeps history and honours --since and -o json', () => {
  it('filters by time and prints journald JSON fields', async () => {
    const t = await node({ address: '127.0.63.4', name: 'cp-3', timing: { serviceStartMs: 100 } })
    // Two restarts a few seconds apart: --since between them shows only the second; the first stays in history.
    await sshExec(t.node, 'systemctl restart k3s')
    const mark = (await sshExec(t.node, 'sleep 1.1; date -u "+%Y-%m-%d %H:%M:%S"; sleep 1.1')).stdout.trim()
    await sshExec(t.node, 'systemctl restart k3s')
    const all = (await sshExec(t.node, 'journalctl -u k3s --no-pager | grep -c "Started k3s.service"')).stdout
    const since = (await sshExec(t.node, `journalctl -u k3s --no-pager --since '${mark}' | grep -c "Started k3s.service"`)).stdout
    expect(Number(all)).toBeGreaterThanOrEqual(2)
    expect(since).toBe('1\n')
    expect((await sshExec(t.node, 'journalctl -u k3s --since "1 hour ago" | grep -c "Started k3s.service"')).stdout).toBe(all)
    expect((await sshExec(t.node, 'journalctl -u k3s --since -1h -o cat | tail -n 1')).stdout).toBe('Started k3s.service.\n')
    const json = (await sshExec(t.node, 'journalctl -u k3s -o json -n 1')).stdout
    const entry = JSON.parse(json) as Record<string, string>
    expect(entry).toMatchObject({ _HOSTNAME: 'cp-3', SYSLOG_IDENTIFIER: 'systemd', _PID: '1', _SYSTEMD_UNIT: 'k3s.service', MESSAGE: 'Started k3s.service.' })
    expect(Number(entry['__REALTIME_TIMESTAMP']) / 1e6).toBeGreaterThan(Date.now() / 1000 - 3600)
    expect((await sshExec(t.node, 'journalctl -u k3s --since "2999-01-01"')).stdout).toBe('-- No entries --\n')
    expect(await sshExec(t.node, 'journalctl -u k3s --since "not a time"')).toMatchObject({ code: 1, stderr: 'Failed to parse timestamp: not a time\n' })
    await waitFor('history kept', async () => (await sshExec(t.node, 'journalctl -u k3s | grep -c "Starting k3s.service"')).stdout.trim() === all.trim())
  })
})

describe('disk-full is a full filesystem for every program', () => {
  it('writes under / and /var fail with ENOSPC; reads work; kubeadm upgrade node fails; clearing restores', async () => {
    const t = await node({ address: '127.0.63.5', name: 'w-2', role: 'worker', distribution: 'kubeadm', version: 'v1.29.2', mirror: ['v1.29.2'] })
    t.node.setFault('disk-full', true)
    const r = await sshExec(t.node, [
      'head -c 8192 /dev/zero > /var/lib/big; echo "var rc=$?"',
      'head -c 8192 /dev/zero > /etc/kubernetes/big; echo "etc rc=$?"',
      'python3 -c "open(\'/tmp/x\',\'w\').write(\'y\'*65536)" 2>&1 | tail -n 1',
      'cat /etc/kubernetes/kubelet.conf >/dev/null 2>&1 || test -d /etc/kubernetes && echo readable',
    ].join('; '))
    expect(r.stdout).toBe('var rc=1\netc rc=1\nOSError: [Errno 28] No space left on device\nreadable\n')
    expect(r.stderr).toContain('No space left on device')
    const kubeadm = await sshExec(t.node, 'kubeadm upgrade node')
    expect(kubeadm.code).toBe(1)
    expect(kubeadm.stderr).toMatch(/no space left on device/)
    t.node.setFault('disk-full', false)
    expect((await sshExec(t.node, 'head -c 8192 /dev/zero > /var/lib/big; echo "rc=$?"; rm -f /var/lib/big')).stdout).toBe('rc=0\n')
  })
})
