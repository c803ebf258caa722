import type { Distribution } from '../plan/versions.js'
import type { DiskFacts, HostFacts, IptablesBackend, OsFacts, PackageManager } from './types.js'

/** Parsers for the node script's sections. Each takes one section's text and never throws: odd output → absent. */

/** /etc/os-release: KEY=value lines, values optionally quoted (os-release(5)). */
export function parseOsRelease(text: string): OsFacts | undefined {
  const kv = new Map<string, string>()
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim())
    if (!m) continue
    let v = m[2]!.trim()
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1).replace(/\\(["$`\\])/g, '$1')
    kv.set(m[1]!, v)
  }
  const id = kv.get('ID')
  if (!id) return undefined
  return { id, ...(kv.has('VERSION_ID') ? { versionId: kv.get('VERSION_ID')! } : {}), ...(kv.has('PRETTY_NAME') ? { prettyName: kv.get('PRETTY_NAME')! } : {}) }
}

/** `df -P -B1 / /var`: one row per path argument, in order (POSIX format never wraps a row). */
export function parseDf(text: string, paths = ['/', '/var']): DiskFacts[] {
  const rows = text.split('\n').slice(1).map((l) => /^(.*?)\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+%\s+(.+)$/.exec(l.trim())).filter((m) => m !== null)
  return rows.slice(0, paths.length).map((m, i) => ({
    path: paths[i]!,
    mount: m[5]!,
    totalBytes: Number(m[2]),
    usedBytes: Number(m[3]),
    availableBytes: Number(m[4]),
  }))
}

/** `iptables v1.8.9 (nf_tables)` / `(legacy)`; before 1.8 there was only legacy and no suffix. */
export function parseIptables(text: string): { backend?: IptablesBackend; version?: string } {
  const m = /iptables v(\d+\.\d+(?:\.\d+)?)(?:\s+\((nf_tables|legacy)\))?/.exec(text)
  if (!m) return {}
  return { version: m[1]!, backend: (m[2] as IptablesBackend | undefined) ?? 'legacy' }
}

const VERSION = /v\d+\.\d+\.\d+[0-9A-Za-z.+-]*/

/** The installed distribution version from its own binary (facts §2.1–2.3). */
export function parseInstalledVersion(dist: Distribution, sections: Map<string, string>): string | undefined {
  if (dist === 'k3s') return /^k3s version (v\S+)/m.exec(sections.get('k3s') ?? '')?.[1]
  if (dist === 'k0s') return VERSION.exec(sections.get('k0s') ?? '')?.[0]
  return VERSION.exec(sections.get('kubeadm') ?? '')?.[0]
}

/** `Kubernetes v1.29.2` (kubelet --version). */
export const parseKubeletVersion = (text: string): string | undefined => /^Kubernetes (v\S+)/m.exec(text)?.[1]

export function parseServices(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^([\w@.-]+)=(\S*)$/.exec(line.trim())
    // systemctl answers "inactive" for units it has never heard of; only report units that exist in some state.
    if (m && m[2] && m[2] !== 'unknown') out[m[1]!] = m[2]
  }
  return out
}

/**
 * Reboot-required from whichever signal the OS has (facts §6): Debian/Ubuntu's /var/run/reboot-required, RHEL's
 * `needs-restarting -r` (exit 1 = reboot needed; the text is checked too, as dnf5 exits non-zero for other reasons),
 * Flatcar's update_engine (UPDATE_STATUS_UPDATED_NEED_REBOOT).
 */
export function parseReboot(sections: Map<string, string>): { required?: boolean; source?: string } {
  const ue = sections.get('update-engine') ?? ''
  if (/CURRENT_OP=/.test(ue)) return { required: /UPDATE_STATUS_UPDATED_NEED_REBOOT/.test(ue), source: 'update_engine_client' }
  const nr = sections.get('needs-restarting') ?? ''
  if (nr) {
    if (/Reboot is required|reboot is required/i.test(nr)) return { required: true, source: 'needs-restarting -r' }
    if (/Reboot should not be necessary|No core libraries/i.test(nr)) return { required: false, source: 'needs-restarting -r' }
  }
  const file = (sections.get('reboot-file') ?? '').split('\n')[0]
  if (file === 'yes') return { required: true, source: '/var/run/reboot-required' }
  // On Debian-family hosts the absent file is the answer; elsewhere its absence says nothing.
  if (file === 'no' && parsePackageManager(sections.get('pkg') ?? '', sections.get('os') ?? '') === 'apt') return { required: false, source: '/var/run/reboot-required' }
  return {}
}

/**
 * The OS family decides the package manager (os-release ID and ID_LIKE); which tools answer `command -v` only
 * breaks ties (dnf vs yum) and covers an unknown ID. Tools alone mislead: a Debian host can have `dnf` installed.
 */
export function parsePackageManager(text: string, osRelease = ''): PackageManager {
  const found = text.split('\n').map((l) => l.trim())
  const ids = [...osRelease.matchAll(/^(?:ID|ID_LIKE)=["']?([^"'\n]*)/gm)].flatMap((m) => m[1]!.split(/\s+/))
  if (ids.some((i) => i === 'flatcar' || i === 'coreos')) return 'flatcar'
  if (ids.some((i) => i === 'debian' || i === 'ubuntu')) return 'apt'
  if (ids.some((i) => ['rhel', 'fedora', 'centos', 'rocky', 'almalinux'].includes(i))) return found.includes('dnf') || !found.includes('yum') ? 'dnf' : 'yum'
  if (found.includes('update_engine_client')) return 'flatcar'
  if (found.includes('apt-get')) return 'apt'
  if (found.includes('dnf')) return 'dnf'
  if (found.includes('yum')) return 'yum'
  return 'unknown'
}

/**
 * A k0s controller's service definition (`ExecStart=` of k0scontroller.service, OpenRC `command_args=`): whether it
 * runs workloads, i.e. a kubelet and a Node object (`k0s install controller --enable-worker`, written as
 * `--enable-worker=true`, or `--single`). undefined when there is no controller service.
 */
export function parseK0sControllerWorkloads(text: string): boolean | undefined {
  if (!text.trim()) return undefined
  return /(^|[\s"'])--(enable-worker|single)(=true)?(?=[\s"']|$)/m.test(text)
}

/**
 * `uname -m` in Kubernetes' words (the `kubernetes.io/arch` label, GOARCH), as the k3s and k0s install scripts map it
 * to pick a release binary: x86_64 → amd64, aarch64 → arm64, armv7l (any arm*) → arm; others as they are.
 */
export function archOfMachine(machine: string): string {
  if (machine === 'x86_64' || machine === 'amd64') return 'amd64'
  if (machine === 'aarch64' || machine === 'arm64') return 'arm64'
  if (machine.startsWith('arm')) return 'arm'
  return machine
}

export function parseHostFacts(dist: Distribution, sections: Map<string, string>): HostFacts {
  const ipt = parseIptables(sections.get('iptables') ?? '')
  const reboot = parseReboot(sections)
  const os = parseOsRelease(sections.get('os') ?? '')
  const [kernel, machine] = (sections.get('kernel') ?? '').split('\n').map((l) => l.trim())
  const arch = machine ? archOfMachine(machine) : undefined
  const installedVersion = parseInstalledVersion(dist, sections)
  const kubeletBinaryVersion = parseKubeletVersion(sections.get('kubelet') ?? '')
  const k0sWorkloads = dist === 'k0s' ? parseK0sControllerWorkloads(sections.get('k0s-controller') ?? '') : undefined
  const k0sRunning = dist === 'k0s' ? /^Version: (v\S+)$/m.exec(sections.get('k0s-status') ?? '')?.[1] : undefined
  return {
    ...(k0sWorkloads !== undefined ? { k0sControllerWorkloads: k0sWorkloads } : {}),
    ...(k0sRunning ? { k0sControllerRunning: k0sRunning } : {}),
    ...(installedVersion ? { installedVersion } : {}),
    ...(kubeletBinaryVersion ? { kubeletBinaryVersion } : {}),
    services: parseServices(sections.get('services') ?? ''),
    ...(os ? { os } : {}),
    ...(kernel ? { kernel } : {}),
    ...(arch ? { arch } : {}),
    ...(ipt.backend ? { iptablesBackend: ipt.backend } : {}),
    ...(ipt.version ? { iptablesVersion: ipt.version } : {}),
    disk: parseDf(sections.get('df') ?? ''),
    ...(reboot.required !== undefined ? { rebootRequired: reboot.required, rebootSource: reboot.source! } : {}),
    packageManager: parsePackageManager(sections.get('pkg') ?? '', sections.get('os') ?? ''),
  }
}
