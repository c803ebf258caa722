import type { Hop } from '../../planner/hops.js'
import type { BinarySource, Step, StepOf } from '../../planner/types.js'
import { backupDir, literal, nodeCheck, OFF_NODE, onNode, q, script } from '../common/commands.js'
import { assetTitle, backupFilesProgram, fetchVerifiedBinaryScript, keepArchivesLines, releaseFolder, releaseSourceCheckScript, type ArchAsset, firstListedFile, imagesTitle, keptBinaryBackIfKeptLines, keptCopy, keptImagesBackLines, newestFile, type ReleaseImages, restoreBinaryCommands, restoreFilesProgram } from '../common/files.js'
import type { ActionProgram } from '../program.js'
import type { ClusterInstall, ClusterRestoreTemplates, ControlPlaneNode, Driver, DriverNodeFacts, NodeContext, NodeRole, RebuildTemplates, RebuildVersion, StepTemplate } from '../types.js'

/**
 * k3s (facts §3.1): servers one at a time, then agents. Each node keeps its binary (with checksum), gets the exact
 * release (the install script with INSTALL_K3S_VERSION, re-given the node's own K3S_* environment and server/agent
 * arguments; or a checksummed binary from a mirror or a node-local directory), and is restarted. Before each hop the
 * first server backs up the datastore: `k3s etcd-snapshot save` with embedded etcd, a copy of the SQLite database
 * (and the server token it is encrypted with) otherwise.
 */
const BINARY = '/usr/local/bin/k3s'
/** k3s's install script (install.sh). */
const INSTALLER = 'https://get.k3s.io'
const DB = '/var/lib/rancher/k3s/server/db'
const TOKEN = '/var/lib/rancher/k3s/server/token'
const serviceName = (role: NodeRole): string => (role === 'control-plane' ? 'k3s' : 'k3s-agent')
const unitFile = (service: string): string => `/etc/systemd/system/${service}.service`
/** Snapshot names become file names: keep them to characters every tool leaves alone. */
const snapshotName = (release: string): string => `kupgrade-pre-${release.replace(/[^A-Za-z0-9.-]/g, '-')}`

const CLUSTER_RESTORE = 'k3s stopped on every server; on the first the kept binary back and k3s server --cluster-reset --cluster-reset-restore-path=<pre-hop snapshot>, k3s started; on each other server the kept binary back (where it moved), server/db moved aside, k3s started (it rejoins the restored cluster); every server Ready at the old version'

/** The hop's only server: it takes the backup, and a restore there needs no other server to rejoin. */
const singleServer = (node: NodeContext): boolean => node.role === 'control-plane' && node.firstControlPlane && node.lastControlPlane

/**
 * Sets "$@" to the k3s command and flags of the unit (ExecStart as install.sh wrote it: `k3s \ server \ '--flag' …`,
 * quoted words on continuation lines; eval restores the words — the file is root's and was written by install.sh)
 * and exports its env file. `unit` is a shell word: a quoted path or "$variable".
 */
const unitArgs = (unit: string): string[] => [
  `if [ -f ${unit}.env ]; then set -a; . ${unit}.env; set +a; fi`,
  `args=$(awk '/^ExecStart=/{f=1} f{print; if ($0 !~ /\\\\$/) exit}' ${unit} | sed -e '1s/^ExecStart=[^ ]*//' -e 's/\\\\$//' | tr '\\n' ' ')`,
  'eval "set -- $args"',
]

const versionCheck = (binary: string, release: string) =>
  nodeCheck([binary, '--version'], `${binary} --version reports ${release}`, { stdoutMatches: `^k3s version ${literal(release)} ` }, { okExitCodes: [0, 1, 126, 127] })

export const k3s: Driver = {
  name: 'k3s',
  actions: ['backup', 'backup-files', 'replace-binary', 'reset-node', 'join-node', 'restart', 'restore-binary', 'restore-datastore', 'rejoin-datastore', 'restore-files', 'stop-service'],
  serviceName,
  planBackup: (hop: Hop): StepTemplate[] => [{ action: 'backup', params: { kind: 'k3s', dir: backupDir(hop.from), name: snapshotName(hop.to.release) } }],
  planNodeUpgrade: (hop: Hop, node: NodeContext, install: ClusterInstall): StepTemplate[] => {
    const dir = backupDir(hop.from)
    const service = serviceName(node.role)
    return [
      // The unit and its env file too: install.sh deletes both before writing them again, so an install killed in
      // between leaves only these copies of the node's arguments and K3S_URL/K3S_TOKEN.
      { action: 'backup-files', params: { dir, paths: [BINARY, unitFile(service), `${unitFile(service)}.env`], release: node.foundAt ?? hop.from } },
      {
        action: 'replace-binary',
        params: { binary: BINARY, release: hop.to.release, service, source: install.source, kept: dir },
        // The only server holds the hop's backup and no other server has to rejoin: it is put back from the snapshot
        // (a moved server refuses its old binary alone). With several servers the restore is the whole cluster's,
        // stopped and reported with the procedure (rollbackPath).
        undo: singleServer(node)
          ? { action: 'restore-datastore', params: { kind: 'k3s', dir, name: snapshotName(hop.to.release), binary: BINARY, backup: keptCopy(dir, BINARY), release: hop.from, service } }
          : { action: 'restore-binary', params: { binary: BINARY, backup: keptCopy(dir, BINARY), release: hop.from, service } },
      },
      { action: 'restart', params: { service } },
    ]
  },
  releaseSourceCheck: ({ release, source, kept }: { release: string; source: BinarySource; kept: string }): string[] => {
    const files = source.kind === 'installer'
      // install.sh's own downloads (setup_verify_arch, download_hash, download_binary): GitHub's release, named as is.
      ? { fetch: 'url' as const, base: `https://github.com/k3s-io/k3s/releases/download/${release}`, installer: INSTALLER }
      : { ...releaseFolder(source, release), images: k3sImages(kept) }
    return releaseSourceCheckScript({ ...files, assets: K3S_ASSETS, tool: 'k3s', release, checksums: true })
  },
  rollbackPath: (node) =>
    node.role === 'worker'
      ? { path: 'previous-version', detail: 'kept k3s binary back, restart k3s-agent, Ready at the old version' }
      : singleServer(node)
        ? { path: 'snapshot-restore', detail: 'automatic: k3s stopped, the kept binary back, k3s server --cluster-reset --cluster-reset-restore-path=<pre-hop snapshot> (SQLite: the copied database), k3s started, Ready at the old version' }
        : { path: 'snapshot-restore', detail: `automatic, every server at once: ${CLUSTER_RESTORE}` },
  planClusterRestore: (hop: Hop, controlPlanes: readonly ControlPlaneNode[]): ClusterRestoreTemplates | undefined => {
    const servers = controlPlanes.length
    if (servers < 2) return undefined
    const dir = backupDir(hop.from)
    const kept = { binary: BINARY, backup: keptCopy(dir, BINARY), release: hop.from, service: 'k3s' }
    const peers = Array.from({ length: servers - 1 }, (_, i) => i + 1)
    // docs.k3s.io datastore/backup-restore, several servers: stop k3s on all of them, reset the first from the
    // snapshot and start it, then empty server/db on the others and start them: they join the restored cluster.
    return {
      steps: [
        ...[...peers].reverse().map((i) => ({ controlPlane: i, template: { action: 'stop-service' as const, params: { service: 'k3s' } } })),
        { controlPlane: 0, template: { action: 'restore-datastore', params: { kind: 'k3s', dir, name: snapshotName(hop.to.release), ...kept } } },
        ...peers.map((i) => ({ controlPlane: i, template: { action: 'rejoin-datastore' as const, params: { kind: 'k3s' as const, dir, ...kept } } })),
      ],
      detail: CLUSTER_RESTORE,
    }
  },
  planRebuild: (hop: Hop, node: NodeContext, install: ClusterInstall, version: RebuildVersion = 'previous'): RebuildTemplates | { procedure: string } => {
    const dir = backupDir(hop.from)
    const service = serviceName(node.role)
    // The only server holds the whole datastore: resetting it is the cluster's restore, not a node's rebuild. Of two,
    // the other alone holds no etcd quorum while this one is away (its member cannot even be removed).
    if (node.role === 'control-plane' && singleServer(node)) return { procedure: 'not automatic for a k3s server: restore it from the pre-hop snapshot (kupgrade rollback)' }
    if (node.role === 'control-plane' && (node.controlPlanes ?? 0) < 3) {
      return { procedure: `not automatic for a k3s server of two: the other alone has no etcd quorum while this one is away; add a third server, or k3s-uninstall.sh on it, kubectl delete node, then rejoin it with install.sh, --server ${install.apiEndpoint} and the cluster's token (docs.k3s.io "High Availability Embedded etcd")` }
    }
    if (node.role === 'control-plane') {
      // A server rejoins embedded etcd as a new member (docs.k3s.io HA embedded etcd; k3s-io/k3s#4025): its Node deleted
      // first, which makes k3s remove its old member (else "duplicate node name found"), and never with
      // --cluster-init, which on an empty datastore would start an etcd cluster of its own.
      return {
        reset: [{ action: 'reset-node', params: { service, kept: dir } }],
        rejoin: [
          { action: 'restore-files', params: { dir, paths: [unitFile(service), `${unitFile(service)}.env`] } },
          { action: 'join-node', params: { kind: 'k3s-server', service, server: install.apiEndpoint } },
          { action: 'replace-binary', params: { binary: BINARY, release: hop.from, service, source: install.source, kept: dir } },
          { action: 'restart', params: { service } },
        ],
        detail: `k3s-uninstall.sh, kubectl delete node (k3s removes its etcd member), the kept unit back set to join ${install.apiEndpoint} with the cluster's token read from another server (never --cluster-init), k3s ${hop.from} installed, k3s started, Ready at ${hop.from}`,
      }
    }
    // An agent joins servers that run the hop's target by now (agents come after every server): either version may run.
    const release = version === 'target' ? hop.to.release : hop.from
    return {
      reset: [{ action: 'reset-node', params: { service, kept: dir } }],
      rejoin: [
        // The uninstall took the unit and its env file (K3S_URL, K3S_TOKEN): the copies kept before the hop give the
        // agent back its server and token, and the install script its arguments.
        { action: 'restore-files', params: { dir, paths: [unitFile(service), `${unitFile(service)}.env`] } },
        { action: 'replace-binary', params: { binary: BINARY, release, service, source: install.source, kept: dir } },
        { action: 'restart', params: { service } },
      ],
      detail: `k3s-agent-uninstall.sh, kubectl delete node, the kept unit and K3S_URL/K3S_TOKEN back, k3s ${release} installed${version === 'target' ? " (the hop's target: strategy.rebuild.version)" : ''}, ${service} started, Ready at ${release}`,
      ...(version === 'target' ? { readyAt: hop.to.kubelet } : {}),
    }
  },
  programFor: (step: Step, facts?: DriverNodeFacts): ActionProgram => {
    switch (step.action) {
      case 'backup': return backupProgram(step)
      case 'reset-node': return resetProgram(step)
      case 'join-node': return joinServerProgram(step)
      case 'backup-files': return backupFilesProgram(step, { argv: (copies) => [`${copies}${BINARY}`, '--version'], expect: `k3s version ${step.params.release} ` })
      case 'replace-binary': return replaceProgram(step, facts?.arch)
      case 'restart': return restartProgram(step)
      case 'restore-binary': return restoreProgram(step)
      case 'restore-datastore': return restoreDatastoreProgram(step)
      case 'rejoin-datastore': return rejoinDatastoreProgram(step)
      case 'stop-service': return stopProgram(step)
      case 'restore-files': return restoreFilesProgram(step)
      default: throw new Error(`k3s driver: no program for action ${step.action}`)
    }
  },
}

function backupProgram(step: StepOf<'backup'>): ActionProgram {
  if (step.params.kind !== 'k3s') throw new Error(`k3s driver: backup of kind ${step.params.kind}`)
  const { dir, name } = step.params
  const snaps = `${dir}/etcd-snapshot`
  const sqlite = `${dir}/sqlite`
  const save = ['k3s', 'etcd-snapshot', 'save', '--name', name, '--etcd-snapshot-dir', snaps]
  // Each run saves a snapshot of the whole datastore here (gigabytes on a big cluster) and k3s's save never prunes
  // (pkg/cli/etcdsnapshot: it sets the retention to 0): retried runs would fill the server's disk. A fresh backup is
  // the pre-hop state and supersedes an earlier run's, which that run copied off the node; one taken after the
  // control plane moved is not, and the earlier pre-hop snapshot beside it stays.
  const prune = step.fresh ? ['k3s', 'etcd-snapshot', 'prune', '--name', name, '--etcd-snapshot-dir', snaps, '--etcd-snapshot-retention', '1'] : undefined
  return {
    title: `back up the datastore: ${save.join(' ')}${prune ? ` then ${prune.slice(0, 3).join(' ')} to this one` : ''} (embedded etcd), else (SQLite) systemctl stop k3s, copy ${DB} and the server token to ${sqlite}, systemctl start k3s; copied off the node to ${OFF_NODE}`,
    offNode: { sums: [`${snaps}/SHA256SUMS`, `${sqlite}/SHA256SUMS`] },
    // Done only when a checksum list exists and matches: a save killed before its list was written left a snapshot
    // that nothing vouches for, and the copy off the node reads the lists (the chaos test's SIGKILL found this).
    verify: [
      nodeCheck(['sh', '-c', [snaps, sqlite].map((d) => `(cd ${q(d)} 2>/dev/null && test -f SHA256SUMS && sha256sum --check --quiet --strict SHA256SUMS)`).join(' || ')], `a checksummed pre-hop backup exists in ${dir}`, { exitCode: 0 }, { privileged: true, okExitCodes: [0, 1, 2] }),
    ],
    run: [
      script(
        [
          'set -e',
          // An earlier run's backup goes first: a save cut off halfway must not verify against its list on a resume,
          // and a database copied onto an earlier copy would land inside it. Each run's is kept off the node.
          `rm -f ${q(`${snaps}/SHA256SUMS`)} ${q(`${snaps}/SHA256SUMS.new`)}`,
          `rm -rf ${q(sqlite)}`,
          // The datastore decides the backup: k3s's embedded etcd keeps its data in server/db/etcd.
          `if [ -d ${q(`${DB}/etcd`)} ]; then`,
          `  mkdir -p ${q(snaps)}`,
          `  ${save.map(q).join(' ')}`,
          // The list names the snapshot just saved, and only it: it is what the restore reads and what is copied
          // off the node, not every snapshot an earlier (or killed) try of this hop left beside it.
          `  (cd ${q(snaps)} && sha256sum ${newestFile(`${q(name)}-*`)} > SHA256SUMS.new && mv -f SHA256SUMS.new SHA256SUMS)`,
          // Not pruning leaves a snapshot too many, not a backup missing: the backup stands either way.
          ...(prune ? [`  ${prune.map(q).join(' ')} || echo ${q(`kupgrade: earlier snapshots were not pruned from ${snaps}`)} >&2`] : []),
          'else',
          // SQLite (single server): a copy of the database directory and the token its secrets are encrypted with.
          // A copy of a database being written can be torn (a WAL checkpoint between the copy of state.db and of
          // state.db-wal); the k3s maintainers' way is to stop k3s, copy, start it (k3s-io/k3s#1318): the stop
          // checkpoints the WAL into state.db. Its pods keep running (KillMode=process); only the API pauses.
          '  was=$(systemctl is-active k3s || true)',
          `  if [ "$was" = active ]; then systemctl stop k3s; trap 'systemctl start k3s' EXIT; fi`,
          `  mkdir -p ${q(sqlite)}`,
          `  cp -a ${q(DB)} ${q(`${sqlite}/db`)}`,
          `  if [ -f ${q(TOKEN)} ]; then cp -p ${q(TOKEN)} ${q(`${sqlite}/token`)}; fi`,
          `  (cd ${q(sqlite)} && find . -type f ! -name 'SHA256SUMS*' -exec sha256sum {} + > SHA256SUMS.new && mv -f SHA256SUMS.new SHA256SUMS)`,
          `  if [ "$was" = active ]; then trap - EXIT; systemctl start k3s; fi`,
          'fi',
        ],
        `back up the k3s datastore before the hop into ${dir}`,
        { timeoutMs: 10 * 60_000 },
      ),
    ],
    // (SQLite: k3s started again after the copy; with etcd it never stopped.)
    wait: [{ kind: 'service-active', service: 'k3s', timeoutMs: 5 * 60_000 }],
  }
}

/** k3s's release binaries per architecture, as install.sh picks them (setup_verify_arch): `k3s` and its checksums in
 *  sha256sum-amd64.txt on x86_64, `k3s-arm64`, `k3s-armhf` (32-bit ARM), `k3s-s390x`. */
const K3S_ASSETS: readonly ArchAsset[] = [
  { arch: 'amd64', machines: 'amd64|x86_64', asset: 'k3s', sums: 'sha256sum-amd64.txt', images: 'k3s-airgap-images-amd64' },
  { arch: 'arm64', machines: 'arm64|aarch64', asset: 'k3s-arm64', sums: 'sha256sum-arm64.txt', images: 'k3s-airgap-images-arm64' },
  { arch: 's390x', machines: 's390x', asset: 'k3s-s390x', sums: 'sha256sum-s390x.txt', images: 'k3s-airgap-images-s390x' },
  { arch: 'arm', machines: 'arm*', asset: 'k3s-armhf', sums: 'sha256sum-arm.txt', images: 'k3s-airgap-images-arm' },
]

/**
 * k3s's air-gap images (docs.k3s.io installation/airgap, "Manually Deploy Images" and its upgrade): the release's
 * k3s-airgap-images-<arch> archive in agent/images, which k3s imports at start; to upgrade, the new release's archive
 * goes there and the old one goes. It goes into the hop's backup folder instead, for the way back.
 */
const k3sImages = (kept: string): ReleaseImages => ({ dir: '/var/lib/rancher/k3s/agent/images', prefix: 'k3s-airgap-images-', extensions: ['.tar.zst', '.tar.gz', '.tar'], kept: `${kept}/airgap-images` })

function replaceProgram(step: StepOf<'replace-binary'>, arch: string | undefined): ActionProgram {
  const { binary, release, service, source, kept } = step.params
  const verify = [versionCheck(binary, release)]
  if (source.kind === 'installer') {
    const unit = unitFile(service)
    const keptUnit = keptCopy(kept, unit)
    // The binary alone is not the install: install.sh replaces the binary first and the unit last, and one killed
    // in between left a new binary and no unit (a restart then finds no k3s.service).
    verify.push(nodeCheck(['grep', '-q', '^ExecStart=', unit], `${unit} is in place`, { exitCode: 0 }, { okExitCodes: [0, 1, 2] }))
    const install = `curl -sfL ${INSTALLER} | INSTALL_K3S_VERSION=${q(release)} INSTALL_K3S_SKIP_START=true sh -s - "$@"`
    return {
      title: `install k3s ${release}: curl -sfL ${INSTALLER} | INSTALL_K3S_VERSION=${release} INSTALL_K3S_SKIP_START=true sh -s - <the node's own ${service} arguments and K3S_* environment>`,
      verify,
      run: [
        script(
          [
            'set -e',
            // install.sh rewrites the unit and its env file from what it is given: whatever is not given again is
            // lost (an agent's K3S_URL/K3S_TOKEN, a server's flags; facts §3.1). So give it the node's own: the live
            // pair, or, when an earlier install was killed after deleting them, the pair kept before the hop (the
            // unit is written last, so a unit in place means its env file is whole).
            `unit=${q(unit)}`,
            `if [ ! -f "$unit" ]; then if [ -f ${q(keptUnit)} ]; then unit=${q(keptUnit)}; else echo kupgrade: neither ${q(unit)} nor its kept copy ${q(keptUnit)} exists: "the node's k3s arguments are lost; restore the unit, then resume" >&2; exit 1; fi; fi`,
            ...unitArgs('"$unit"'),
            install,
          ],
          `install k3s ${release} with the install script, keeping the node's arguments and environment`,
          { timeoutMs: 10 * 60_000 },
        ),
      ],
    }
  }
  const { fetch, base } = releaseFolder(source, release)
  const images = k3sImages(kept)
  return {
    title: assetTitle('k3s', release, base, K3S_ASSETS, arch, images) ?? `install k3s ${release} from ${base}/: the binary for the node's architecture (uname -m: ${K3S_ASSETS.map((a) => a.asset).join(', ')}), checked against its sha256sum-<arch>.txt${imagesTitle(images, 'k3s-airgap-images-<arch>')}`,
    verify,
    run: [
      script(
        fetchVerifiedBinaryScript({ fetch, base, assets: K3S_ASSETS, tool: 'k3s', binary, release, images }),
        `install the k3s ${release} binary, checksum verified`,
        { timeoutMs: 10 * 60_000 },
      ),
    ],
  }
}

/**
 * The uninstall script install.sh left (facts §3.1): k3s-killall.sh, then the binary, the units and the data go.
 * Verify: neither the unit nor the binary is there. A node without the script (installed by hand, or from a mirror
 * without ever running install.sh) is not guessed at: the run stops and says so.
 */
function resetProgram(step: StepOf<'reset-node'>): ActionProgram {
  const { service, kept } = step.params
  const uninstall = `/usr/local/bin/${service === 'k3s' ? 'k3s-uninstall.sh' : 'k3s-agent-uninstall.sh'}`
  // The uninstall takes /var/lib/rancher/k3s, an air-gapped node's images archives with it: kept first, the node's
  // reinstall still knows to fetch its release's archive (a node that failed before its binary moved had kept none).
  const images = kept ? k3sImages(kept) : undefined
  return {
    title: `${uninstall} (k3s-killall.sh, then the k3s binary, ${service}.service and the node's k3s data removed${images ? `; an air-gapped node's images archives kept in ${images.kept} first` : ''})`,
    verify: [nodeCheck(['sh', '-c', `test ! -e ${q(unitFile(service))} && test ! -e ${q(BINARY)}`], `${unitFile(service)} and ${BINARY} are gone`, { exitCode: 0 }, { okExitCodes: [0, 1] })],
    run: [
      script(
        [
          'set -e',
          `if [ ! -x ${q(uninstall)} ]; then echo kupgrade: ${q(uninstall)} is missing: "this node was not installed by install.sh; reset it by hand, then resume" >&2; exit 1; fi`,
          ...(images ? [`if ls -d ${q(images.dir)}/${q(images.prefix)}* >/dev/null 2>&1; then`, ...keepArchivesLines(images).map((l) => `  ${l}`), 'fi'] : []),
          q(uninstall),
        ],
        `reset the node: ${uninstall}`,
        { timeoutMs: 5 * 60_000 },
      ),
    ],
  }
}

/**
 * A k3s server set to rejoin embedded etcd (docs.k3s.io "High Availability Embedded etcd": a server joins with --server
 * <fixed registration address> and the cluster's token): --cluster-init taken out of its unit (on an empty datastore it
 * would start an etcd cluster of its own), K3S_URL set to the API VIP where the unit names no server to join, and the
 * cluster's token — read from another server's /var/lib/rancher/k3s/server/token, passed on stdin, never shown — as
 * K3S_TOKEN in its env file. install.sh keeps both (the next step re-gives it the unit's arguments and environment).
 * Verify: no --cluster-init, a server to join and a token in the unit or its env file.
 */
function joinServerProgram(step: StepOf<'join-node'>): ActionProgram {
  if (step.params.kind !== 'k3s-server') throw new Error(`k3s driver: join of kind ${step.params.kind}`)
  const { service, server } = step.params
  const unit = unitFile(service)
  const env = `${unit}.env`
  const holds = (pattern: string, describe: string) =>
    nodeCheck(['grep', '-Eq', '--', pattern, unit, env], describe, { exitCode: 0 }, { privileged: true, okExitCodes: [0, 1, 2] })
  return {
    title: `set ${unit} to join ${server} (no --cluster-init) with the cluster's token, read from another server's ${TOKEN} (never shown)`,
    verify: [
      nodeCheck(['grep', '-q', '--', '--cluster-init', unit], `${unit} has no --cluster-init`, { exitCode: 1 }, { privileged: true, okExitCodes: [0, 1, 2] }),
      holds(SERVER_GIVEN, `${service} names a server to join`),
      holds(`^K3S_TOKEN=.|^K3S_TOKEN_FILE=.|--token|^[[:space:]]*'-t'`, `${service} has a token to join with`),
    ],
    run: [
      onNode(['cat', TOKEN], 'read the cluster token on a serving server', { at: 'peer-control-plane', secretOut: 'token', timeoutMs: 60_000 }),
      script(
        [
          'set -e',
          'IFS= read -r token',
          // systemd reads the env file's values quoted: a token it could not quote as it is stops here.
          `case "$token" in K10*::server:?*) ;; *) echo ${q(`kupgrade: the peer's ${TOKEN} holds no k3s server token`)} >&2; exit 1 ;; esac`,
          `case "$token" in *"'"*|*'"'*|*\\\\*) echo ${q('kupgrade: the cluster token has quotes or backslashes the env file cannot hold; rejoin this server by hand')} >&2; exit 1 ;; esac`,
          `unit=${q(unit)} env=${q(env)}`,
          `if [ ! -f "$unit" ]; then echo ${q(`kupgrade: ${unit} is missing: put the server's unit back, then resume`)} >&2; exit 1; fi`,
          // install.sh's layout (one quoted word per line) and a one-line ExecStart alike.
          `sed -i -e ${q(String.raw`/^[[:space:]]*'--cluster-init'[[:space:]]*\\$/d`)} -e ${q(String.raw`s/[[:space:]]'\{0,1\}--cluster-init'\{0,1\}//`)} "$unit"`,
          'touch "$env" && chmod 600 "$env"',
          `{ grep -v '^K3S_TOKEN=' "$env" || true; printf "K3S_TOKEN='%s'\\n" "$token"; } > "$env.kupgrade-new"`,
          `if ! grep -Eq -- ${q(SERVER_GIVEN)} "$unit" "$env"; then printf '%s\\n' ${q(`K3S_URL=${singleQuoteForEnv(server)}`)} >> "$env.kupgrade-new"; fi`,
          'chmod 600 "$env.kupgrade-new" && mv -f "$env.kupgrade-new" "$env"',
        ],
        `set ${service} to join ${server} with the cluster's token`,
        { secretIn: 'token', timeoutMs: 60_000 },
      ),
    ],
  }
}

/** A server to join, in the unit (--server, -s) or its env file (K3S_URL). */
const SERVER_GIVEN = `^K3S_URL=.|--server|^[[:space:]]*'-s'`

/** A value in a systemd env file, single-quoted as install.sh writes them (the plan's URL has no quotes: schema). */
const singleQuoteForEnv = (v: string): string => `'${v}'`

/** A restart cannot be read back on the node (the unit looks the same before and after): it always runs, then waits. */
function restartProgram(step: StepOf<'restart'>): ActionProgram {
  const argv = ['systemctl', 'restart', step.params.service]
  return {
    title: `systemctl daemon-reload, ${argv.join(' ')}`,
    verify: [],
    // install.sh rewrote the unit: systemd must read it again before the restart uses it.
    run: [onNode(['systemctl', 'daemon-reload'], 'reload systemd units after the install'), onNode(argv, `restart ${step.params.service} on the new binary`, { timeoutMs: 5 * 60_000 })],
    wait: [{ kind: 'service-active', service: step.params.service, timeoutMs: 5 * 60_000 }],
  }
}

function restoreProgram(step: StepOf<'restore-binary'>): ActionProgram {
  const { binary, backup, release, service } = step.params
  const dir = backup.slice(0, backup.indexOf('/files/'))
  const restart = ['systemctl', 'restart', service]
  return {
    title: `put the kept k3s ${release} back (${backup} → ${binary}) with its air-gap images where kept, ${restart.join(' ')}`,
    verify: [versionCheck(binary, release)],
    run: [...restoreBinaryCommands({ backup, binary, dir, first: keptImagesBackLines(k3sImages(dir)) }), onNode(restart, `restart ${service} on the restored binary`, { timeoutMs: 5 * 60_000 })],
    wait: [{ kind: 'service-active', service, timeoutMs: 5 * 60_000 }],
  }
}

/**
 * The documented restore of a k3s server (facts §3.1), for the only server of a cluster whose datastore moved: k3s
 * stopped, the kept binary back (checksum checked), then with embedded etcd `k3s server --cluster-reset
 * --cluster-reset-restore-path=<pre-hop snapshot>` run with the unit's own flags and environment (its data dir,
 * token …), or with SQLite the copied database and token put back, and k3s started. Verify: the old binary runs.
 */
function restoreDatastoreProgram(step: StepOf<'restore-datastore'>): ActionProgram {
  if (step.params.kind !== 'k3s') throw new Error(`k3s driver: datastore restore of kind ${step.params.kind}`)
  const { binary, backup, dir, name, release, service } = step.params
  const snaps = `${dir}/etcd-snapshot`
  const sqlite = `${dir}/sqlite`
  const unit = unitFile(service)
  return {
    title: `restore k3s ${release} from the pre-hop backup in ${dir}: systemctl stop ${service}, the kept binary back, k3s server --cluster-reset --cluster-reset-restore-path=${snaps}/${name}-* (SQLite: ${sqlite}), systemctl start ${service}`,
    readsBackup: { release },
    verify: [
      versionCheck(binary, release),
      nodeCheck(['systemctl', 'is-active', service], `${service} is active`, { exitCode: 0 }, { okExitCodes: [0, 3, 4] }),
    ],
    run: [
      onNode(['systemctl', 'stop', service], `stop ${service} before the restore`, { timeoutMs: 5 * 60_000 }),
      ...restoreBinaryCommands({ backup, binary, dir, first: keptImagesBackLines(k3sImages(dir)) }),
      script(
        [
          'set -e',
          `if [ -d ${q(snaps)} ]; then`,
          `  (cd ${q(snaps)} && sha256sum --check --quiet --strict SHA256SUMS)`,
          `  snap=${q(snaps)}/${firstListedFile(`${snaps}/SHA256SUMS`)}`,
          ...unitArgs(q(unit)).map((l) => `  ${l}`),
          `  ${q(binary)} "$@" --cluster-reset --cluster-reset-restore-path="$snap"`,
          `elif [ -d ${q(`${sqlite}/db`)} ]; then`,
          `  (cd ${q(sqlite)} && sha256sum --check --quiet --strict SHA256SUMS)`,
          `  rm -rf ${q(DB)}`,
          `  cp -a ${q(`${sqlite}/db`)} ${q(DB)}`,
          `  if [ -f ${q(`${sqlite}/token`)} ]; then cp -p ${q(`${sqlite}/token`)} ${q(TOKEN)}; fi`,
          'else',
          `  echo kupgrade: no pre-hop backup in ${q(dir)} >&2; exit 1`,
          'fi',
        ],
        `restore the k3s datastore from the pre-hop backup in ${dir}`,
        { timeoutMs: 10 * 60_000 },
      ),
      onNode(['systemctl', 'start', service], `start ${service} on the restored datastore`, { timeoutMs: 5 * 60_000 }),
    ],
    wait: [{ kind: 'service-active', service, timeoutMs: 5 * 60_000 }],
  }
}

/** Stops the service (a cluster-wide restore stops every server first). Verify: it is not active. */
function stopProgram(step: StepOf<'stop-service'>): ActionProgram {
  const { service } = step.params
  return {
    title: `systemctl stop ${service}`,
    verify: [nodeCheck(['systemctl', 'is-active', service], `${service} is not active`, { exitCode: 3 }, { okExitCodes: [0, 3, 4] })],
    run: [onNode(['systemctl', 'stop', service], `stop ${service} before the datastore is restored`, { timeoutMs: 5 * 60_000 })],
  }
}

/**
 * A server beside the one reset from the snapshot (facts §3.1: "Other servers: stop k3s, rm -rf server/db, start"):
 * stopped, its kept binary back where it moved in the hop (one the hop never reached runs the old one already), its
 * datastore moved aside rather than deleted (server/db.kupgrade-<time>: the member's data is the last copy of what the
 * restore threw away), k3s started, so that it joins the restored cluster. Verify: the old binary runs; a stopped
 * server (the restore stopped it) runs this step, one already back skips it.
 */
function rejoinDatastoreProgram(step: StepOf<'rejoin-datastore'>): ActionProgram {
  const { binary, backup, dir, release, service } = step.params
  return {
    title: `rejoin the restored cluster: systemctl stop ${service}, the kept k3s ${release} back where it moved, ${DB} moved aside, systemctl start ${service}`,
    // Its kept binary: put back from the copy kept off the node where the node lost it.
    readsBackup: { release },
    verify: [
      versionCheck(binary, release),
      nodeCheck(['systemctl', 'is-active', service], `${service} is active`, { exitCode: 0 }, { okExitCodes: [0, 3, 4] }),
    ],
    run: [
      onNode(['systemctl', 'stop', service], `stop ${service} before it rejoins`, { timeoutMs: 5 * 60_000 }),
      script(
        [
          'set -e',
          ...keptImagesBackLines(k3sImages(dir)),
          ...keptBinaryBackIfKeptLines({ backup, binary, dir, what: `k3s ${release}`, isRelease: `case "$(${q(binary)} --version)" in ${q(`k3s version ${release} `)}*) true ;; *) false ;; esac` }),
          `if [ -d ${q(DB)} ]; then mv ${q(DB)} ${q(DB)}.kupgrade-$(date +%Y%m%dT%H%M%S); fi`,
        ],
        `put back k3s ${release} and move the stale datastore aside`,
        { timeoutMs: 5 * 60_000 },
      ),
      onNode(['systemctl', 'start', service], `start ${service}: it joins the restored cluster`, { timeoutMs: 5 * 60_000 }),
    ],
    wait: [{ kind: 'service-active', service, timeoutMs: 5 * 60_000 }],
  }
}
