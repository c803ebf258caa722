import { describe, expect, it } from 'vitest'
import { nodeFactsScript, splitSections } from '../../src/facts/node-script.js'
import { archOfMachine, parseDf, parseHostFacts, parseInstalledVersion, parseIptables, parseOsRelease, parsePackageManager, parseReboot, parseServices } from '../../src/facts/parse-host.js'
import { imageTag } from '../../src/facts/image-tag.js'

const sections = (o: Record<string, string>) => new Map(Object.entries(o))

describe('facts/node-script sections', () => {
  it('splits on its own nonce only, so output cannot forge a section', () => {
    const { marker } = nodeFactsScript('abc123')
    const out = `\n${marker} os\nID=debian\n@@kupgrade-evil kernel\n${marker} kernel\n6.1.0-13-amd64\n${marker} k3s\nk3s version v1.29.2+k3s1 (86f10213)\ngo version go1.21.7`
    const s = splitSections(out, marker)
    expect(s.get('os')).toBe('ID=debian\n@@kupgrade-evil kernel')
    expect(s.get('kernel')).toBe('6.1.0-13-amd64')
    expect(s.get('k3s')).toContain('v1.29.2+k3s1')
  })

  it('runs for real in sh and yields every section', async () => {
    const { execFileSync } = await import('node:child_process')
    const { script, marker } = nodeFactsScript()
    const s = splitSections(execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8' }), marker)
    expect([...s.keys()]).toEqual(['os', 'kernel', 'k3s', 'k0s', 'k0s-controller', 'k0s-status', 'kubeadm', 'kubelet', 'services', 'iptables', 'df', 'reboot-file', 'needs-restarting', 'update-engine', 'pkg', 'end'])
    const facts = parseHostFacts('k3s', s)
    expect(facts.os?.id).toMatch(/\w+/)
    expect(facts.kernel).toMatch(/^\d+\.\d+/)
    expect(facts.arch).toBe(archOfMachine(execFileSync('uname', ['-m'], { encoding: 'utf8' }).trim()))
    expect(facts.disk.map((d) => d.path)).toEqual(['/', '/var'])
    expect(facts.disk[0]!.totalBytes).toBeGreaterThan(0)
  })

  it("reads the machine's architecture from uname -m as the k3s and k0s install scripts map it", () => {
    expect(['x86_64', 'aarch64', 'armv7l', 'armv6l', 's390x', 'riscv64'].map(archOfMachine)).toEqual(['amd64', 'arm64', 'arm', 'arm', 's390x', 'riscv64'])
    expect(parseHostFacts('k3s', sections({ kernel: '6.1.0-21-arm64\naarch64' }))).toMatchObject({ kernel: '6.1.0-21-arm64', arch: 'arm64' })
    expect(parseHostFacts('k3s', sections({ kernel: '6.1.0-21-amd64' })).arch).toBeUndefined()
  })

  it('asks systemctl once for every unit and pairs its answers with the units in order', async () => {
    const { execFileSync } = await import('node:child_process')
    const { mkdtempSync, readFileSync, writeFileSync, rmSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const dir = mkdtempSync(join(tmpdir(), 'kupgrade-facts-'))
    try {
      // As systemd's is-active: one state per unit named, in order; "inactive" for a unit it has never heard of;
      // exit 0 when any is active, else 3.
      writeFileSync(join(dir, 'systemctl'), [
        '#!/bin/sh',
        `echo "$*" >> ${dir}/calls`,
        '[ "$1" = is-active ] || exit 1; shift; rc=3',
        'for u in "$@"; do case "$u" in k3s-agent) echo failed ;; kubelet) echo active; rc=0 ;; k0sworker) echo activating ;; *) echo inactive ;; esac; done',
        'exit $rc',
      ].join('\n'), { mode: 0o755 })
      const { script, marker } = nodeFactsScript()
      const out = execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } })
      expect(parseServices(splitSections(out, marker).get('services') ?? '')).toEqual({ k3s: 'inactive', 'k3s-agent': 'failed', k0scontroller: 'inactive', k0sworker: 'activating', kubelet: 'active' })
      expect(readFileSync(join(dir, 'calls'), 'utf8')).toBe('is-active k3s k3s-agent k0scontroller k0sworker kubelet\n')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('facts/parse-host', () => {
  it('reads os-release with and without quotes', () => {
    expect(parseOsRelease('PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian')).toEqual({ id: 'ubuntu', versionId: '22.04', prettyName: 'Ubuntu 22.04.4 LTS' })
    expect(parseOsRelease("NAME='Flatcar Container Linux by Kinvolk'\nID=flatcar\nVERSION_ID=3815.2.0")).toEqual({ id: 'flatcar', versionId: '3815.2.0' })
    expect(parseOsRelease('garbage')).toBeUndefined()
  })

  it('reads df -P -B1 rows in argument order, including filesystems with spaces', () => {
    const text = 'Filesystem     1-blocks        Used   Available Capacity Mounted on\n/dev/sda1   105089261568 41231687680 58479771648      42% /\nmy fs       10000 4000 6000 40% /var\n'
    expect(parseDf(text)).toEqual([
      { path: '/', mount: '/', totalBytes: 105089261568, usedBytes: 41231687680, availableBytes: 58479771648 },
      { path: '/var', mount: '/var', totalBytes: 10000, usedBytes: 4000, availableBytes: 6000 },
    ])
  })

  it('reads the iptables backend; pre-1.8 means legacy', () => {
    expect(parseIptables('iptables v1.8.9 (nf_tables)')).toEqual({ version: '1.8.9', backend: 'nf_tables' })
    expect(parseIptables('iptables v1.8.7 (legacy)')).toEqual({ version: '1.8.7', backend: 'legacy' })
    expect(parseIptables('iptables v1.6.1')).toEqual({ version: '1.6.1', backend: 'legacy' })
    expect(parseIptables('sh: iptables: not found')).toEqual({})
  })

  it('reads each distribution version from its own binary', () => {
    const s = sections({ k3s: 'k3s version v1.29.2+k3s10 (86f10213)\ngo version go1.21.7', k0s: 'v1.29.2+k0s.0', kubeadm: 'v1.29.2' })
    expect(parseInstalledVersion('k3s', s)).toBe('v1.29.2+k3s10')
    expect(parseInstalledVersion('k0s', s)).toBe('v1.29.2+k0s.0')
    expect(parseInstalledVersion('kubeadm', s)).toBe('v1.29.2')
    expect(parseInstalledVersion('k3s', sections({}))).toBeUndefined()
  })

  it('reads reboot-required from each OS family signal', () => {
    expect(parseReboot(sections({ 'reboot-file': 'yes\nlinux-image-6.1', pkg: 'apt-get' }))).toEqual({ required: true, source: '/var/run/reboot-required' })
    expect(parseReboot(sections({ 'reboot-file': 'no', pkg: 'apt-get' }))).toEqual({ required: false, source: '/var/run/reboot-required' })
    expect(parseReboot(sections({ 'reboot-file': 'no', os: 'ID=debian', 'needs-restarting': 'bash: needs-restarting: command not found\nexit=127' }))).toEqual({ required: false, source: '/var/run/reboot-required' })
    expect(parseReboot(sections({ 'reboot-file': 'no', pkg: 'dnf', 'needs-restarting': 'Core libraries or services have been updated since boot-up:\n  * kernel\n\nReboot is required to fully utilize these updates.\nexit=1' }))).toEqual({ required: true, source: 'needs-restarting -r' })
    expect(parseReboot(sections({ 'reboot-file': 'no', pkg: 'dnf', 'needs-restarting': 'No core libraries or services have been updated since boot-up.\nReboot should not be necessary.\nexit=0' }))).toEqual({ required: false, source: 'needs-restarting -r' })
    expect(parseReboot(sections({ 'update-engine': 'LAST_CHECKED_TIME=1\nCURRENT_OP=UPDATE_STATUS_UPDATED_NEED_REBOOT\nNEW_VERSION=3815.2.1' }))).toEqual({ required: true, source: 'update_engine_client' })
    expect(parseReboot(sections({ 'update-engine': 'CURRENT_OP=UPDATE_STATUS_IDLE' }))).toEqual({ required: false, source: 'update_engine_client' })
    // No signal on a dnf host without needs-restarting: unknown, not "no".
    expect(parseReboot(sections({ 'reboot-file': 'no', pkg: 'dnf' }))).toEqual({})
  })

  it('takes the package manager from the OS family, tools only as a fallback', () => {
    expect(parsePackageManager('update_engine_client\napt-get\ndnf', 'ID=ubuntu\nID_LIKE=debian')).toBe('apt')
    expect(parsePackageManager('apt-get\ndnf\nyum', 'ID="rocky"\nID_LIKE="rhel centos fedora"')).toBe('dnf')
    expect(parsePackageManager('yum', 'ID="centos"')).toBe('yum')
    expect(parsePackageManager('apt-get', 'ID=flatcar\nID_LIKE=coreos')).toBe('flatcar')
    expect(parsePackageManager('dnf', 'ID=weird')).toBe('dnf')
    expect(parsePackageManager('', '')).toBe('unknown')
  })

  it('keeps known unit states only', () => {
    expect(parseServices('k3s=active\nk3s-agent=inactive\nkubelet=unknown\nbad line')).toEqual({ 'k3s': 'active', 'k3s-agent': 'inactive' })
  })

  it('takes versions from image tags, undoing kubeadm’s + → _', () => {
    expect(imageTag('registry.k8s.io/kube-proxy:v1.29.2')).toBe('v1.29.2')
    expect(imageTag('quay.io/k0sproject/kube-proxy:v1.30.4')).toBe('v1.30.4')
    expect(imageTag('myreg:5000/kube-proxy:v1.29.2_k3s1@sha256:abcd')).toBe('v1.29.2+k3s1')
    expect(imageTag('myreg:5000/kube-proxy')).toBeUndefined()
  })
})

describe('facts/parse-host k0s controller service', () => {
  it('a controller is a Node only when its service runs workloads (--enable-worker, --single)', async () => {
    const { parseK0sControllerWorkloads } = await import('../../src/facts/parse-host.js')
    expect(parseK0sControllerWorkloads('ExecStart=/usr/local/bin/k0s controller --config=/etc/k0s/k0s.yaml')).toBe(false)
    expect(parseK0sControllerWorkloads('ExecStart=/usr/local/bin/k0s controller --config=/etc/k0s/k0s.yaml --enable-worker=true')).toBe(true)
    expect(parseK0sControllerWorkloads('ExecStart=/usr/local/bin/k0s controller --enable-worker --no-taints')).toBe(true)
    expect(parseK0sControllerWorkloads('ExecStart=/usr/local/bin/k0s controller --single=true')).toBe(true)
    expect(parseK0sControllerWorkloads('command_args="controller --config=/etc/k0s/k0s.yaml --enable-worker=true"')).toBe(true)
    expect(parseK0sControllerWorkloads('ExecStart=/usr/local/bin/k0s controller --enable-worker=false')).toBe(false)
    expect(parseK0sControllerWorkloads('')).toBeUndefined()
    expect(parseHostFacts('k0s', sections({ 'k0s-controller': 'ExecStart=/usr/local/bin/k0s controller' })).k0sControllerWorkloads).toBe(false)
    expect(parseHostFacts('k0s', sections({})).k0sControllerWorkloads).toBeUndefined()
  })

  it("a k0s controller's running version is what k0s status says, not the binary on disk", () => {
    const status = 'Version: v1.29.6+k0s.0\nProcess ID: 6897\nRole: controller\nWorkloads: false\nSingleNode: false\nInit System: linux-systemd\nService file: /etc/systemd/system/k0scontroller.service'
    const f = parseHostFacts('k0s', sections({ k0s: 'v1.30.4+k0s.0', 'k0s-status': status }))
    expect([f.installedVersion, f.k0sControllerRunning]).toEqual(['v1.30.4+k0s.0', 'v1.29.6+k0s.0'])
    // Not running, or the socket not readable: nothing is said to run.
    expect(parseHostFacts('k0s', sections({ k0s: 'v1.30.4+k0s.0', 'k0s-status': '' })).k0sControllerRunning).toBeUndefined()
  })
})
