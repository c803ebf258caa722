import type { Hop } from '../../planner/hops.js'
import type { Step, StepOf } from '../../planner/types.js'
import { backupDir, literal, nodeCheck, onNode, q, script } from '../common/commands.js'
import { backupFilesProgram, fetchVerifiedBinaryScript, keptCopy, restoreBinaryCommands, restoreFilesProgram } from '../common/files.js'
import type { ActionProgram } from '../program.js'
import type { ClusterInstall, Driver, NodeContext, NodeRole, StepTemplate } from '../types.js'

/**
 * k0s (facts §3.2, k0s docs/upgrade.md and k0sctl's upgrade phases): `k0s backup` on the first controller before a
 * hop; per node, controllers one at a time then workers: keep the binary (with checksum), `k0s stop`, replace the
 * binary (get.k0s.sh with K0S_VERSION, or a checksummed binary from a mirror or node-local directory), `k0s start`.
 */
const BINARY = '/usr/local/bin/k0s'
const serviceName = (role: NodeRole): string => (role === 'control-plane' ? 'k0scontroller' : 'k0sworker')
const unitFile = (service: string): string => `/etc/systemd/system/${service}.service`

const versionCheck = (binary: string, release: string) =>
  nodeCheck([binary, 'version'], `${binary} version reports ${release}`, { stdoutMatches: `^${literal(release)}$` }, { okExitCodes: [0, 1, 126, 127] })
/** `k0s status` names the version the running k0s was started from (and fails when k0s is not running). */
const runningCheck = (release: string) =>
  nodeCheck(['k0s', 'status'], `k0s status reports Version: ${release}`, { stdoutMatches: `^Version: ${literal(release)}$` }, { okExitCodes: [0, 1] })
const stoppedCheck = (service: string) =>
  nodeCheck(['systemctl', 'is-active', service], `${service} is not running`, { stdoutMatches: '^(inactive|failed)$' }, { okExitCodes: [0, 3, 4] })

export const k0s: Driver = {
  name: 'k0s',
  actions: ['backup', 'backup-files', 'stop-service', 'replace-binary', 'start-service', 'restore-binary', 'restore-files', 'reset-node', 'join-node'],
  serviceName,
  planBackup: (hop: Hop): StepTemplate[] => [{ action: 'backup', params: { kind: 'k0s', dir: `${backupDir(hop.from)}/k0s-backup` } }],
  planNodeUpgrade: (hop: Hop, node: NodeContext, install: ClusterInstall): StepTemplate[] => {
    const dir = backupDir(hop.from)
    const service = serviceName(node.role)
    return [
      // The unit too: `k0s install` wrote the node's flags and token file into it, and a rebuild (k0s reset) removes it.
      { action: 'backup-files', params: { dir, paths: [BINARY, unitFile(service)], release: hop.from } },
      { action: 'stop-service', params: { service }, undo: { action: 'start-service', params: { service, release: hop.from } } },
      {
        action: 'replace-binary',
        params: { binary: BINARY, release: hop.to.release, service, source: install.source, kept: dir },
        undo: { action: 'restore-binary', params: { binary: BINARY, backup: keptCopy(dir, BINARY), release: hop.from, service } },
      },
      { action: 'start-service', params: { service, release: hop.to.release } },
    ]
  },
  rollbackPath: (node) =>
    node.role === 'worker'
      ? { path: 'previous-version', detail: 'k0s stop, kept k0s binary back, k0s start, Ready at the old version' }
      : { path: 'snapshot-restore', detail: 'k0s restore <pre-hop k0s backup> on a reset controller, then the kept binary on every controller' },
  planRebuild: (hop, node) => {
    if (node.role === 'control-plane') {
      return { procedure: 'not automatic for a k0s controller: k0s etcd leave for it on another controller, k0s stop && k0s reset on it, then rejoin with k0s token create --role=controller (facts §3.2)' }
    }
    const dir = backupDir(hop.from)
    const service = serviceName(node.role)
    return {
      reset: [{ action: 'reset-node', params: { service } }],
      rejoin: [
        // reset keeps the binary (the new one) and removes the unit `k0s install` wrote: both come back from the hop's
        // backup, so the worker starts again with its own flags and token file, at the version it ran before.
        { action: 'restore-files', params: { dir, paths: [BINARY, unitFile(service)] } },
        { action: 'join-node', params: { kind: 'k0s', service, release: hop.from } },
      ],
      detail: `k0s stop && k0s reset, kubectl delete node, the kept k0s ${hop.from} binary and ${service} unit back, a fresh k0s token create --role=worker from the first controller into its token file, k0s start, Ready at ${hop.from}`,
    }
  },
  programFor: (step: Step): ActionProgram => {
    switch (step.action) {
      case 'backup': return backupProgram(step)
      case 'backup-files': return backupFilesProgram(step, { argv: (copies) => [`${copies}${BINARY}`, 'version'], expect: step.params.release })
      case 'stop-service': return stopProgram(step)
      case 'replace-binary': return replaceProgram(step)
      case 'start-service': return startProgram(step)
      case 'restore-binary': return restoreProgram(step)
      case 'restore-files': return restoreFilesProgram(step)
      case 'reset-node': return resetProgram(step)
      case 'join-node': return joinProgram(step)
      default: throw new Error(`k0s driver: no program for action ${step.action}`)
    }
  },
}

function backupProgram(step: StepOf<'backup'>): ActionProgram {
  if (step.params.kind !== 'k0s') throw new Error(`k0s driver: backup of kind ${step.params.kind}`)
  const { dir } = step.params
  const save = ['k0s', 'backup', `--save-path=${dir}`]
  return {
    title: `${save.join(' ')} (PKI, etcd or kine database, config, manifests)`,
    verify: [nodeCheck(['sh', '-c', `cd ${q(dir)} && sha256sum --check --quiet --strict SHA256SUMS`], `a checksummed k0s backup exists in ${dir}`, { exitCode: 0 }, { privileged: true, okExitCodes: [0, 1, 2] })],
    run: [
      // k0s backup wants an existing directory.
      onNode(['mkdir', '-p', dir], `create the backup directory ${dir}`),
      onNode(save, 'k0s backup before the hop', { timeoutMs: 10 * 60_000 }),
      script([`cd ${q(dir)}`, 'sha256sum k0s_backup_*.tar.gz > SHA256SUMS.new', 'mv -f SHA256SUMS.new SHA256SUMS'], `record the checksum of the k0s backup in ${dir}`),
    ],
  }
}

function stopProgram(step: StepOf<'stop-service'>): ActionProgram {
  return {
    title: 'k0s stop',
    verify: [stoppedCheck(step.params.service)],
    run: [onNode(['k0s', 'stop'], `stop k0s (${step.params.service}) before its binary is replaced`, { timeoutMs: 5 * 60_000 })],
  }
}

function startProgram(step: StepOf<'start-service'>): ActionProgram {
  const { service, release } = step.params
  return {
    title: 'k0s start',
    verify: release ? [runningCheck(release)] : [],
    run: [onNode(['k0s', 'start'], `start k0s (${service}) on the new binary`, { timeoutMs: 5 * 60_000 })],
    wait: [{ kind: 'service-active', service, timeoutMs: 5 * 60_000 }],
  }
}

/** `k0s stop && k0s reset` (facts §3.2: reset refuses while k0s runs; it keeps the binary). Verify: the unit is gone. */
function resetProgram(step: StepOf<'reset-node'>): ActionProgram {
  const unit = unitFile(step.params.service)
  return {
    title: 'k0s stop && k0s reset',
    verify: [nodeCheck(['test', '!', '-e', unit], `${unit} is gone`, { exitCode: 0 }, { okExitCodes: [0, 1] })],
    run: [
      // k0s stop fails when k0s is not running (it failed to start after the upgrade): that is fine here.
      onNode(['k0s', 'stop'], 'stop k0s before the reset', { okExitCodes: [0, 1], timeoutMs: 5 * 60_000 }),
      onNode(['k0s', 'reset'], 'reset the node: k0s reset removes its k0s data, config and unit', { timeoutMs: 5 * 60_000 }),
    ],
  }
}

/**
 * The worker joins again (facts §3.2 "Rejoin tokens"): `k0s token create --role=worker` on the first controller, its
 * output (a secret, never shown) written to the token file the node's unit names, then `k0s start`.
 */
function joinProgram(step: StepOf<'join-node'>): ActionProgram {
  const p = step.params
  if (p.kind !== 'k0s') throw new Error(`k0s driver: join of kind ${p.kind}`)
  const unit = unitFile(p.service)
  const create = ['k0s', 'token', 'create', '--role=worker', '--expiry=1h']
  const writeToken = [
    'set -e',
    `file=$(sed -n 's/^ExecStart=.*--token-file[= ]\\([^ ]*\\).*/\\1/p' ${q(unit)})`,
    `if [ -z "$file" ]; then echo kupgrade: ${q(unit)} names no --token-file: "rejoin the worker by hand (k0s install worker --token-file), then resume" >&2; exit 1; fi`,
    'umask 077',
    'mkdir -p "$(dirname "$file")"',
    'cat > "$file.kupgrade-new"',
    'mv -f "$file.kupgrade-new" "$file"',
  ]
  return {
    title: `${create.join(' ')} on the first controller into the token file of ${unit}, systemctl daemon-reload, k0s start`,
    verify: [runningCheck(p.release)],
    run: [
      onNode(create, 'make a worker join token on the first controller', { at: 'first-control-plane', secretOut: 'token' }),
      script(writeToken, 'write the join token into the token file the unit names', { secretIn: 'token' }),
      onNode(['systemctl', 'daemon-reload'], 'reload systemd units after the unit came back'),
      onNode(['k0s', 'start'], `start k0s (${p.service}): it joins with the fresh token`, { timeoutMs: 5 * 60_000 }),
    ],
    wait: [{ kind: 'service-active', service: p.service, timeoutMs: 5 * 60_000 }],
  }
}

function replaceProgram(step: StepOf<'replace-binary'>): ActionProgram {
  const { binary, release, source } = step.params
  const verify = [versionCheck(binary, release)]
  if (source.kind === 'installer') {
    const install = `curl --proto '=https' --tlsv1.2 -sSf https://get.k0s.sh | K0S_VERSION=${q(release)} sh`
    return {
      title: `install k0s ${release}: ${install}`,
      verify,
      run: [script(['set -e', install], `install k0s ${release} with get.k0s.sh`, { timeoutMs: 10 * 60_000 })],
    }
  }
  const asset = `k0s-${release}-amd64`
  const base = source.kind === 'mirror' ? `${source.base.replace(/\/+$/, '')}/${encodeURIComponent(release)}` : `${source.dir.replace(/\/+$/, '')}/${release}`
  return {
    title: `install k0s ${release} from ${base}/${asset}, checked against ${base}/sha256sums.txt`,
    verify,
    run: [
      script(fetchVerifiedBinaryScript({ fetch: source.kind === 'mirror' ? 'url' : 'path', binaryFrom: `${base}/${asset}`, sumsFrom: `${base}/sha256sums.txt`, assetName: asset, binary, release }), `install the k0s ${release} binary, checksum verified`, { timeoutMs: 10 * 60_000 }),
    ],
  }
}

function restoreProgram(step: StepOf<'restore-binary'>): ActionProgram {
  const { binary, backup, release, service } = step.params
  const dir = backup.slice(0, backup.indexOf('/files/'))
  return {
    title: `k0s stop, put the kept k0s ${release} back (${backup} → ${binary}), k0s start`,
    verify: [runningCheck(release)],
    run: [
      // k0s stop fails when k0s is not running (a failed start after the upgrade): that is fine here.
      onNode(['k0s', 'stop'], `stop k0s (${service}) before the binary goes back`, { okExitCodes: [0, 1], timeoutMs: 5 * 60_000 }),
      ...restoreBinaryCommands({ backup, binary, dir }),
      onNode(['k0s', 'start'], `start k0s (${service}) on the restored binary`, { timeoutMs: 5 * 60_000 }),
    ],
    wait: [{ kind: 'service-active', service, timeoutMs: 5 * 60_000 }],
  }
}
