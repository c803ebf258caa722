import type { PackageManager } from '../../facts/types.js'
import { shellJoin } from '../../transport/quote.js'
import type { Check, Command } from '../program.js'
import { nodeCheck, onNode, script } from './commands.js'

/**
 * Kubernetes packages from pkgs.k8s.io (facts §3.3): one repository per minor, packages held between upgrades
 * (`apt-mark hold` on Debian/Ubuntu; the repository's `exclude=` line plus `--disableexcludes=kubernetes` on
 * dnf/yum). Each helper gives the commands for a known package manager; with none known (offline `plan`), one
 * script that asks the node which one it has and runs the same commands.
 */
export type Pm = 'apt' | 'dnf' | 'yum'

export const REPO_FILE: Record<Pm, string> = {
  apt: '/etc/apt/sources.list.d/kubernetes.list',
  dnf: '/etc/yum.repos.d/kubernetes.repo',
  yum: '/etc/yum.repos.d/kubernetes.repo',
}

export function packageManagerOf(pm: PackageManager | undefined, what: string): Pm | undefined {
  if (pm === undefined || pm === 'unknown') return undefined
  if (pm === 'flatcar') throw new Error(`${what}: Flatcar has no package manager for the Kubernetes packages (kubeadm on Flatcar is installed from sysext images, which kupgrade does not manage)`)
  return pm
}

/** `v1.30` → the pkgs.k8s.io path segment `core:/stable:/v1.30/`. */
export const repoPath = (minor: string): string => `pkgs.k8s.io/core:/stable:/${minor}/`

export function switchRepo(pm: Pm, minor: string): string[][] {
  // Rewrites every pkgs.k8s.io minor on the line(s): apt's deb line; dnf's baseurl and gpgkey.
  const sed = ['sed', '-i', '-E', `s#(pkgs\\.k8s\\.io/core:/stable:/)v1\\.[0-9]+/#\\1${minor}/#g`, REPO_FILE[pm]]
  return pm === 'apt' ? [sed, ['apt-get', 'update']] : [sed]
}

export function repoCheck(pm: Pm | undefined, minor: string): Check {
  const files = pm ? [REPO_FILE[pm]] : [REPO_FILE.apt, REPO_FILE.dnf]
  return nodeCheck(['grep', '-sqF', repoPath(minor), ...files], `the Kubernetes package repository serves ${minor}`, { exitCode: 0 }, { okExitCodes: [0, 1, 2] })
}

/** Package specs: apt `kubeadm=1.30.4-*` (or the plan's exact version), dnf `kubeadm-1.30.4-*` (facts §3.3). */
export function install(pm: Pm, packages: string[], version: string, exact?: string, downgrade = false): string[] {
  const core = version.replace(/^v/, '')
  if (pm === 'apt') return ['apt-get', 'install', '-y', ...(downgrade ? ['--allow-downgrades', '--allow-change-held-packages'] : []), ...packages.map((p) => `${p}=${exact ?? `${core}-*`}`)]
  return [pm, 'install', '-y', '--refresh', ...packages.map((p) => `${p}-${core}-*`), '--disableexcludes=kubernetes']
}

export const hold = (packages: string[]): string[] => ['apt-mark', 'hold', ...packages]
export const unhold = (packages: string[]): string[] => ['apt-mark', 'unhold', ...packages]

/** The commands per package manager, or one script choosing among them on the node when the manager is unknown. */
export function perPackageManager(pm: Pm | undefined, build: (pm: Pm) => string[][], why: string, timeoutMs?: number): Command[] {
  const extra = timeoutMs !== undefined ? { timeoutMs } : {}
  if (pm) return build(pm).map((argv) => onNode(argv, why, extra))
  const branch = (p: Pm) => build(p).map(shellJoin).join(' && ') || 'true'
  return [
    script(
      [
        `if command -v apt-get >/dev/null 2>&1; then ${branch('apt')}`,
        `elif command -v dnf >/dev/null 2>&1; then ${branch('dnf')}`,
        `elif command -v yum >/dev/null 2>&1; then ${branch('yum')}`,
        "else echo 'kupgrade: no apt-get, dnf or yum on this node' >&2; exit 1; fi",
      ],
      why,
      extra,
    ),
  ]
}

/** "apt-get install -y kubeadm=1.30.4-* (dnf: dnf install …)" for titles, from the same builders. */
export function describePerPm(pm: Pm | undefined, build: (pm: Pm) => string[][]): string {
  const text = (p: Pm) => build(p).map(shellJoin).join(' && ') || 'nothing to do'
  return pm ? text(pm) : `${text('apt')} (dnf: ${text('dnf')})`
}
