import { existsSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { HOST_PATH_DIRS, NS_ROOT } from '../../../src/lab/node/namespace.js'
import { nodesForThisFile, recordEvents, sshExec } from './helpers.js'

const node = nodesForThisFile()

describe('node OS stand-ins', () => {
  it('ships the os-release of each supported distribution', async () => {
    const ids: Record<string, string> = { 'ubuntu-22.04': 'ID=ubuntu\nVERSION_ID="22.04"', 'debian-12': 'ID=debian\nVERSION_ID="12"', 'rocky-9': 'ID="rocky"\nVERSION_ID="9.4"', flatcar: 'ID=flatcar\nVERSION_ID=3815.2.5' }
    for (const [os, want] of Object.entries(ids)) {
      const t = await node({ os: os as 'debian-12', name: `n-${os.replace('.', '')}` })
      const r = await sshExec(t.node, '. /etc/os-release; echo "ID=$ID"; grep ^VERSION_ID= /etc/os-release')
      const [id, ver] = want.split('\n')
      expect(r.stdout).toBe(`${id!.replace(/"/g, '')}\n${ver}\n`)
      await t.cleanup()
    }
  })

  // Checked against GNU df 9.1: `df -h /` prints "Filesystem      Size  Used Avail Use% Mounted on" / "/dev/vda
  // 252G   23G   79G  23% /" (every number column at least 5 wide).
  it('formats df like GNU coreutils for -P, -B1, -h and --output, on / and a separate /var', async () => {
    const t = await node({ disk: { totalBytes: 100 * 2 ** 30, usedBytes: 30 * 2 ** 30, var: { totalBytes: 50 * 2 ** 30, usedBytes: 45 * 2 ** 30 } } })
    const r = await sshExec(t.node, 'df -P /; df -B1 /var/lib/etcd; df -h; df --output=source,size,used,avail,pcent,target -B1 /var')
    expect(r.stdout).toBe([
      'Filesystem     1024-blocks     Used Available Capacity Mounted on',
      '/dev/sda1        104857600 31457280  68157440      32% /',
      'Filesystem       1B-blocks        Used  Available Use% Mounted on',
      '/dev/sdb1      53687091200 48318382080 2684354560  95% /var',
      'Filesystem      Size  Used Avail Use% Mounted on',
      '/dev/sda1       100G   30G   65G  32% /',
      '/dev/sdb1        50G   45G  2.5G  95% /var',
      'Filesystem       1B-blocks        Used      Avail Use% Mounted on',
      '/dev/sdb1      53687091200 48318382080 2684354560  95% /var',
      '',
    ].join('\n'))
    // Each field's own minimum width (df.c field_data: Filesystem 14, Type 4, numbers 5, percentages 4, file and
    // target none), text left and numbers right, as GNU df 9.1 prints `df --output=file,fstype,size,target / lib`:
    // "File Type 1K-blocks Mounted on" / "/    ext4 264212084 /". A path is placed by where its links lead, a relative
    // one from the cwd; -T with --output is refused.
    const more = await sshExec(t.node, 'ln -sfn /var/lib /tmp/varlib && cd /var && df --output=file,fstype,size,target / /tmp/varlib lib /missing; echo "rc=$?"; df --output=file,ipcent /; df -T --output=file /; echo "rc=$?"')
    expect(more.stdout).toBe([
      'File        Type 1K-blocks Mounted on',
      '/           ext4 104857600 /',
      '/tmp/varlib ext4  52428800 /var',
      'lib         ext4  52428800 /var',
      'rc=1',
      'File IUse%',
      '/       8%',
      'rc=1',
      '',
    ].join('\n'))
    expect(more.stderr).toBe("df: /missing: No such file or directory\ndf: options -T and --output are mutually exclusive\nTry 'df --help' for more information.\n")
  })

  it('stages an apt upgrade with /run/reboot-required; a reboot applies it and clears the flag', async () => {
    const t = await node({ os: 'ubuntu-22.04' })
    const ev = recordEvents(t.node)
    const up = await sshExec(t.node, 'uname -r; apt-get upgrade -y >/dev/null; cat /var/run/reboot-required /run/reboot-required.pkgs; cat /proc/sys/kernel/random/boot_id')
    const [kernel, flag, ...rest] = up.stdout.trim().split('\n')
    expect([kernel, flag, ...rest.slice(0, -1)].join('\n')).toBe('5.15.0-105-generic\n*** System restart required ***\nlinux-image-generic\nlibc6\nopenssl')
    const bootBefore = rest.at(-1)!
    expect(bootBefore).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    // The kernel's boot id is the node's, not the host's: the host never reboots while a lab node does.
    expect(bootBefore).not.toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim())
    await sshExec(t.node, 'systemctl reboot').catch(() => undefined)
    await ev.next('reboot', (d) => d['phase'] === 'up')
    const after = await sshExec(t.node, 'uname -r; test -e /var/run/reboot-required || echo no-reboot-required; apt-get upgrade -y | tail -n 1; cat /proc/sys/kernel/random/boot_id')
    const lines = after.stdout.trim().split('\n')
    expect(lines.slice(0, 3).join('\n')).toBe('5.15.0-119-generic\nno-reboot-required\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.')
    expect(lines[3]).toMatch(/^[0-9a-f-]{36}$/)
    expect(lines[3]).not.toBe(bootBefore)
    // A command that is no reboot keeps it.
    expect((await sshExec(t.node, 'cat /proc/sys/kernel/random/boot_id')).stdout.trim()).toBe(lines[3])
  })

  it('apt-get upgrade upgrades Kubernetes packages that are not held (a held one is kept back); updates without a kernel or libc ask for no reboot', async () => {
    const t = await node({ distribution: 'kubeadm', version: 'v1.29.2', mirror: ['v1.29.2', 'v1.29.8', 'v1.30.4'], os: 'debian-12', osUpdates: ['openssl', 'curl'] })
    const up = await sshExec(t.node, 'apt-mark unhold kubelet >/dev/null && apt-get upgrade -y; test -e /var/run/reboot-required && echo reboot-required; dpkg-query -W kubelet kubeadm')
    expect(up.stdout).toContain('The following packages have been kept back:\n  kubeadm kubectl\nThe following packages will be upgraded:\n  openssl curl kubelet\n3 upgraded, 0 newly installed, 0 to remove and 2 not upgraded.\n')
    expect(up.stdout).not.toContain('reboot-required')
    expect(up.stdout).toMatch(/kubelet\t1\.29\.8-1\.1\nkubeadm\t1\.29\.2-1\.1\n$/)
    expect(t.node.getState().installedVersion).toBe('v1.29.8')
    const again = await sshExec(t.node, 'apt-get upgrade -y | tail -n 1')
    expect(again.stdout).toBe('0 upgraded, 0 newly installed, 0 to remove and 2 not upgraded.\n')
  })

  it('reports a pending reboot through needs-restarting -r on rocky (facts §6.4) and has no apt-get', async () => {
    const t = await node({ os: 'rocky-9' })
    const ev = recordEvents(t.node)
    const r = await sshExec(t.node, 'needs-restarting -r; echo rc=$?; dnf upgrade -y >/dev/null; dnf needs-restarting -r; echo rc=$?; apt-get update')
    expect(r.stdout).toBe('No core libraries or services have been updated since boot-up.\nReboot should not be necessary.\nrc=0\n' +
      'Core libraries or services have been updated since boot-up:\n  * kernel\n  * glibc\n  * openssl-libs\n\nReboot is required to fully utilize these updates.\nMore information: https://access.redhat.com/solutions/27943\nrc=1\n')
    expect(r).toMatchObject({ code: 127, stderr: 'bash: line 1: apt-get: command not found\n' })
    await sshExec(t.node, 'shutdown -r now').catch(() => undefined)
    await ev.next('reboot', (d) => d['phase'] === 'up')
    expect((await sshExec(t.node, 'needs-restarting -r; echo rc=$?')).stdout).toMatch(/Reboot should not be necessary\.\nrc=0\n$/)
  })

  it('has no tool of another OS family: `command -v` finds none and running one is "command not found"', async () => {
    // A Debian node has neither dnf's nor Flatcar's tools; the facts script's `command -v` guards must skip them
    // here as on a real Debian machine (where the host has such a tool, the node shadows it with bash's answer).
    const t = await node({ os: 'debian-12' })
    const tools = ['dnf', 'yum', 'needs-restarting', 'rpm', 'update_engine_client']
    const absent = tools.filter((tool) => !HOST_PATH_DIRS.some((d) => existsSync(`${d}/${tool}`)))
    expect(absent.length).toBeGreaterThan(0)
    const found = await sshExec(t.node, `for t in ${absent.join(' ')}; do command -v "$t" && echo "found $t"; done; command -v apt-get`)
    expect(found.stdout).toBe(`${NS_ROOT}/bin/apt-get\n`)
    for (const tool of tools) expect(await sshExec(t.node, `${tool} --version`), tool).toMatchObject({ code: 127, stderr: `bash: line 1: ${tool}: command not found\n` })
    await t.cleanup()
  })

  it('updates Flatcar through update_engine_client and a reboot (facts §6.3)', async () => {
    const t = await node({ os: 'flatcar' })
    const ev = recordEvents(t.node)
    const r = await sshExec(t.node, 'update_engine_client -status; update_engine_client -check_for_update 2>/dev/null; update_engine_client -status | grep -E "CURRENT_OP|NEW_VERSION"; test -e /run/reboot-required && echo flagged')
    expect(r.stdout).toMatch(/^LAST_CHECKED_TIME=0\nPROGRESS=0\.000000\nCURRENT_OP=UPDATE_STATUS_IDLE\nNEW_VERSION=0\.0\.0\nNEW_SIZE=0\nCURRENT_OP=UPDATE_STATUS_UPDATED_NEED_REBOOT\nNEW_VERSION=3975\.2\.0\nflagged\n$/)
    await sshExec(t.node, 'reboot').catch(() => undefined)
    await ev.next('reboot', (d) => d['phase'] === 'up')
    expect((await sshExec(t.node, 'grep ^VERSION_ID= /etc/os-release; update_engine_client -status | grep CURRENT_OP')).stdout).toBe('VERSION_ID=3975.2.0\nCURRENT_OP=UPDATE_STATUS_IDLE\n')
  })

  it('shows the iptables backend in -V and KUBE-IPTABLES-HINT only in that backend (facts §4.3)', async () => {
    const t = await node({ iptablesBackend: 'nf_tables' })
    const r = await sshExec(t.node, "iptables -V; iptables-nft-save -t mangle | grep '^:KUBE-IPTABLES-HINT'; iptables-legacy-save | wc -l; iptables-save | grep -c 'default/kubernetes:https cluster IP'")
    expect(r.stdout).toBe('iptables v1.8.7 (nf_tables)\n:KUBE-IPTABLES-HINT - [0:0]\n0\n1\n')
  })
})
