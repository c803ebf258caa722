import type { PackageManager } from '../../facts/types.js'
import { shellJoin } from '../../transport/quote.js'
import type { Check, Command } from '../program.js'
import { nodeCheck, onNode, q, script } from './commands.js'

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

/** A pkgs.k8s.io repository of one minor, as extended regular expressions (sed -E, grep -E): its path, then the minor. */
const REPO_PREFIX = 'pkgs\\.k8s\\.io/core:/stable:/'
const REPO_MINOR = 'v1\\.[0-9]+/'

export function switchRepo(pm: Pm, minor: string): string[][] {
  // Rewrites every pkgs.k8s.io minor on the line(s): apt's deb line; dnf's baseurl and gpgkey.
  const sed = ['sed', '-i', '-E', `s#(${REPO_PREFIX})${REPO_MINOR}#\\1${minor}/#g`, REPO_FILE[pm]]
  return pm === 'apt' ? [sed, ['apt-get', 'update']] : [sed]
}

/** Where the Kubernetes documentation says to move a node off the legacy Google-hosted repositories. */
export const CHANGE_REPOSITORY_DOCS = 'https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/change-package-repository/'

/**
 * A read-only script (the release-source gate's, before the run changes anything): the node's repository file holds a
 * pkgs.k8s.io line that `switchRepo` can move from minor to minor (prints `found <file>: <repository>`), or, with a
 * `kupgrade: ` line and exit 1, why not: no package manager, the legacy Google-hosted repositories (frozen in 2023,
 * removed in 2024: nothing newer than 1.28 there), pkgs.k8s.io configured in another file than the one switched, no
 * pkgs.k8s.io line, no file. Otherwise the run finds out at that node's switch-repo step, after the nodes before it
 * (the control plane first) have moved.
 */
export function repoSwitchableScript(pm?: Pm): string[] {
  const found = `${REPO_PREFIX}${REPO_MINOR}`
  const legacy = '(apt|yum)\\.kubernetes\\.io|packages\\.cloud\\.google\\.com'
  const apt = `f=${q(REPO_FILE.apt)}; set -- /etc/apt/sources.list /etc/apt/sources.list.d`
  const dnf = `f=${q(REPO_FILE.dnf)}; set -- /etc/yum.repos.d`
  return [
    ...(pm === 'apt' ? [apt] : pm ? [dnf] : [
      // As the facts tell the package manager (parsePackageManager): by the OS family first, a tool found only breaks
      // the tie (a Debian host can have dnf installed).
      'family=$( (. /etc/os-release && echo " $ID $ID_LIKE ") 2>/dev/null)',
      'case "$family" in',
      `  *" debian "*|*" ubuntu "*) ${apt} ;;`,
      `  *" rhel "*|*" fedora "*|*" centos "*|*" rocky "*|*" almalinux "*) ${dnf} ;;`,
      `  *) if command -v apt-get >/dev/null 2>&1; then ${apt}; elif command -v dnf >/dev/null 2>&1 || command -v yum >/dev/null 2>&1; then ${dnf}; else echo 'kupgrade: no apt-get, dnf or yum on this node: kupgrade upgrades kubeadm nodes with the kubeadm, kubelet and kubectl packages of pkgs.k8s.io' >&2; exit 1; fi ;;`,
      'esac',
    ]),
    `line=$(grep -Eo ${q(found)} "$f" 2>/dev/null | head -n 1)`,
    'if [ -n "$line" ]; then echo "found $f: $line"; exit 0; fi',
    `if grep -Eqs ${q(legacy)} "$f"; then echo "kupgrade: $f points at the legacy Google-hosted Kubernetes repository (apt.kubernetes.io, yum.kubernetes.io, packages.cloud.google.com), frozen in 2023 and removed in 2024: move the node to pkgs.k8s.io (${CHANGE_REPOSITORY_DOCS}), then run again" >&2; exit 1; fi`,
    `elsewhere=$(grep -rlEs ${q(found)} "$@" | grep -vxF "$f" | head -n 1)`,
    'if [ -n "$elsewhere" ]; then echo "kupgrade: pkgs.k8s.io is configured in $elsewhere, and kupgrade switches the repository of each minor in $f (where the Kubernetes install docs put it): move the line there, then run again" >&2; exit 1; fi',
    `if [ -e "$f" ]; then echo "kupgrade: $f names no pkgs.k8s.io repository (pkgs.k8s.io/core:/stable:/v1.NN/), the one kupgrade switches from minor to minor: point it at pkgs.k8s.io (${CHANGE_REPOSITORY_DOCS}), then run again" >&2; else echo "kupgrade: $f does not exist, and kupgrade switches the pkgs.k8s.io repository of each minor there: add it (${CHANGE_REPOSITORY_DOCS}), then run again" >&2; fi`,
    'exit 1',
  ]
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
