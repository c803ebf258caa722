import type { Hop } from '../../planner/hops.js'
import type { BinarySource, Step, StepOf } from '../../planner/types.js'
import { backupDir, literal, nodeCheck, OFF_NODE, onNode, q, script } from '../common/commands.js'
import { assetTitle, backupFilesProgram, fetchVerifiedBinaryScript, releaseFolder, releaseSourceCheckScript, type ArchAsset, firstListedFile, keptBinaryBackIfKeptLines, keptCopy, newestFile, restoreBinaryCommands, restoreFilesCommands, restoreFilesProgram } from '../common/files.js'
import type { ActionProgram } from '../program.js'
import type { ClusterInstall, ClusterRestoreTemplates, ControlPlaneNode, Driver, DriverNodeFacts, NodeContext, NodeRole, StepTemplate } from '../types.js'

/**
 * k0s (facts §3.2, k0s docs/upgrade.md and k0sctl's upgrade phases): `k0s backup` on the first controller before a
 * hop; per node, controllers one at a time then workers: keep the binary (with checksum), `k0s stop`, replace the
 * binary (get.k0s.sh with K0S_VERSION, or a checksummed binary from a mirror or node-local directory), `k0s start`.
 */
const BINARY = '/usr/local/bin/k0s'
/** k0s's install script. */
const INSTALLER = 'https://get.k0s.sh'
const serviceName = (role: NodeRole): string => (role === 'control-plane' ? 'k0scontroller' : 'k0sworker')
const unitFile = (service: string): string => `/etc/systemd/system/${service}.service`

const versionCheck = (binary: string, release: string) =>
  nodeCheck([binary, 'version'], `${binary} version reports ${release}`, { stdoutMatches: `^${literal(release)}$` }, { okExitCodes: [0, 1, 126, 127] })
/**
 * `k0s status` names the version the running k0s was started from (and fails when k0s is not running). It asks k0s
 * over /run/k0s/status.sock, which is root's: only root may connect (the k0s docs run it with sudo).
 */
const runningCheck = (release: string) =>
  nodeCheck(['k0s', 'status'], `k0s status reports Version: ${release}`, { stdoutMatches: `^Version: ${literal(release)}$` }, { privileged: true, okExitCodes: [0, 1] })
/** The hop's only controller: it takes the backup, and a restore there needs no other controller to rejoin. */
const singleController = (node: NodeContext): boolean => node.role === 'control-plane' && node.firstControlPlane && node.lastControlPlane
const archiveDir = (dir: string): string => `${dir}/k0s-backup`
const SINGLE_RESTORE = 'automatic: k0s stop, the kept binary back, k0s reset, k0s restore <pre-hop k0s backup>, its unit back, k0s start, running (and Ready, with a kubelet) at the old version'

const LEAVE_ETCD: StepTemplate = { action: 'leave-etcd', params: {} }
const CONTROLLER = 'k0scontroller'
const CLUSTER_RESTORE = `k0s stopped on every controller; on the first (which took the k0s backup) the kept binary back, k0s reset, k0s restore <pre-hop archive>, its unit back, k0s started: a new etcd cluster of one; on each other controller k0s stopped, the kept binary back (where it moved), k0s reset, its unit back, a controller token from the first (k0s token create --role=controller) in its token file, k0s started: it joins the restored cluster; every controller running the old version (and Ready, with a kubelet)`

/** A controller that joined is an etcd member: `k0s etcd member-list` on another controller names it. Its unit is active
 *  even while its join is being refused (k0s exits and systemd restarts it), so this, not the unit, proves the join. */
const memberCheck = (node: string, at: 'peer-control-plane' | 'first-control-plane') =>
  nodeCheck(['k0s', 'etcd', 'member-list'], `k0s etcd member-list on ${at === 'peer-control-plane' ? 'another controller' : 'the first controller'} names ${node}`, { exitCode: 0, stdoutIncludes: `"${node}":` }, { privileged: true, okExitCodes: [0, 1], at })
const JOIN_TIMEOUT_MS = 5 * 60_000

const stoppedCheck = (service: string) =>
  nodeCheck(['systemctl', 'is-active', service], `${service} is not running`, { stdoutMatches: '^(inactive|failed)$' }, { okExitCodes: [0, 3, 4] })

export const k0s: Driver = {
  name: 'k0s',
  actions: ['backup', 'backup-files', 'stop-service', 'replace-binary', 'start-service', 'restore-binary', 'restore-datastore', 'rejoin-datastore', 'restore-files', 'leave-etcd', 'reset-node', 'join-node'],
  serviceName,
  planBackup: (hop: Hop): StepTemplate[] => [{ action: 'backup', params: { kind: 'k0s', dir: archiveDir(backupDir(hop.from)) } }],
  planNodeUpgrade: (hop: Hop, node: NodeContext, install: ClusterInstall): StepTemplate[] => {
    const dir = backupDir(hop.from)
    const service = serviceName(node.role)
    return [
      // The unit too: `k0s install` wrote the node's flags and token file into it, and a rebuild (k0s reset) removes it.
      { action: 'backup-files', params: { dir, paths: [BINARY, unitFile(service)], release: node.foundAt ?? hop.from } },
      { action: 'stop-service', params: { service }, undo: { action: 'start-service', params: { service, release: hop.from } } },
      {
        action: 'replace-binary',
        params: { binary: BINARY, release: hop.to.release, service, source: install.source, kept: dir },
        // The only controller holds the hop's backup and no other controller has to rejoin: it is put back from the
        // backup (a moved controller refuses its old binary alone). With several controllers the restore is the whole
        // cluster's, stopped and reported with the procedure (rollbackPath).
        undo: singleController(node)
          ? { action: 'restore-datastore', params: { kind: 'k0s', dir, binary: BINARY, backup: keptCopy(dir, BINARY), release: hop.from, service } }
          : { action: 'restore-binary', params: { binary: BINARY, backup: keptCopy(dir, BINARY), release: hop.from, service } },
      },
      { action: 'start-service', params: { service, release: hop.to.release } },
    ]
  },
  releaseSourceCheck: ({ release, source }: { release: string; source: BinarySource }): string[] => {
    const assets = k0sAssets(release)
    return source.kind === 'installer'
      // get.k0s.sh fetches the binary from GitHub's release alone, without a checksum list.
      ? releaseSourceCheckScript({ fetch: 'url', base: `https://github.com/k0sproject/k0s/releases/download/${release}`, assets, tool: 'k0s', release, checksums: false, installer: INSTALLER })
      : releaseSourceCheckScript({ ...releaseFolder(source, release), assets, tool: 'k0s', release, checksums: true })
  },
  rollbackPath: (node) =>
    node.role === 'worker'
      ? { path: 'previous-version', detail: 'k0s stop, kept k0s binary back, k0s start, Ready at the old version' }
      : singleController(node)
        ? { path: 'snapshot-restore', detail: SINGLE_RESTORE }
        : { path: 'snapshot-restore', detail: `automatic, every controller at once: ${CLUSTER_RESTORE}` },
  planClusterRestore: (hop: Hop, controlPlanes: readonly ControlPlaneNode[]): ClusterRestoreTemplates | undefined => {
    if (controlPlanes.length < 2) return undefined
    const dir = backupDir(hop.from)
    const kept = { dir, binary: BINARY, backup: keptCopy(dir, BINARY), release: hop.from, service: CONTROLLER }
    const peers = Array.from({ length: controlPlanes.length - 1 }, (_, i) => i + 1)
    // docs.k0sproject.io "Backup/Restore": the backup is restored on one controller, which starts a new etcd cluster of
    // one; every other controller is reset and joins it again, as at the first setup. All stopped first: a controller
    // still running the moved datastore must not serve beside the restored one.
    return {
      steps: [
        ...[...peers].reverse().map((i) => ({ controlPlane: i, template: { action: 'stop-service' as const, params: { service: CONTROLLER } } })),
        { controlPlane: 0, template: { action: 'restore-datastore', params: { kind: 'k0s', ...kept } } },
        ...peers.map((i) => ({ controlPlane: i, template: { action: 'rejoin-datastore' as const, params: { kind: 'k0s' as const, ...kept } } })),
      ],
      detail: CLUSTER_RESTORE,
    }
  },
  planRebuild: (hop, node, install) => {
    const dir = backupDir(hop.from)
    const service = serviceName(node.role)
    if (node.role === 'control-plane' && singleController(node)) return { procedure: `not automatic for a k0s controller: restore it from the pre-hop backup (kupgrade rollback)` }
    if (node.role === 'control-plane' && (node.controlPlanes ?? 0) < 3) {
      return { procedure: 'not automatic for a k0s controller of two: the other alone has no etcd quorum while this one is away; add a third controller, or k0s etcd leave for it on the other, k0s stop && k0s reset on it, then rejoin it with k0s token create --role=controller (docs.k0sproject.io "Remove or replace a controller")' }
    }
    if (node.role === 'control-plane') {
      // docs.k0sproject.io "Remove or replace a controller": its etcd member removed through another controller (a
      // reset controller cannot rejoin while it is listed), k0s stop && k0s reset, then the version it ran before the
      // hop rejoined with a controller token made on another controller.
      const release = hop.from
      return {
        reset: [LEAVE_ETCD, { action: 'reset-node', params: { service } }],
        rejoin: [
          { action: 'restore-files', params: { dir, paths: [unitFile(service)] } },
          { action: 'replace-binary', params: { binary: BINARY, release, service, source: install.source, kept: dir } },
          { action: 'join-node', params: { kind: 'k0s-controller', service, release } },
        ],
        detail: `k0s etcd leave --peer-address <its member's address> on another controller, k0s stop && k0s reset, kubectl delete node, its ${service} unit back, k0s ${release}, a fresh k0s token create --role=controller from another controller into its token file, k0s start, running at ${release}`,
      }
    }
    const release = hop.to.release
    return {
      reset: [{ action: 'reset-node', params: { service } }],
      rejoin: [
        // reset removes the unit `k0s install` wrote: it comes back from the hop's backup, so the worker starts again
        // with its own flags and token file.
        { action: 'restore-files', params: { dir, paths: [unitFile(service)] } },
        // At the hop's target, not the old version: k0s runs kube-proxy from the controllers, which are already there,
        // and a worker must run the same minor (facts §1). reset keeps the binary, so this is usually in place already.
        { action: 'replace-binary', params: { binary: BINARY, release, service, source: install.source, kept: dir } },
        { action: 'join-node', params: { kind: 'k0s', service, release } },
      ],
      detail: `k0s stop && k0s reset, kubectl delete node, its ${service} unit back, k0s ${release} (the controllers' version: k0s needs workers at their minor), a fresh k0s token create --role=worker from the first controller into its token file, k0s start, Ready at ${release}`,
      readyAt: hop.to.kubelet,
    }
  },
  programFor: (step: Step, facts?: DriverNodeFacts): ActionProgram => {
    switch (step.action) {
      case 'backup': return backupProgram(step)
      case 'backup-files': return backupFilesProgram(step, { argv: (copies) => [`${copies}${BINARY}`, 'version'], expect: step.params.release })
      case 'stop-service': return stopProgram(step)
      case 'replace-binary': return replaceProgram(step, facts?.arch)
      case 'start-service': return startProgram(step)
      case 'restore-binary': return restoreProgram(step)
      case 'restore-datastore': return restoreDatastoreProgram(step)
      case 'rejoin-datastore': return rejoinDatastoreProgram(step)
      case 'restore-files': return restoreFilesProgram(step)
      case 'reset-node': return resetProgram(step)
      case 'join-node': return joinProgram(step)
      case 'leave-etcd': return leaveEtcdProgram(step)
      default: throw new Error(`k0s driver: no program for action ${step.action}`)
    }
  },
}

function backupProgram(step: StepOf<'backup'>): ActionProgram {
  if (step.params.kind !== 'k0s') throw new Error(`k0s driver: backup of kind ${step.params.kind}`)
  const { dir } = step.params
  const save = ['k0s', 'backup', `--save-path=${dir}`]
  return {
    title: `${save.join(' ')} (PKI, etcd or kine database, config, manifests); copied off the node to ${OFF_NODE}`,
    offNode: { sums: [`${dir}/SHA256SUMS`] },
    verify: [nodeCheck(['sh', '-c', `cd ${q(dir)} && sha256sum --check --quiet --strict SHA256SUMS`], `a checksummed k0s backup exists in ${dir}`, { exitCode: 0 }, { privileged: true, okExitCodes: [0, 1, 2] })],
    run: [
      // An earlier run's archive and list go first: a backup cut off halfway must not verify against that list on a
      // resume, and each run's archive is kept off the node, not here. k0s backup wants an existing directory.
      script(['set -e', `mkdir -p ${q(dir)}`, `cd ${q(dir)}`, 'rm -f SHA256SUMS SHA256SUMS.new k0s_backup_*.tar.gz'], `create the backup directory ${dir}, without an earlier run's backup`),
      onNode(save, 'k0s backup before the hop', { timeoutMs: 10 * 60_000 }),
      script(['set -e', `cd ${q(dir)}`, `sha256sum ${newestFile('k0s_backup_*.tar.gz')} > SHA256SUMS.new`, 'mv -f SHA256SUMS.new SHA256SUMS'], `record the checksum of the k0s backup in ${dir}`),
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
 * A node joins again with a fresh token (facts §3.2 "Rejoin tokens"): a worker with `k0s token create --role=worker` on
 * the first controller; a controller (docs.k0sproject.io "Remove or replace a controller") with `k0s token create
 * --role=controller` on another controller, its unit given `--token-file=/etc/k0s/k0stoken` where it names none (the
 * first controller bootstrapped the cluster without one). The token (a secret, never shown) goes into the token file
 * the unit names, then `k0s start`.
 */
function joinProgram(step: StepOf<'join-node'>): ActionProgram {
  const p = step.params
  if (p.kind !== 'k0s' && p.kind !== 'k0s-controller') throw new Error(`k0s driver: join of kind ${p.kind}`)
  const controller = p.kind === 'k0s-controller'
  const at = controller ? 'peer-control-plane' : 'first-control-plane'
  const join = joinCommands({ service: p.service, controller, at })
  const member = controller ? joinedCheck(step.node, at) : []
  return {
    title: `${join.create} on ${join.where} into the token file of ${unitFile(p.service)}, systemctl daemon-reload, k0s start`,
    verify: [runningCheck(p.release), ...member],
    run: join.run,
    wait: [{ kind: 'service-active', service: p.service, timeoutMs: JOIN_TIMEOUT_MS }, ...member.map((check) => ({ kind: 'holds' as const, check, timeoutMs: JOIN_TIMEOUT_MS }))],
  }
}

/** The check that a controller's join went through (its member listed where `at` says). */
function joinedCheck(node: string | undefined, at: 'peer-control-plane' | 'first-control-plane') {
  if (!node) throw new Error('k0s driver: a controller join without a node')
  return [memberCheck(node, at)]
}

/** A fresh join token made `at` a controller, written (a secret, never shown) into the token file the unit names, then
 *  `k0s start`. A controller's unit gets `--token-file=/etc/k0s/k0stoken` where it names none (the first controller
 *  bootstrapped the cluster without one); a worker's unit always names one (`k0s install worker --token-file`). */
function joinCommands(i: { service: string; controller: boolean; at: 'peer-control-plane' | 'first-control-plane' }) {
  const unit = unitFile(i.service)
  const create = ['k0s', 'token', 'create', `--role=${i.controller ? 'controller' : 'worker'}`, '--expiry=1h']
  const writeToken = [
    'set -e',
    // ExecStart as `k0s install` writes it: --token-file=FILE.
    `file=$(sed -n 's/^ExecStart=.*--token-file[= ]\\([^ ]*\\).*/\\1/p' ${q(unit)})`,
    ...(i.controller
      ? [`if [ -z "$file" ]; then file=/etc/k0s/k0stoken; sed -i "s|^ExecStart=\\(.* controller\\)|ExecStart=\\1 --token-file=$file|" ${q(unit)}; fi`]
      : [`if [ -z "$file" ]; then echo kupgrade: ${q(unit)} names no --token-file: "rejoin the worker by hand (k0s install worker --token-file), then resume" >&2; exit 1; fi`]),
    'umask 077',
    'mkdir -p "$(dirname "$file")"',
    'cat > "$file.kupgrade-new"',
    'mv -f "$file.kupgrade-new" "$file"',
  ]
  const where = i.at === 'peer-control-plane' ? 'another controller' : 'the first controller'
  return {
    create: create.join(' '),
    where,
    run: [
      onNode(create, `make a ${i.controller ? 'controller' : 'worker'} join token on ${where}`, { at: i.at, secretOut: 'token' }),
      script(writeToken, 'write the join token into the token file the unit names', { secretIn: 'token' }),
      onNode(['systemctl', 'daemon-reload'], 'reload systemd units after the unit came back'),
      onNode(['k0s', 'start'], `start k0s (${i.service}): it joins with the fresh token`, { timeoutMs: 5 * 60_000 }),
    ],
  }
}

/**
 * A controller beside the one restored from the backup (docs.k0sproject.io "Backup/Restore": the others join the
 * restored controller again as at the first setup): its unit saved aside (k0s reset removes it; a controller the hop
 * never reached kept none before), k0s stopped, its kept binary back where it moved (checked), `k0s reset` (its etcd
 * data names a cluster that is gone), its unit back, a controller token from the restored first controller, `k0s
 * start`. Verify: k0s runs the old release and the first controller lists it as an etcd member (a refused join leaves
 * its unit active between restarts, never listed).
 */
function rejoinDatastoreProgram(step: StepOf<'rejoin-datastore'>): ActionProgram {
  if (step.params.kind !== 'k0s') throw new Error(`k0s driver: rejoin of kind ${step.params.kind}`)
  const { binary, backup, dir, release, service } = step.params
  const unit = unitFile(service)
  const saved = `${dir}/rejoin${unit}`
  const join = joinCommands({ service, controller: true, at: 'first-control-plane' })
  const member = joinedCheck(step.node, 'first-control-plane')
  return {
    title: `rejoin the restored cluster: k0s stop, the kept k0s ${release} back where it moved, k0s reset, ${unit} back, ${join.create} on the first controller into its token file, k0s start`,
    // Its kept binary: put back from the copy kept off the node where the node lost it.
    readsBackup: { release },
    verify: [runningCheck(release), ...member],
    run: [
      script(
        [
          'set -e',
          // Saved before the reset removes it; a re-run after the reset finds the saved copy.
          `if [ -f ${q(unit)} ]; then mkdir -p ${q(`${dir}/rejoin/etc/systemd/system`)}; cp -p ${q(unit)} ${q(`${saved}.new`)}; mv -f ${q(`${saved}.new`)} ${q(saved)}; fi`,
          `test -f ${q(saved)} || { echo ${q(`kupgrade: neither ${unit} nor a saved copy (${saved}) is on the node: k0s install controller --token-file it by hand, then resume`)} >&2; exit 1; }`,
        ],
        `keep ${unit} aside: k0s reset removes it`,
      ),
      // k0s stop fails when k0s is not running (stopped for the restore already): that is fine here.
      onNode(['k0s', 'stop'], `stop k0s (${service}) before the reset`, { okExitCodes: [0, 1], timeoutMs: 5 * 60_000 }),
      script(
        [
          'set -e',
          ...keptBinaryBackIfKeptLines({ backup, binary, dir, what: `k0s ${release}`, isRelease: `[ "$(${q(binary)} version)" = ${q(release)} ]` }),
        ],
        `put back k0s ${release} where it moved`,
      ),
      onNode(['k0s', 'reset'], 'reset the controller: its etcd data names the cluster the restore replaced', { timeoutMs: 5 * 60_000 }),
      script(['set -e', `install -m 0644 ${q(saved)} ${q(unit)}`], `put ${unit} back`),
      ...join.run,
    ],
    wait: [{ kind: 'service-active', service, timeoutMs: JOIN_TIMEOUT_MS }, ...member.map((check) => ({ kind: 'holds' as const, check, timeoutMs: JOIN_TIMEOUT_MS }))],
  }
}

/**
 * A controller's etcd member removed through another controller (docs.k0sproject.io "Remove or replace a controller":
 * `k0s etcd leave --peer-address <its address>`; the node itself may be down). Its peer address is read from `k0s etcd
 * member-list` by its member name, the node's name; a node that is no member any more has nothing to remove. Verify:
 * the member list no longer names it.
 */
function leaveEtcdProgram(step: StepOf<'leave-etcd'>): ActionProgram {
  const member = step.node
  if (!member) throw new Error('k0s driver: leave-etcd without a node')
  const key = `"${member}":`
  return {
    title: `k0s etcd leave --peer-address <the address of member ${member} in k0s etcd member-list> on another controller`,
    verify: [nodeCheck(['k0s', 'etcd', 'member-list'], `k0s etcd member-list on another controller does not name ${member}`, { exitCode: 0, stdoutExcludes: key }, { privileged: true, at: 'peer-control-plane' })],
    run: [
      script(
        [
          'set -e',
          'list=$(k0s etcd member-list)',
          // {"members":{"NAME":"https://ADDRESS:2380",...}}: the member's peer URL, then its host.
          `url=$(printf '%s' "$list" | tr ',{}' '\\n\\n\\n' | grep -F -- ${q(key)} | sed -n 's/.*:"\\(https*:[^"]*\\)"$/\\1/p')`,
          'if [ -z "$url" ]; then exit 0; fi',
          'host=${url#*://}; host=${host%:*}',
          'k0s etcd leave --peer-address "$host"',
        ],
        `remove ${member}'s etcd member through another controller`,
        { at: 'peer-control-plane', timeoutMs: 2 * 60_000 },
      ),
    ],
  }
}

/** get.k0s.sh's _detect_arch: `uname -m` → the release's k0s-<release>-amd64|arm64|arm, all in one sha256sums.txt. */
const K0S_MACHINES = { amd64: 'amd64|x86_64', arm64: 'arm64|aarch64', arm: 'armv7l|armv8l|arm' }
const k0sAssets = (release: string): ArchAsset[] =>
  Object.entries(K0S_MACHINES).map(([arch, machines]) => ({ arch, machines, asset: `k0s-${release}-${arch}`, sums: 'sha256sums.txt' }))

function replaceProgram(step: StepOf<'replace-binary'>, arch: string | undefined): ActionProgram {
  const { binary, release, source } = step.params
  const verify = [versionCheck(binary, release)]
  if (source.kind === 'installer') {
    const install = `curl --proto '=https' --tlsv1.2 -sSf ${INSTALLER} | K0S_VERSION=${q(release)} sh`
    return {
      title: `install k0s ${release}: ${install}`,
      verify,
      run: [script(['set -e', install], `install k0s ${release} with get.k0s.sh`, { timeoutMs: 10 * 60_000 })],
    }
  }
  const { fetch, base } = releaseFolder(source, release)
  const assets = k0sAssets(release)
  return {
    title: assetTitle('k0s', release, base, assets, arch) ?? `install k0s ${release} from ${base}/k0s-${release}-<arch> for the node's architecture (uname -m: amd64, arm64, arm), checked against ${base}/sha256sums.txt`,
    verify,
    run: [
      script(fetchVerifiedBinaryScript({ fetch, base, assets, tool: 'k0s', binary, release }), `install the k0s ${release} binary, checksum verified`, { timeoutMs: 10 * 60_000 }),
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

/**
 * The documented restore of a k0s controller (facts §3.2, k0s docs/backup.md), for the only controller of a cluster
 * whose datastore moved: k0s stopped, the kept binary back (checksum checked), `k0s reset` (k0s restore's etcd step
 * refuses a non-empty data dir: it restores onto a fresh node), `k0s restore` of the hop's checksummed backup, the unit
 * `k0s install` wrote back from the hop's backup (reset removed it), `k0s start`. Verify: k0s runs the old release.
 */
function restoreDatastoreProgram(step: StepOf<'restore-datastore'>): ActionProgram {
  if (step.params.kind !== 'k0s') throw new Error(`k0s driver: datastore restore of kind ${step.params.kind}`)
  const { binary, backup, dir, release, service } = step.params
  const archives = archiveDir(dir)
  const unit = unitFile(service)
  return {
    title: `restore k0s ${release} from the pre-hop backup in ${archives}: k0s stop, the kept binary back, k0s reset, k0s restore <archive>, ${unit} back, k0s start`,
    readsBackup: { release },
    verify: [runningCheck(release)],
    run: [
      // The archive first: a restore without one must stop before the reset removes the controller's data.
      onNode(['sh', '-c', `cd ${q(archives)} && sha256sum --check --quiet --strict SHA256SUMS`], `check the k0s backup in ${archives} before anything is reset`),
      // k0s stop fails when k0s is not running (the moved controller failed to start): that is fine here.
      onNode(['k0s', 'stop'], `stop k0s (${service}) before the restore`, { okExitCodes: [0, 1], timeoutMs: 5 * 60_000 }),
      ...restoreBinaryCommands({ backup, binary, dir }),
      onNode(['k0s', 'reset'], 'reset the controller: k0s restore wants an empty data dir', { timeoutMs: 5 * 60_000 }),
      // Run in the archive's directory: k0s restore writes the archived k0s.yaml to the working directory.
      script(
        ['set -e', `cd ${q(archives)}`, `archive=${firstListedFile('SHA256SUMS')}`, `${q(binary)} restore "$archive"`],
        `k0s restore the pre-hop backup from ${archives}`,
        { timeoutMs: 10 * 60_000 },
      ),
      ...restoreFilesCommands({ dir, paths: [unit] }),
      onNode(['systemctl', 'daemon-reload'], 'reload systemd units after the unit came back'),
      onNode(['k0s', 'start'], `start k0s (${service}) on the restored datastore`, { timeoutMs: 5 * 60_000 }),
    ],
    wait: [{ kind: 'service-active', service, timeoutMs: 5 * 60_000 }],
  }
}
