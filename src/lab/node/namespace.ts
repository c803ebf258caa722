import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { KupgradeError } from '../../errors.js'
import { BOOT_ID_FILE } from './boot-id.js'

const run = promisify(execFile)

/**
 * How a node's commands see the node's files at the real absolute paths (/etc/kubernetes, /run, /usr/local/bin …):
 * every exec runs in a fresh private mount namespace that mounts the node root over those paths (lab/fstab).
 * - `mount-ns`: `unshare -m` — needs root (CAP_SYS_ADMIN); measured ~6 ms per exec with all mounts.
 * - `user-ns`:  `unshare -Urm` — an unprivileged user namespace mapped to root, for non-root developers where the
 *   kernel allows it (overlayfs in user namespaces needs Linux ≥ 5.11).
 * Without either the lab refuses to start: running stand-ins against the host's real /etc and /run would make the
 * lab lie (and could touch the host), so there is no silent fallback.
 */
export type Isolation = 'mount-ns' | 'user-ns'

export const unshareArgs = (iso: Isolation): string[] =>
  iso === 'mount-ns' ? ['-m', '--propagation', 'private'] : ['-Urm', '--propagation', 'private']

/** How a node's commands enter it: the isolation this machine allows and, where it could be built, the program that
 *  enters in one step (native/lab-enter.c; without it unshare, mount and bash do the same, exec.ts). */
export interface NodeEntry {
  isolation: Isolation
  program?: string
}

export class LabIsolationError extends KupgradeError {}

let probed: Promise<Isolation> | undefined

/** Which isolation this machine allows; probed once per process (two ~5 ms spawns). */
export function probeIsolation(): Promise<Isolation> {
  probed ??= (async () => {
    const problems: string[] = []
    for (const iso of ['mount-ns', 'user-ns'] as const) {
      try {
        // The probe does what every exec needs: a private namespace in which mounting is allowed.
        await run('unshare', [...unshareArgs(iso), '/bin/sh', '-c', 'mount -t tmpfs lab-probe /mnt'], { timeout: 10_000 })
        return iso
      } catch (err) {
        problems.push(`unshare ${unshareArgs(iso).join(' ')}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`)
      }
    }
    throw new LabIsolationError(`the lab needs a private mount namespace per node and this machine allows none:\n  ${problems.join('\n  ')}`, {
      hint: 'run the lab as root (CI does), or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)',
    })
  })()
  return probed
}

/** Where the node root itself appears inside its namespace (a directory every Debian-like host has). */
export const NS_ROOT = '/mnt'

/** The directories of a node's PATH that are the host's (the node's /usr/local/* are its own mounts). */
export const HOST_PATH_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin']

/** Paths of the node root that are mounted writable over the host's, relative to both roots. */
export const WRITABLE_PATHS = [
  'etc/kubernetes',
  'etc/rancher',
  'etc/systemd/system',
  'etc/apt',
  'etc/yum.repos.d',
  'etc/flatcar',
  'etc/k0s',
  'etc/cni',
  // kubelet's extra-args files (deb /etc/default/kubelet, rpm /etc/sysconfig/kubelet) and containerd's config.
  'etc/default',
  'etc/sysconfig',
  'etc/containerd',
  // All of /var/lib is the node's own (backups such as /var/lib/etcd-backup must be writable); nothing the lab's
  // shell tools need lives there, unlike /etc (passwd, ssl, alternatives), which stays an overlay.
  'var/lib',
  'var/log',
  'run',
  'usr/local/bin',
  'root',
  'home',
  // Each node its own /tmp, as separate machines have: a file one node leaves there is not on the next.
  'tmp',
  // Where an air-gapped site keeps release files on each machine (install.path): the node's own, never the host's.
  'opt',
  'srv',
]

/** Host directories shown read-only with the node's files layered on top, so that mount points such as
 *  /etc/kubernetes exist even where the host has none, without creating anything on the host. */
export const OVERLAID_PATHS = ['etc', 'usr/bin']

/**
 * The fstab one `mount --fstab FILE -a` applies in each exec's namespace (one process for all mounts). `files` are
 * single files (the kubeadm node's /usr/bin/kubeadm, kubelet, kubectl) bound over the read-only overlay so that a
 * package install rewriting them in place is seen at once: overlayfs caches a lower file, so a change to the node's
 * copy would otherwise stay invisible until the next exec.
 */
export function fstabFor(root: string, files: string[] = [], shared: { source: string; target: string }[] = []): string {
  if (/[\s,:\\]/.test(root)) throw new LabIsolationError(`lab node root must not contain spaces, commas, colons or backslashes (overlay and fstab syntax): ${root}`)
  // First the whole node root goes to NS_ROOT: the later mounts take their sources from there, so a node root that
  // lives under a path they cover (/root/…, /home/…) stays reachable, and the stand-ins find lab/ at NS_ROOT/lab.
  const lines = [`${root} ${NS_ROOT} none bind 0 0`]
  // Folders several nodes share (a cluster's simulated etcd) appear inside the node root, bound before /tmp and the
  // other paths are covered, so a lab folder anywhere on the host is reachable.
  for (const b of shared) {
    if (/[\s,:\\]/.test(b.source)) throw new LabIsolationError(`lab folder must not contain spaces, commas, colons or backslashes (fstab syntax): ${b.source}`)
    lines.push(`${b.source} ${NS_ROOT}/${b.target} none bind 0 0`)
  }
  for (const p of OVERLAID_PATHS) lines.push(`lab-overlay /${p} overlay ro,lowerdir=${NS_ROOT}/${p}:/${p} 0 0`)
  for (const p of WRITABLE_PATHS) lines.push(`${NS_ROOT}/${p} /${p} none bind 0 0`)
  for (const f of files) lines.push(`${NS_ROOT}/${f} /${f} none bind 0 0`)
  // The node's own boot id over the kernel's (boot-id.ts): a lab reboot must show a new one, as a real one does.
  lines.push(`${NS_ROOT}/${BOOT_ID_FILE} /proc/sys/kernel/random/boot_id none bind 0 0`)
  return lines.join('\n') + '\n'
}
