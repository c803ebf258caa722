import { HOST_PATH_DIRS, NS_ROOT, WRITABLE_PATHS, unshareArgs, type NodeEntry } from './namespace.js'
import { spawnOffLoop, type LabProcess } from './off-loop-spawn.js'
import type { NodePaths } from './paths.js'

/** The node's writable paths that live on its disk (/run is a tmpfs on a real machine). */
const DISK_PATHS_TEXT = WRITABLE_PATHS.filter((p) => p !== 'run').join(' ')

/** Who runs the command: root, or a configured login (sudo rights decide what the `sudo` stand-in allows). */
export interface ExecUser {
  name: string
  sudo: boolean
  /** Who logged in, for the lab's recorder: `ssh:<user> SHA256:<key fingerprint>` (recorder/identity.ts). */
  client?: string
}

/**
 * disk-full as a real full filesystem: the node's writable paths on the full mount (`/`, `/var` or both, the fault's
 * `mount` param; `/var` shares `/` unless the node has its own) become overlays whose upper layer is a tiny tmpfs
 * that is already full. Files stay readable; writing data fails with ENOSPC ("No space left on device") for every
 * program, not only the stand-ins. Nothing written lands in the node root.
 */
const DISK_FULL = [
  `if [ -e ${NS_ROOT}/lab/faults/disk-full ]; then`,
  `  m=$(sed -n 's/^mount=//p' ${NS_ROOT}/lab/faults/disk-full); m=\${m:-all}; sepvar=$(sed -n "s/^LAB_VAR_TOTAL='\\(.*\\)'$/\\1/p" ${NS_ROOT}/lab/node.env)`,
  `  F=${NS_ROOT}/lab/full; mkdir -p $F && mount -t tmpfs -o size=64k lab-disk-full $F || exit 125`,
  `  for p in ${DISK_PATHS_TEXT}; do`,
  '    case "$p" in var/*) [ "$m" = all ] || [ "$m" = /var ] || { [ "$m" = / ] && [ -z "$sepvar" ]; } || continue ;; *) [ "$m" = all ] || [ "$m" = / ] || continue ;; esac',
  '    mkdir -p "$F/u/$p" "$F/w/$p" && mount -t overlay lab-disk-full -o "lowerdir=/$p,upperdir=$F/u/$p,workdir=$F/w/$p" "/$p" || exit 125',
  '  done',
  '  head -c 1M /dev/zero > "$F/fill" 2>/dev/null',
  'fi',
].join('\n')

/** After the mounts: the disk-full fault's, then go home as sshd would and run the command's bash (argv[0] "bash"). */
const AFTER_MOUNTS = [DISK_FULL, 'cd "$HOME" 2>/dev/null || cd /', 'exec -a bash /bin/bash -c "$1"'].join('\n')

/**
 * Without the entry program (no C compiler): the script between `unshare` and the user's command mounts the node root
 * over the real paths (one `mount` process for every entry of lab/fstab), then replaces itself with the command's bash
 * so that the command's process tree, exit code and signals are bash's own.
 */
const ENTER = [
  'mount --fstab "$2" -a || { echo "kupgrade lab: cannot mount the node root in a private namespace" >&2; exit 125; }',
  AFTER_MOUNTS,
].join('\n')

export function execEnv(user: ExecUser, clientEnv: Record<string, string>): Record<string, string> {
  const root = user.name === 'root'
  return {
    ...clientEnv,
    PATH: [`${NS_ROOT}/bin`, '/usr/local/sbin', '/usr/local/bin', ...HOST_PATH_DIRS].join(':'),
    HOME: root ? '/root' : `/home/${user.name}`,
    USER: user.name,
    LOGNAME: user.name,
    SHELL: '/bin/bash',
    // Measured: without SHLVL in the environment each exec took ~100 ms longer (bash + unshare teardown); with it ~6 ms.
    SHLVL: '1',
    LANG: clientEnv['LANG'] ?? 'C.UTF-8',
    LAB_DIR: `${NS_ROOT}/lab`,
    LAB_USER: user.name,
    // The lab runs everything as the host's root; the stand-ins enforce the login's privileges from these.
    LAB_EUID: root ? '0' : '1000',
    LAB_SUDO: root || user.sudo ? '1' : '0',
    // The stand-ins stamp their state-change events with it (lib.sh lab_event).
    LAB_CLIENT: user.client ?? `ssh:${user.name}`,
  }
}

/**
 * Spawns one command in a fresh private mount namespace, in its own process group (so signals reach the tree).
 * `niceness`: every node of a real cluster has its own CPUs, and none of them is the apiserver's. A lab of fifty nodes
 * on two cores shares them with the API server that answers for the nodes; a bench at that scale runs the commands at a
 * lower priority so that what the nodes do cannot starve that API (nice, and the command's session's autogroup), and
 * through the spawner's admission queue (spawner-process.mjs). Tests keep equal priority and start commands at once:
 * their other work would starve the nodes instead, and their nodes' waits would hold the queue.
 */
export function spawnInNode(paths: NodePaths, entry: NodeEntry, command: string, env: Record<string, string>, niceness?: number): LabProcess {
  const [file, ...args] = entry.program
    // The disk-full script runs only when its fault file exists: the common exec starts two programs, not four.
    ? [entry.program, ...(entry.isolation === 'user-ns' ? ['--user-ns'] : []), ...(niceness ? ['--nice', String(niceness)] : []), paths.fstab, command, `${NS_ROOT}/lab/faults/disk-full`, AFTER_MOUNTS]
    : [...(niceness ? ['nice', '-n', String(niceness)] : []), 'unshare', ...unshareArgs(entry.isolation), '/bin/bash', '-c', ENTER, 'lab-enter', command, paths.fstab]
  return spawnOffLoop({ file: file!, args, cwd: paths.root, env, ...(niceness ? { niceness, admit: true } : {}) })
}
