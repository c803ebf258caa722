import type { Check, Command, StepProgram } from '../drivers/program.js'
import type { NodeFacts } from '../facts/types.js'
import type { Step } from '../planner/types.js'
import type { Distribution } from '../plan/versions.js'
import { shellJoin, singleQuote } from '../transport/quote.js'
import { parseDuration } from '../util/duration.js'

/**
 * ADAPTER until the drivers' `programFor(step, nodeFacts)` lands on main (issue 10, helper "drivers"): today's
 * `Step` (an action with untyped params) turned into a StepProgram with the commands facts §3 gives per distribution.
 * It covers what the planner emits today; the executor only sees StepPrograms, so swapping this for the drivers'
 * union is a change of one import (executor/programs.ts).
 */
export interface ProgramContext {
  distribution: Distribution
  facts?: NodeFacts
}

const node = (command: Command & { on: 'node' }): Command => command
const kubectl = (args: string[], why: string, timeoutMs?: number): Command => ({ on: 'kubectl', args, why, ...(timeoutMs ? { timeoutMs } : {}) })
const p = <T>(s: Step, k: string): T | undefined => (s.params as Record<string, unknown> | undefined)?.[k] as T | undefined

const unschedulable = (n: string): Check['read'] => ({ on: 'kubectl', args: ['get', 'node', n, '-o', 'jsonpath={.spec.unschedulable}'], why: `is ${n} cordoned?` })

/** Which binary reports the installed version of a distribution, and how. */
const versionRead = (dist: Distribution, binary: string): string[] => (dist === 'k0s' ? [binary, 'version'] : [binary, '--version'])

/** The adapter's own shape, from before programs carried titles; `interimProgramFor` adds them. */
type LooseProgram = Omit<StepProgram, 'title' | 'undo'> & { undo: { run: Command[]; wait?: StepProgram['wait'] } | { irreversible: string } | { nothing: true } }

export function interimProgramFor(step: Step, ctx: ProgramContext): StepProgram | undefined {
  const p = interimLoose(step, ctx)
  if (!p) return undefined
  const undo = 'run' in p.undo ? { title: `undo: ${step.title}`, verify: [], ...p.undo } : p.undo
  return { title: step.title, ...p, undo }
}

function interimLoose(step: Step, ctx: ProgramContext): LooseProgram | undefined {
  const n = step.node ?? ''
  switch (step.action) {
    case 'cordon':
      return {
        verify: [{ read: unschedulable(n), describe: `${n} is cordoned (spec.unschedulable=true)`, expect: { stdoutIncludes: 'true' } }],
        run: [kubectl(['cordon', n], `cordon ${n} before draining it`)],
        undo: { run: [kubectl(['uncordon', n], `uncordon ${n}`)] },
      }
    case 'uncordon':
      return {
        verify: [{ read: unschedulable(n), describe: `${n} is schedulable (spec.unschedulable unset)`, expect: { stdoutExcludes: 'true' } }],
        run: [kubectl(['uncordon', n], `uncordon ${n} after its upgrade`)],
        undo: { nothing: true },
      }
    case 'drain': {
      const d = (step.params ?? {}) as { timeout?: string; gracePeriod?: string; ignoreDaemonSets?: boolean; deleteEmptyDirData?: boolean; force?: boolean }
      const timeoutMs = parseDuration(d.timeout ?? '5m') ?? 300_000
      const args = ['drain', n, `--timeout=${Math.round(timeoutMs / 1000)}s`]
      if (d.ignoreDaemonSets !== false) args.push('--ignore-daemonsets')
      if (d.deleteEmptyDirData) args.push('--delete-emptydir-data')
      if (d.gracePeriod) args.push(`--grace-period=${Math.round((parseDuration(d.gracePeriod) ?? 0) / 1000)}`)
      if (d.force) args.push('--force')
      // Drain has no readable "done" state short of listing pods; it is idempotent, so it always runs.
      return { verify: [], run: [kubectl(args, `drain ${n} (evictions respect PodDisruptionBudgets)`, timeoutMs + 30_000)], undo: { run: [kubectl(['uncordon', n], `uncordon ${n}`)] } }
    }
    case 'replace-binary': {
      const binary = p<string>(step, 'binary') ?? `/usr/local/bin/${ctx.distribution}`
      const version = p<string>(step, 'version') ?? ''
      const prev = `${binary}.kupgrade-prev`
      const install = ctx.distribution === 'k0s'
        ? `curl -sSLf https://get.k0s.sh | K0S_VERSION=${singleQuote(version)} sh`
        // The install script keeps the unit, its env file (K3S_URL/K3S_TOKEN) and INSTALL_K3S_EXEC args as they are.
        : `curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=${singleQuote(version)} INSTALL_K3S_SKIP_START=true sh -s -`
      return {
        verify: [{ read: node({ on: 'node', command: versionRead(ctx.distribution, binary), why: 'installed version' }), describe: `${shellJoin(versionRead(ctx.distribution, binary))} reports ${version}`, expect: { stdoutIncludes: version } }],
        run: [
          node({ on: 'node', command: ['cp', '-p', '--', binary, prev], why: `keep the previous ${ctx.distribution} binary as ${prev}` }),
          node({ on: 'node', command: { script: install }, why: `install ${ctx.distribution} ${version}`, timeoutMs: 600_000 }),
        ],
        undo: { run: [node({ on: 'node', command: ['cp', '-p', '--', prev, binary], why: `restore the previous ${ctx.distribution} binary` })] },
      }
    }
    case 'restart': {
      const service = p<string>(step, 'service') ?? 'kubelet'
      const run: Command[] = ctx.distribution === 'k0s'
        ? [node({ on: 'node', command: ['k0s', 'stop'], why: `stop ${service}` }), node({ on: 'node', command: ['k0s', 'start'], why: `start ${service} on the new binary` })]
        : [
            ...(ctx.distribution === 'kubeadm' ? [node({ on: 'node', command: ['systemctl', 'daemon-reload'], why: 'reload unit files changed by the packages' })] : []),
            node({ on: 'node', command: ['systemctl', 'restart', service], why: `restart ${service} on the new version`, timeoutMs: 300_000 }),
          ]
      return { verify: [], run, wait: [{ kind: 'service-active', service, timeoutMs: 120_000 }], undo: { nothing: true } }
    }
    case 'backup':
      return backupProgram(step, ctx)
    case 'upgrade-package':
      return packageProgram(step, ctx)
    case 'upgrade-control-plane': {
      const cmd = p<string>(step, 'command')
      const version = p<string>(step, 'version')
      const manifest = '/etc/kubernetes/manifests/kube-apiserver.yaml'
      if (cmd === 'apply' && version) {
        return {
          verify: [{ read: node({ on: 'node', command: ['cat', manifest], why: 'static pod version', privileged: true }), describe: `${manifest} runs kube-apiserver:${version}`, expect: { stdoutIncludes: `kube-apiserver:${version}` } }],
          run: [node({ on: 'node', command: ['kubeadm', 'upgrade', 'apply', version, '--yes'], why: `upgrade the control plane to ${version}`, timeoutMs: 900_000 })],
          undo: { irreversible: 'kubeadm restores its own backup when apply fails; after success the control plane is restored from the pre-hop etcd snapshot' },
        }
      }
      return {
        verify: [],
        run: [node({ on: 'node', command: ['kubeadm', 'upgrade', 'node'], why: 'upgrade this node\'s control plane instance / kubelet configuration', timeoutMs: 900_000 })],
        undo: { irreversible: 'restore the manifests kubeadm backed up under /etc/kubernetes/tmp' },
      }
    }
    case 'os-upgrade': {
      const pkgs = p<'all' | 'security' | string[]>(step, 'packages') ?? 'all'
      const pm = ctx.facts?.packageManager
      const script = pm === 'dnf' || pm === 'yum'
        ? pkgs === 'all' ? 'dnf -y upgrade' : pkgs === 'security' ? 'dnf -y upgrade --security' : shellJoin(['dnf', '-y', 'upgrade', ...pkgs])
        : pm === 'flatcar' ? 'update_engine_client -update'
          : `apt-get update && DEBIAN_FRONTEND=noninteractive ${pkgs === 'all' || pkgs === 'security' ? 'apt-get -y upgrade' : shellJoin(['apt-get', '-y', 'install', '--only-upgrade', ...pkgs])}`
      return { verify: [], run: [node({ on: 'node', command: { script }, why: 'upgrade OS packages (Kubernetes packages stay held)', timeoutMs: 1_800_000 })], undo: { irreversible: 'OS packages are rolled forward; the node is rebuilt if it cannot recover' } }
    }
    case 'reboot': {
      const policy = p<string>(step, 'policy') ?? 'if-required'
      const required = '[ -e /var/run/reboot-required ] || { command -v needs-restarting >/dev/null && ! needs-restarting -r >/dev/null; }'
      // Detached so the command returns before sshd goes down; the executor then waits for SSH with a new boot.
      const reboot = 'nohup sh -c "sleep 1; reboot" >/dev/null 2>&1 &'
      return {
        verify: policy === 'always' ? [] : [{ read: node({ on: 'node', command: { script: `if ${required}; then echo required; else echo not-required; fi` }, why: 'is a reboot required?' }), describe: 'no reboot required', expect: { stdoutIncludes: 'not-required' } }],
        run: [node({ on: 'node', command: { script: reboot }, why: `reboot (${policy})` })],
        wait: [{ kind: 'ssh-back', timeoutMs: 600_000, newBoot: true }],
        undo: { nothing: true },
      }
    }
    default:
      return undefined
  }
}

function backupProgram(step: Step, ctx: ProgramContext): LooseProgram {
  const stamp = '$(date -u +%Y%m%dT%H%M%SZ)'
  let script: string
  if (ctx.distribution === 'k3s') {
    const name = singleQuote(p<string>(step, 'name') ?? 'kupgrade-pre-upgrade')
    script = `if [ -d /var/lib/rancher/k3s/server/db/etcd ] || ! [ -f /var/lib/rancher/k3s/server/db/state.db ]; then k3s etcd-snapshot save --name ${name}; else cp -p /var/lib/rancher/k3s/server/db/state.db /var/lib/rancher/k3s/server/db/state.db.${name}-${stamp}; fi`
  } else if (ctx.distribution === 'k0s') {
    const dir = singleQuote(p<string>(step, 'savePath') ?? '/var/lib/k0s/kupgrade-backups')
    script = `mkdir -p ${dir} && k0s backup --save-path ${dir}`
  } else {
    const dir = p<string>(step, 'dir') ?? '/var/lib/etcd-backup'
    const q = singleQuote(dir)
    script = `mkdir -p ${q} && ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/server.crt --key=/etc/kubernetes/pki/etcd/server.key snapshot save ${q}/snapshot-${stamp}.db && cp -a /etc/kubernetes ${q}/etc-kubernetes-${stamp}`
  }
  return { verify: [], run: [{ on: 'node', command: { script }, why: `back up before the hop (${step.title})`, timeoutMs: 600_000 }], undo: { nothing: true } }
}

/** kubeadm packages: switch the pkgs.k8s.io repository to the target minor, unhold, install the exact version, hold. */
function packageProgram(step: Step, ctx: ProgramContext): LooseProgram {
  const pkgs = p<string[]>(step, 'packages') ?? []
  const version = p<string>(step, 'version') ?? ''
  const minor = /^(\d+\.\d+)\./.exec(version)?.[1] ?? ''
  const dnf = ctx.facts?.packageManager === 'dnf' || ctx.facts?.packageManager === 'yum'
  const repo = dnf ? '/etc/yum.repos.d/kubernetes.repo' : '/etc/apt/sources.list.d/kubernetes.list'
  const switchRepo = `sed -i ${singleQuote(`s#/core:/stable:/v[0-9.]*/#/core:/stable:/v${minor}/#g`)} ${repo}`
  const script = dnf
    ? `${switchRepo} && dnf -y install --disableexcludes=kubernetes ${pkgs.map((x) => singleQuote(`${x}-${version.replace(/-.*$/, '')}`)).join(' ')}`
    : `${switchRepo} && apt-get update && apt-mark unhold ${pkgs.map(singleQuote).join(' ')} && DEBIAN_FRONTEND=noninteractive apt-get install -y ${pkgs.map((x) => singleQuote(`${x}=${version}`)).join(' ')} && apt-mark hold ${pkgs.map(singleQuote).join(' ')}`
  const query = (pkg: string): Command => (dnf
    ? { on: 'node', command: ['rpm', '-q', '--qf', '%{VERSION}-%{RELEASE}', pkg], why: `installed ${pkg}`, okExitCodes: [0, 1] }
    : { on: 'node', command: ['dpkg-query', '-W', '-f=${Version}', pkg], why: `installed ${pkg}`, okExitCodes: [0, 1] })
  return {
    verify: pkgs.map((pkg) => ({ read: query(pkg), describe: `${pkg} ${version} installed`, expect: { stdoutIncludes: dnf ? version.replace(/-.*$/, '') : version } })),
    run: [{ on: 'node', command: { script }, why: `upgrade ${pkgs.join(', ')} to ${version} (repository switched to v${minor}, held again after)`, timeoutMs: 900_000 }],
    undo: { irreversible: 'reinstall the previous packages from the previous minor\'s repository and hold them' },
  }
}
