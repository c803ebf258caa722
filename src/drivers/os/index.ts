import type { PackageManager } from '../../facts/types.js'
import type { PackageSelection, Step, StepOf, StepParamsByAction } from '../../planner/types.js'
import { shellJoin } from '../../transport/quote.js'
import { parseDuration } from '../../util/duration.js'
import { nodeCheck, onNode, script } from '../common/commands.js'
import type { ActionProgram, Check, Command } from '../program.js'
import type { ActionModule, DriverNodeFacts, StepTemplate } from '../types.js'

/**
 * OS packages through the node's own package manager (facts §6), detected per node from its facts: apt, dnf/yum, or
 * Flatcar's update_engine. Kubernetes packages stay held (apt-mark hold; the repository's exclude= line on dnf).
 * Reboots follow the plan's policy; `if-required` reads the distribution's own signal: /var/run/reboot-required
 * (Debian/Ubuntu), `needs-restarting -r` (RHEL family), UPDATE_STATUS_UPDATED_NEED_REBOOT (Flatcar). An OS upgrade
 * is not undone: packages are rolled forward, or the node is rebuilt.
 */
type OsPm = 'apt' | 'dnf' | 'yum' | 'flatcar'
const known = (pm: PackageManager | undefined): OsPm | undefined => (pm === undefined || pm === 'unknown' ? undefined : pm)

export function planOsUpgrade(os: { packages: PackageSelection; reboot: 'never' | 'if-required' | 'always' }, rebootTimeout: string): StepTemplate[] {
  const steps: StepTemplate[] = [
    { action: 'os-upgrade', params: { packages: os.packages }, undo: { irreversible: 'OS packages are rolled forward, not downgraded; a node that cannot recover is rebuilt' } },
  ]
  if (os.reboot !== 'never') steps.push({ action: 'reboot', params: { policy: os.reboot, timeout: rebootTimeout } })
  return steps
}

const upgradeCommands = (pm: OsPm, packages: PackageSelection): string[][] => {
  switch (pm) {
    case 'apt': {
      // Non-interactive, keeping changed config files; held packages (kubelet, kubeadm, kubectl) are kept back.
      const apt = ['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', '-o', 'Dpkg::Options::=--force-confold']
      if (packages === 'all') return [['apt-get', 'update'], [...apt, 'upgrade', '-y']]
      // Debian's own security-only path: unattended-upgrade applies the security origins it is configured with.
      if (packages === 'security') return [['apt-get', 'update'], ['unattended-upgrade', '-v']]
      return [['apt-get', 'update'], [...apt, 'install', '-y', '--only-upgrade', ...packages]]
    }
    case 'dnf':
    case 'yum':
      if (packages === 'all') return [[pm, 'upgrade', '-y']]
      if (packages === 'security') return [[pm, 'upgrade', '-y', '--security']]
      return [[pm, 'upgrade', '-y', ...packages]]
    case 'flatcar':
      // Flatcar updates the whole image; a list of packages means nothing there.
      return [['update_engine_client', '-check_for_update']]
  }
}

/** update_engine works in the background: wait (bounded) until it has staged the update or found none. */
const FLATCAR_SETTLE = [
  'i=0',
  'while [ $i -lt 120 ]; do',
  '  s=$(update_engine_client -status 2>/dev/null)',
  '  case "$s" in *UPDATE_STATUS_UPDATED_NEED_REBOOT*|*UPDATE_STATUS_IDLE*) exit 0 ;; *UPDATE_STATUS_REPORTING_ERROR_EVENT*) echo "$s" >&2; exit 1 ;; esac',
  '  i=$((i+1)); sleep 5',
  'done',
  "echo 'kupgrade: update_engine did not finish within 10 minutes' >&2; exit 1",
]

function osUpgradeProgram(step: StepOf<'os-upgrade'>, pm: OsPm | undefined): ActionProgram {
  const { packages } = step.params
  const what = packages === 'all' ? 'all packages' : packages === 'security' ? 'security updates' : `packages ${packages.join(', ')}`
  const line = (p: OsPm) => upgradeCommands(p, packages).map(shellJoin).join(' && ')
  const long = { timeoutMs: 30 * 60_000 }
  let run: Command[]
  if (pm === 'flatcar') run = [onNode(upgradeCommands('flatcar', packages)[0]!, 'ask update_engine for the next Flatcar release', long), script(FLATCAR_SETTLE, 'wait for update_engine to stage the update', long)]
  else if (pm) run = upgradeCommands(pm, packages).map((argv) => onNode(argv, `upgrade ${what}`, long))
  else
    run = [
      script(
        [
          `if command -v update_engine_client >/dev/null 2>&1; then ${line('flatcar')} || exit 1`,
          '  (',
          ...FLATCAR_SETTLE.map((l) => `    ${l}`),
          '  )',
          `elif command -v apt-get >/dev/null 2>&1; then ${line('apt')}`,
          `elif command -v dnf >/dev/null 2>&1; then ${line('dnf')}`,
          `elif command -v yum >/dev/null 2>&1; then ${line('yum')}`,
          "else echo 'kupgrade: no apt-get, dnf, yum or update_engine_client on this node' >&2; exit 1; fi",
        ],
        `upgrade ${what}`,
        long,
      ),
    ]
  return {
    title: `upgrade OS ${what}: ${pm ? line(pm) : `${line('apt')} (dnf: ${line('dnf')}; Flatcar: ${line('flatcar')})`}; Kubernetes packages stay held`,
    // Whether updates are pending cannot be read without the package manager refreshing its lists: it always runs
    // (every package manager's upgrade is a no-op when there is nothing to do).
    verify: [],
    run,
  }
}

/** Where each OS says a reboot is needed (facts §6.4), for titles. */
const REBOOT_SIGNAL: Record<OsPm, string> = { apt: '/var/run/reboot-required', dnf: 'needs-restarting -r', yum: 'needs-restarting -r', flatcar: 'update_engine_client -status' }

/** "No reboot is needed" per the OS's own signal; the reboot step is done when this holds. */
function noRebootNeeded(pm: OsPm | undefined): Check[] {
  switch (pm) {
    case 'apt':
      return [nodeCheck(['test', '!', '-e', '/var/run/reboot-required'], '/var/run/reboot-required is absent', { exitCode: 0 }, { okExitCodes: [0, 1] })]
    case 'dnf':
    case 'yum':
      // Exit 1 means "reboot needed"; the text is checked too (dnf5 exits non-zero for other reasons; facts §6.4).
      return [nodeCheck(['needs-restarting', '-r'], 'needs-restarting -r: reboot should not be necessary', { exitCode: 0, stdoutIncludes: 'Reboot should not be necessary' }, { okExitCodes: [0, 1] })]
    case 'flatcar':
      return [nodeCheck(['update_engine_client', '-status'], 'update_engine has no update waiting for a reboot', { exitCode: 0, stdoutExcludes: 'UPDATE_STATUS_UPDATED_NEED_REBOOT' })]
    default:
      return [
        nodeCheck(
          [
            'sh', '-c',
            'if command -v update_engine_client >/dev/null 2>&1; then update_engine_client -status | grep -q UPDATE_STATUS_UPDATED_NEED_REBOOT && echo reboot-required; ' +
              'elif command -v needs-restarting >/dev/null 2>&1; then needs-restarting -r >/dev/null 2>&1 || echo reboot-required; ' +
              'elif [ -e /var/run/reboot-required ]; then echo reboot-required; fi; exit 0',
          ],
          'no reboot signal (update_engine, needs-restarting -r, /var/run/reboot-required)',
          { exitCode: 0, stdoutExcludes: 'reboot-required' },
        ),
      ]
  }
}

function rebootProgram(step: StepOf<'reboot'>, pm: OsPm | undefined, hasNode: boolean): ActionProgram {
  const timeoutMs = parseDuration(step.params.timeout) ?? 10 * 60_000
  const reboot = ['systemctl', 'reboot']
  const always = step.params.policy === 'always'
  const then = `then wait for SSH (new boot id)${hasNode ? ' and the Node Ready on that boot' : ''}`
  return {
    title: always ? `${shellJoin(reboot)}, ${then}` : `${shellJoin(reboot)} if the OS says so (${pm ? REBOOT_SIGNAL[pm] : 'reboot-required file, needs-restarting -r, update_engine'}), ${then}`,
    // `always` cannot be read back (a boot id is only comparable within a run: the executor's ssh-back wait does it).
    verify: always ? [] : noRebootNeeded(pm),
    run: [onNode(reboot, always ? 'reboot (policy always)' : 'reboot: the OS says a reboot is required', { disconnects: true, timeoutMs: 60_000 })],
    // SSH back on a new boot, then the Node Ready on that boot, before the next step touches the node: a distribution
    // upgrade (kubeadm upgrade apply, the k3s installer) right after boot would meet a control plane still starting.
    // Any kubelet version: the node's wait-ready step later checks the one the hop installs. A machine without a
    // kubelet (a k0s controller) has no Node: its service's own wait follows in its driver steps.
    wait: [
      { kind: 'ssh-back', newBoot: true, timeoutMs },
      ...(hasNode && step.node ? [{ kind: 'node-ready' as const, node: step.node, kubeletVersion: '', timeoutMs, newBoot: true }] : []),
    ],
  }
}

export const osModule: ActionModule = {
  name: 'os',
  actions: ['os-upgrade', 'reboot'],
  programFor: (step: Step, facts?: DriverNodeFacts): ActionProgram => {
    const pm = known(facts?.packageManager)
    switch (step.action) {
      case 'os-upgrade': return osUpgradeProgram(step, pm)
      case 'reboot': return rebootProgram(step, pm, facts?.kubernetesNode !== false)
      default: throw new Error(`os: no program for action ${step.action}`)
    }
  },
}

export type OsParams = StepParamsByAction['os-upgrade']
