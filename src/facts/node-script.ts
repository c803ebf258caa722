import { randomBytes } from 'node:crypto'

/**
 * Everything kupgrade reads from a node's shell, in ONE round trip: one POSIX sh script whose output is split into
 * sections by a marker line carrying a random nonce (so no command's output can forge a section boundary).
 * Each probe is guarded by `command -v`, so a node without k0s or needs-restarting just yields an empty section.
 */
export const SECTIONS = ['os', 'kernel', 'k3s', 'k0s', 'k0s-controller', 'k0s-status', 'kubeadm', 'kubelet', 'services', 'iptables', 'df', 'reboot-file', 'needs-restarting', 'update-engine', 'pkg'] as const
export type Section = (typeof SECTIONS)[number]

/** Distribution units whose state we report; only those systemd knows about appear. */
export const UNITS = ['k3s', 'k3s-agent', 'k0scontroller', 'k0sworker', 'kubelet']

export function nodeFactsScript(nonce = randomBytes(6).toString('hex')): { script: string; marker: string } {
  const marker = `@@kupgrade-${nonce}`
  const has = (c: string) => `command -v ${c} >/dev/null 2>&1`
  const script = [
    // sbin and k0s's bundled tools are not on a non-root user's PATH; LC_ALL=C keeps tool output in English.
    'export LC_ALL=C PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/var/lib/k0s/bin"',
    `s() { printf '\\n%s %s\\n' '${marker}' "$1"; }`,
    's os; cat /etc/os-release 2>/dev/null',
    // The machine (`uname -m`) on the second line: which release binary of k3s or k0s runs there.
    's kernel; uname -r; uname -m',
    `s k3s; ${has('k3s')} && k3s --version 2>&1`,
    `s k0s; ${has('k0s')} && k0s version 2>&1`,
    // How the k0s controller service was installed: --enable-worker (or --single) makes it run a kubelet, i.e. a Node.
    "s k0s-controller; for f in /etc/systemd/system/k0scontroller.service /etc/init.d/k0scontroller; do [ -r \"$f\" ] && grep -E '^(ExecStart=|command_args=)' \"$f\"; done",
    // The version a k0s controller runs (its status socket is root's): a binary replaced but not restarted is not
    // running yet, and a controller without a kubelet has no Node to report it.
    `s k0s-status; if ${has('k0s')} && { [ -e /etc/systemd/system/k0scontroller.service ] || [ -e /etc/init.d/k0scontroller ]; }; then k0s status 2>/dev/null || sudo -n k0s status 2>/dev/null; fi`,
    `s kubeadm; ${has('kubeadm')} && kubeadm version -o short 2>&1`,
    `s kubelet; ${has('kubelet')} && kubelet --version 2>&1`,
    // One systemctl for all units: it answers one state per unit named, in order (systemctl(1) is-active PATTERN…).
    `s services; if ${has('systemctl')}; then systemctl is-active ${UNITS.join(' ')} 2>/dev/null | for u in ${UNITS.join(' ')}; do IFS= read -r st || st=; printf '%s=%s\\n' "$u" "$st"; done; fi`,
    `s iptables; ${has('iptables')} && iptables -V 2>&1`,
    's df; df -P -B1 / /var 2>/dev/null',
    "s reboot-file; if [ -e /var/run/reboot-required ]; then echo yes; cat /var/run/reboot-required.pkgs 2>/dev/null; else echo no; fi",
    `s needs-restarting; if ${has('needs-restarting')}; then needs-restarting -r 2>&1; echo "exit=$?"; fi`,
    `s update-engine; if ${has('update_engine_client')}; then update_engine_client -status 2>&1; fi`,
    `s pkg; for p in update_engine_client apt-get dnf yum; do ${has('$p')} && echo "$p"; done`,
    's end',
    'exit 0',
  ].join('\n')
  return { script, marker }
}

/** Splits the script's output into sections; tolerant of missing sections and of output without a final newline. */
export function splitSections(output: string, marker: string): Map<string, string> {
  const sections = new Map<string, string>()
  let current: string | undefined
  let lines: string[] = []
  const flush = () => {
    if (current !== undefined) sections.set(current, lines.join('\n').trim())
  }
  for (const line of output.split('\n')) {
    if (line.startsWith(`${marker} `)) {
      flush()
      current = line.slice(marker.length + 1).trim()
      lines = []
    } else if (current !== undefined) lines.push(line)
  }
  flush()
  return sections
}
