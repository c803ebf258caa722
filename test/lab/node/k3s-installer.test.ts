import { execFile } from 'node:child_process'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { clientKey, nodesForThisFile, recordEvents, sshExec, type TestNode } from './helpers.js'

const node = nodesForThisFile()
const mirror = ['v1.29.2+k3s1', 'v1.30.4+k3s1']

// k3s-io/k3s install.sh setup_env: with only flags (or nothing) the command is `agent` when K3S_URL is set, else
// `server`; the unit and env file are rewritten from this run's environment on every run.
describe('the k3s installer decides server or agent as install.sh does', () => {
  it('re-run on an agent without K3S_URL/K3S_TOKEN: installs a k3s server unit, the agent keeps its old version', async () => {
    const t = await node({ name: 'w-1', role: 'worker', mirror, timing: { serviceStartMs: 100 } })
    const ev = recordEvents(t.node)
    const r = await sshExec(t.node, 'curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.30.4+k3s1 sh -')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('[INFO]  systemd: Creating service file /etc/systemd/system/k3s.service\n')
    expect(r.stdout).toContain('[INFO]  systemd: Starting k3s\n')
    const unit = readFileSync(join(t.node.paths.root, 'etc/systemd/system/k3s.service'), 'utf8')
    // As install.sh lays it out (quote_indent): the command, then a continuation even without arguments.
    expect(unit).toContain("\nExecStart=/usr/local/bin/k3s \\\n    server \\\n\n")
    expect(unit).toContain('\nType=notify\n')
    expect(readFileSync(join(t.node.paths.root, 'etc/systemd/system/k3s.service.env'), 'utf8')).toBe('')
    // The node's own unit (k3s-agent) was never restarted: it still runs the old binary; the fleet saw no start.
    expect(t.node.getState()).toMatchObject({ installedVersion: 'v1.30.4+k3s1', runningVersion: 'v1.29.2+k3s1' })
    expect(ev.list.filter((e) => e.name === 'service')).toEqual([])
    expect((await sshExec(t.node, 'systemctl is-active k3s k3s-agent')).stdout).toBe('active\nactive\n')
  })

  it('`sh -s - agent` without K3S_URL/K3S_TOKEN rewrites the agent env file empty; the agent then fails to start', async () => {
    const t = await node({ name: 'w-2', role: 'worker', mirror, timing: { serviceStartMs: 100 } })
    expect(readFileSync(join(t.node.paths.root, 'etc/systemd/system/k3s-agent.service.env'), 'utf8')).toContain('K3S_URL=')
    const r = await sshExec(t.node, 'curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.30.4+k3s1 sh -s - agent')
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('Job for k3s-agent.service failed because the control process exited with error code.\nSee "systemctl status k3s-agent.service" and "journalctl -xeu k3s-agent.service" for details.\n')
    expect(readFileSync(join(t.node.paths.root, 'etc/systemd/system/k3s-agent.service.env'), 'utf8')).toBe('')
    const j = await sshExec(t.node, 'systemctl is-active k3s-agent; journalctl -u k3s-agent --no-pager | grep fatal')
    expect(j.stdout).toMatch(/^failed\n.* k3s\[\d+\]: time="[^"]+" level=fatal msg="--token is required"\n$/)
  })

  it('`sh -s - agent` with K3S_TOKEN alone: the agent then fails to start with k3s\'s --server is required; through the real OpenSSH client', async () => {
    const t = await node({ name: 'w-4', role: 'worker', mirror, timing: { serviceStartMs: 100 } })
    const ssh = openssh(t)
    const r = await ssh("curl -sfL https://get.k3s.io | K3S_TOKEN='K10lab::server:lab' INSTALL_K3S_VERSION=v1.30.4+k3s1 sh -s - agent")
    expect(r.code).toBe(1)
    expect(readFileSync(join(t.node.paths.root, 'etc/systemd/system/k3s-agent.service.env'), 'utf8')).toBe("K3S_TOKEN='K10lab::server:lab'\n")
    const j = await ssh('systemctl is-active k3s-agent; journalctl -u k3s-agent --no-pager | grep fatal')
    expect(j.stdout).toMatch(/^failed\n.* k3s\[\d+\]: time="[^"]+" level=fatal msg="--server is required"\n$/)
    // Given the server again (a flag this time), it starts.
    const ok = await ssh("curl -sfL https://get.k3s.io | K3S_TOKEN='K10lab::server:lab' INSTALL_K3S_VERSION=v1.30.4+k3s1 sh -s - agent --server https://127.0.10.1:6443")
    expect(ok.code, ok.stderr).toBe(0)
    expect((await ssh('systemctl is-active k3s-agent')).stdout).toBe('active\n')
  })

  it('with K3S_URL and K3S_TOKEN the agent is upgraded and restarted; K3S_URL without a token is refused', async () => {
    const t = await node({ name: 'w-3', role: 'worker', mirror, timing: { serviceStartMs: 100 } })
    const ev = recordEvents(t.node)
    const bad = await sshExec(t.node, 'curl -sfL https://get.k3s.io | K3S_URL=https://127.0.10.1:6443 INSTALL_K3S_VERSION=v1.30.4+k3s1 sh -')
    expect(bad).toMatchObject({ code: 1, stderr: "[ERROR]  Defaulted k3s exec command to 'agent' because K3S_URL is defined, but K3S_TOKEN or K3S_TOKEN_FILE is not defined.\n" })
    const r = await sshExec(t.node, "curl -sfL https://get.k3s.io | K3S_URL=https://127.0.10.1:6443 K3S_TOKEN='K10lab::server:lab' INSTALL_K3S_VERSION=v1.30.4+k3s1 sh -")
    expect(r.code).toBe(0)
    expect(readFileSync(join(t.node.paths.root, 'etc/systemd/system/k3s-agent.service.env'), 'utf8')).toBe("K3S_TOKEN='K10lab::server:lab'\nK3S_URL='https://127.0.10.1:6443'\n")
    // install.sh's setup_env: an agent's unit is Type=exec (a server's Type=notify).
    expect(readFileSync(join(t.node.paths.root, 'etc/systemd/system/k3s-agent.service'), 'utf8')).toContain('\nType=exec\n')
    expect(await ev.next('service', (d) => d['state'] === 'started')).toEqual({ service: 'k3s-agent', state: 'started', version: 'v1.30.4+k3s1', due: expect.any(Number) })
    // Same release, unit and env again: install.sh sees no change and leaves the service alone.
    const again = await sshExec(t.node, "curl -sfL https://get.k3s.io | K3S_URL=https://127.0.10.1:6443 K3S_TOKEN='K10lab::server:lab' INSTALL_K3S_VERSION=v1.30.4+k3s1 sh -")
    expect(again.stdout).toContain('[INFO]  Skipping binary downloaded, installed k3s matches hash\n')
    expect(again.stdout).toMatch(/\[INFO\]  No change detected so skipping service start\n$/)
  })
})

describe('the k3s installer picks the binary of the machine, as install.sh (setup_verify_arch) does', () => {
  it('on an arm64 agent: k3s-arm64, checked against sha256sum-arm64.txt, and it runs', async () => {
    const t = await node({ name: 'w-5', role: 'worker', mirror, arch: 'arm64', timing: { serviceStartMs: 100 } })
    const r = await sshExec(t.node, "curl -sfL https://get.k3s.io | K3S_URL=https://127.0.10.1:6443 K3S_TOKEN='K10lab::server:lab' INSTALL_K3S_VERSION=v1.30.4+k3s1 sh -")
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('[INFO]  Downloading hash https://github.com/k3s-io/k3s/releases/download/v1.30.4+k3s1/sha256sum-arm64.txt\n')
    expect(r.stdout).toContain('[INFO]  Downloading binary https://github.com/k3s-io/k3s/releases/download/v1.30.4+k3s1/k3s-arm64\n')
    expect((await sshExec(t.node, 'k3s --version; systemctl is-active k3s-agent')).stdout).toMatch(/^k3s version v1\.30\.4\+k3s1 .*\nactive\n$/s)
    expect(t.node.getState()).toMatchObject({ installedVersion: 'v1.30.4+k3s1', runningVersion: 'v1.30.4+k3s1' })
  })
})

/** Commands on a test node through the real OpenSSH client, with host-key checking. */
function openssh(t: TestNode): (cmd: string) => Promise<{ code: number; stdout: string; stderr: string }> {
  const key = join(t.dir, 'id_ed25519')
  writeFileSync(key, clientKey.private)
  chmodSync(key, 0o600)
  const known = join(t.dir, 'known_hosts')
  writeFileSync(known, `[${t.node.options.address}]:2222 ${t.node.hostKeyPublic}\n`)
  return (cmd) => promisify(execFile)('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${known}`, '-i', key, '-p', '2222', '-o', 'ConnectTimeout=10', `root@${t.node.options.address}`, cmd], { timeout: 30_000 })
    .then((r) => ({ ...r, code: 0 }), (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }))
}
