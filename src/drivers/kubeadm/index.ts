import type { Hop } from '../../planner/hops.js'
import type { Step, StepOf } from '../../planner/types.js'
import { parseKubeVersion } from '../../plan/versions.js'
import { backupDir, literal, nodeCheck, OFF_NODE, onNode, script, q } from '../common/commands.js'
import { backupFilesProgram, restoreFilesCommands, restoreFilesProgram } from '../common/files.js'
import { describePerPm, hold, install, packageManagerOf, perPackageManager, repoCheck, switchRepo, unhold, type Pm } from '../common/packages.js'
import type { ActionProgram, Check } from '../program.js'
import type { Driver, DriverNodeFacts, NodeContext, StepTemplate } from '../types.js'

/**
 * kubeadm (facts §3.3, kubeadm-upgrade.md): per minor, the pkgs.k8s.io repository line is switched and the packages
 * unheld first and held again last; the kubeadm package, then `kubeadm upgrade plan` and `kubeadm upgrade apply
 * vX.Y.Z --yes` on the first control-plane node and `kubeadm upgrade node` everywhere else; then the kubelet and
 * kubectl packages, `systemctl daemon-reload` and a kubelet restart. Before the hop: an etcd snapshot on the first
 * control-plane node; on every node the binaries, /etc/kubernetes (static pod manifests, kubeconfigs, PKI) and the
 * kubelet configuration are kept with checksums.
 */
const PACKAGES = ['kubeadm', 'kubelet', 'kubectl']
const MANIFEST = '/etc/kubernetes/manifests/kube-apiserver.yaml'
const KUBELET_CONFIG = '/var/lib/kubelet/config.yaml'
const ETCD_PKI = '/etc/kubernetes/pki/etcd'
const minorOf = (v: string): string => {
  const k = parseKubeVersion(v)
  if (!k) throw new Error(`kubeadm driver: ${v} is not a Kubernetes version`)
  return `v${k.major}.${k.minor}`
}

const ETCD_DATA = '/var/lib/etcd'
const MANIFESTS = '/etc/kubernetes/manifests'
const ADMIN_CONF = '/etc/kubernetes/admin.conf'
const snapshotFile = (dir: string): string => `${dir}/etcd-snapshot.db`
/** The hop's only control-plane node: it takes the snapshot, and a restore there needs no other etcd member. */
const singleControlPlane = (node: NodeContext): boolean => node.role === 'control-plane' && node.firstControlPlane && node.lastControlPlane
const SINGLE_RESTORE = `automatic: the previous packages, then the static pods stopped (manifests moved aside), ${ETCD_DATA} moved aside, etcdutl snapshot restore of the pre-hop snapshot, /etc/kubernetes back from the hop's backup, kubelet restarted, the API at the old version`

/** Binary versions read the same whatever the package manager: `kubeadm version -o short`, `kubelet --version`. */
const versionCheck = (pkg: string, version: string): Check => {
  const [argv, prefix] =
    pkg === 'kubeadm' ? [['kubeadm', 'version', '-o', 'short'], ''] : pkg === 'kubelet' ? [['kubelet', '--version'], 'Kubernetes '] : [['kubectl', 'version', '--client'], 'Client Version: ']
  return nodeCheck(argv, `${argv.join(' ')} reports ${version}`, { stdoutMatches: `^${literal(prefix + version)}$` }, { okExitCodes: [0, 1, 127] })
}

export const kubeadm: Driver = {
  name: 'kubeadm',
  actions: ['backup', 'backup-files', 'switch-repo', 'unhold-packages', 'upgrade-package', 'upgrade-control-plane', 'restart', 'hold-packages', 'downgrade-packages', 'restore-datastore', 'restore-files', 'reset-node', 'join-node'],
  serviceName: () => 'kubelet',
  planBackup: (hop: Hop): StepTemplate[] => {
    const dir = backupDir(hop.from)
    return [{ action: 'backup', params: { kind: 'kubeadm-etcd', dir, file: snapshotFile(dir) } }]
  },
  planNodeUpgrade: (hop: Hop, node: NodeContext): StepTemplate[] => {
    const dir = backupDir(hop.from)
    const version = hop.to.kubernetes
    const from = hop.from
    const minor = minorOf(version)
    const fromMinor = minorOf(from)
    // The plan pins a package revision only through spec.target.kubeadm; otherwise the docs' `1.30.4-*` applies.
    const exact = hop.to.package !== undefined && hop.to.package !== `${version.slice(1)}-1.1` ? { package: hop.to.package } : {}
    const paths = ['/usr/bin/kubeadm', '/usr/bin/kubelet', '/usr/bin/kubectl', ...(node.role === 'control-plane' ? ['/etc/kubernetes'] : []), KUBELET_CONFIG]
    const downgrade = (packages: string[]) => ({ action: 'downgrade-packages' as const, params: { packages, version: from, minor: fromMinor } })
    const steps: StepTemplate[] = [{ action: 'backup-files', params: { dir, paths, release: from } }]
    if (minor !== fromMinor) steps.push({ action: 'switch-repo', params: { minor, from: fromMinor }, undo: { action: 'switch-repo', params: { minor: fromMinor, from: minor } } })
    steps.push(
      { action: 'unhold-packages', params: { packages: PACKAGES }, undo: { action: 'hold-packages', params: { packages: PACKAGES } } },
      { action: 'upgrade-package', params: { packages: ['kubeadm'], version, ...exact }, undo: downgrade(['kubeadm']) },
      node.role === 'control-plane'
        ? {
            action: 'upgrade-control-plane',
            params: { command: node.firstControlPlane ? 'apply' : 'node', version, last: node.lastControlPlane },
            // The only control-plane node holds the hop's snapshot and no other member has to rejoin: it is put back
            // from it. With several, the restore is the whole etcd cluster's, reported with the procedure.
            undo: singleControlPlane(node)
              ? { action: 'restore-datastore', params: { kind: 'kubeadm', dir, snapshot: snapshotFile(dir), release: from } }
              : { irreversible: `the control plane moves to ${version}: no downgrade; rollback restores the pre-hop etcd snapshot and ${dir}/files/etc/kubernetes (snapshot-restore)` },
          }
        : { action: 'upgrade-control-plane', params: { command: 'node', version, last: false }, undo: { action: 'restore-files', params: { dir, paths: [KUBELET_CONFIG] } } },
      { action: 'upgrade-package', params: { packages: ['kubelet', 'kubectl'], version, ...exact }, undo: downgrade(['kubelet', 'kubectl']) },
      { action: 'restart', params: { service: 'kubelet' } },
      { action: 'hold-packages', params: { packages: PACKAGES }, undo: { action: 'unhold-packages', params: { packages: PACKAGES } } },
    )
    return steps
  },
  rollbackPath: (node) =>
    node.role === 'worker'
      ? { path: 'previous-version', detail: 'previous kubeadm/kubelet/kubectl packages from the previous minor repository, kubelet configuration back, restart kubelet, Ready at the old version' }
      : singleControlPlane(node)
        ? { path: 'snapshot-restore', detail: SINGLE_RESTORE }
      : node.firstControlPlane
        ? { path: 'kubeadm-backup', detail: 'a failed kubeadm upgrade apply restores its own backup (/etc/kubernetes/tmp/kubeadm-backup-*); once the control plane moved: etcdutl snapshot restore of the pre-hop snapshot plus the /etc/kubernetes backup' }
        : { path: 'snapshot-restore', detail: 'etcdutl snapshot restore of the pre-hop snapshot plus the /etc/kubernetes backup, then the previous packages' },
  planRebuild: (hop, node) => {
    if (node.role === 'control-plane') {
      return { procedure: 'not automatic for a kubeadm control-plane node: kubeadm reset -f on it (it leaves etcd), kubectl delete node, kubeadm init phase upload-certs --upload-certs on another, then kubeadm join --control-plane --certificate-key <key> (facts §3.3)' }
    }
    const from = hop.from
    return {
      reset: [{ action: 'reset-node', params: { service: 'kubelet' } }],
      rejoin: [
        // The packages of the version the node ran before the hop (from that minor's repository), held again, then a
        // join with a fresh token: the node gets its kubelet configuration from the cluster, as at its first join.
        { action: 'unhold-packages', params: { packages: PACKAGES } },
        { action: 'downgrade-packages', params: { packages: PACKAGES, version: from, minor: minorOf(from) } },
        { action: 'hold-packages', params: { packages: PACKAGES } },
        { action: 'join-node', params: { kind: 'kubeadm' } },
      ],
      detail: `kubeadm reset -f, kubectl delete node, kubeadm/kubelet/kubectl ${from} (held), kubeadm token create --print-join-command on the first control-plane node and that kubeadm join on the node, Ready at ${from}`,
    }
  },
  programFor: (step: Step, facts?: DriverNodeFacts): ActionProgram => {
    const pm = (): Pm | undefined => packageManagerOf(facts?.packageManager, `node ${step.node ?? '?'}`)
    switch (step.action) {
      case 'backup': return etcdSnapshotProgram(step)
      case 'backup-files': return backupFilesProgram(step, { argv: (copies) => [`${copies}/usr/bin/kubeadm`, 'version', '-o', 'short'], expect: step.params.release })
      case 'switch-repo': return switchRepoProgram(step, pm())
      case 'unhold-packages': return holdProgram(step, pm(), false)
      case 'hold-packages': return holdProgram(step, pm(), true)
      case 'upgrade-package': return packagesProgram(step.params.packages, step.params.version, pm(), step.params.package)
      case 'downgrade-packages': return downgradeProgram(step, pm())
      case 'upgrade-control-plane': return controlPlaneProgram(step)
      case 'restart': return restartKubelet()
      case 'restore-datastore': return restoreControlPlaneProgram(step)
      case 'restore-files': return restoreKubeadmFiles(step)
      case 'reset-node': return resetProgram()
      case 'join-node': return joinProgram()
      default: throw new Error(`kubeadm driver: no program for action ${step.action}`)
    }
  },
}

function etcdSnapshotProgram(step: StepOf<'backup'>): ActionProgram {
  if (step.params.kind !== 'kubeadm-etcd') throw new Error(`kubeadm driver: backup of kind ${step.params.kind}`)
  const { dir, file } = step.params
  // Any client certificate signed by the etcd CA will do; kubeadm's healthcheck-client is one (facts §3.3).
  const save = [
    'env', 'ETCDCTL_API=3', 'etcdctl', '--endpoints=https://127.0.0.1:2379',
    `--cacert=${ETCD_PKI}/ca.crt`, `--cert=${ETCD_PKI}/healthcheck-client.crt`, `--key=${ETCD_PKI}/healthcheck-client.key`,
    'snapshot', 'save', file,
  ]
  return {
    title: `etcd snapshot: ${save.slice(2).join(' ')}; copied off the node to ${OFF_NODE}`,
    offNode: { sums: [`${file}.sha256`] },
    verify: [nodeCheck(['sha256sum', '--check', '--quiet', '--strict', `${file}.sha256`], `a checksummed etcd snapshot exists at ${file}`, { exitCode: 0 }, { privileged: true, okExitCodes: [0, 1] })],
    run: [
      onNode(['install', '-d', '-m', '0700', dir], `create the backup directory ${dir}`),
      onNode(save, 'etcd snapshot before the hop', { timeoutMs: 10 * 60_000 }),
      script([`sha256sum ${q(file)} > ${q(`${file}.sha256.new`)}`, `mv -f ${q(`${file}.sha256.new`)} ${q(`${file}.sha256`)}`], `record the checksum of ${file}`),
    ],
  }
}

function switchRepoProgram(step: StepOf<'switch-repo'>, pm: Pm | undefined): ActionProgram {
  const build = (p: Pm) => switchRepo(p, step.params.minor)
  return {
    title: `point the Kubernetes package repository at ${step.params.minor}: ${describePerPm(pm, build)}`,
    verify: [repoCheck(pm, step.params.minor)],
    run: perPackageManager(pm, build, `switch the pkgs.k8s.io repository from ${step.params.from} to ${step.params.minor}`),
  }
}

/** apt holds packages with apt-mark; dnf/yum keep them out through the repository's exclude= line (nothing to do). */
function holdProgram(step: StepOf<'hold-packages'> | StepOf<'unhold-packages'>, pm: Pm | undefined, on: boolean): ActionProgram {
  const { packages } = step.params
  const build = (p: Pm): string[][] => (p === 'apt' ? [on ? hold(packages) : unhold(packages)] : [])
  const verify: Check[] =
    pm === 'apt'
      ? packages.map((p) => nodeCheck(['apt-mark', 'showhold'], `${p} is ${on ? '' : 'not '}held`, on ? { stdoutMatches: `^${literal(p)}$` } : { stdoutExcludes: p }))
      : []
  return {
    title: `${on ? 'hold' : 'unhold'} ${packages.join(' ')}: ${describePerPm(pm, build)}`,
    verify,
    run: pm === 'dnf' || pm === 'yum' ? [] : perPackageManager(pm, build, `${on ? 'hold' : 'unhold'} the Kubernetes packages`),
  }
}

function packagesProgram(packages: string[], version: string, pm: Pm | undefined, exact?: string): ActionProgram {
  // apt-get update first: a repository switch that was already done (verify skipped it) may have left old lists.
  const build = (p: Pm) => [...(p === 'apt' ? [['apt-get', 'update']] : []), install(p, packages, version, exact)]
  return {
    title: `${packages.join(' and ')} ${version}: ${describePerPm(pm, (p) => [install(p, packages, version, exact)])}`,
    verify: packages.map((p) => versionCheck(p, version)),
    run: perPackageManager(pm, build, `install ${packages.join(', ')} ${version}`, 10 * 60_000),
  }
}

/**
 * Undo of a package upgrade: the previous minor's repository again, and the previous versions, downgrades allowed.
 * The kubelet package does not restart the kubelet (kubeadm's upgrade docs restart it by hand), and the forward
 * restart has nothing to undo: so a running kubelet put back is restarted here, or it runs the newer version on.
 * Only a running one (try-restart): a rebuilt node's kubelet has no configuration until `kubeadm join` gives it one.
 */
function downgradeProgram(step: StepOf<'downgrade-packages'>, pm: Pm | undefined): ActionProgram {
  const { packages, version, minor } = step.params
  const build = (p: Pm) => [...switchRepo(p, minor), install(p, packages, version, undefined, true)]
  const restart = packages.includes('kubelet') ? [['systemctl', 'daemon-reload'], ['systemctl', 'try-restart', 'kubelet']] : []
  return {
    title: `previous ${packages.join(' and ')} ${version}: ${describePerPm(pm, build)}${restart.map((c) => `; ${c.join(' ')}`).join('')}`,
    verify: packages.map((p) => versionCheck(p, version)),
    run: [
      ...perPackageManager(pm, build, `put ${packages.join(', ')} ${version} back`, 10 * 60_000),
      ...restart.map((c) => onNode(c, c[1] === 'daemon-reload' ? 'reload unit files the kubelet package may have changed' : 'restart a running kubelet on the version its package now holds', { timeoutMs: 5 * 60_000 })),
    ],
  }
}

function controlPlaneProgram(step: StepOf<'upgrade-control-plane'>): ActionProgram {
  const { command, version, last } = step.params
  // The static pod manifest names the version the control-plane instance runs; kubeadm writes it 0600.
  const moved = nodeCheck(['grep', '-qE', `image: .*/kube-apiserver:${literal(version)}$`, MANIFEST], `${MANIFEST} runs kube-apiserver ${version}`, { exitCode: 0 }, { privileged: true, okExitCodes: [0, 1, 2] })
  if (command === 'apply') {
    const apply = ['kubeadm', 'upgrade', 'apply', version, '--yes']
    return {
      title: `kubeadm upgrade plan, then ${apply.join(' ')}`,
      verify: [moved],
      run: [
        onNode(['kubeadm', 'upgrade', 'plan'], 'kubeadm upgrade plan: kubeadm checks the cluster and shows what it will change', { timeoutMs: 5 * 60_000 }),
        onNode(apply, `upgrade the control plane to ${version}`, { timeoutMs: 20 * 60_000 }),
      ],
    }
  }
  const node = ['kubeadm', 'upgrade', 'node']
  const isCp = step.role === 'control-plane'
  return {
    title: `${node.join(' ')}${last ? ' (last control-plane node: kubeadm upgrades the kube-proxy and CoreDNS addons now)' : isCp ? '' : ' (kubelet configuration)'}`,
    // On a worker `upgrade node` only rewrites the kubelet configuration, which carries no version: it always runs.
    verify: isCp ? [moved] : [],
    run: [onNode(node, isCp ? `upgrade this control-plane instance to ${version}` : 'upgrade the kubelet configuration', { timeoutMs: 20 * 60_000 })],
  }
}

const KUBELET_KUBECONFIG = '/etc/kubernetes/kubelet.conf'

/** `kubeadm reset -f` (facts §3.3 "Reset and rejoin"; -f: no prompt over SSH). Verify: the kubelet's kubeconfig is gone. */
function resetProgram(): ActionProgram {
  const reset = ['kubeadm', 'reset', '-f']
  return {
    title: reset.join(' '),
    verify: [nodeCheck(['test', '!', '-e', KUBELET_KUBECONFIG], `${KUBELET_KUBECONFIG} is gone`, { exitCode: 0 }, { privileged: true, okExitCodes: [0, 1] })],
    run: [onNode(reset, 'reset the node: kubeadm reset removes what kubeadm join set up', { timeoutMs: 5 * 60_000 })],
  }
}

/**
 * A worker joins again (facts §3.3 "Rejoin a worker"): `kubeadm token create --print-join-command` on the first
 * control-plane node, and that command on the node. The command carries a secret: it goes from one node to the other
 * on stdin, is never shown, and only its documented shape is run — as words, never through a shell's evaluation.
 */
function joinProgram(): ActionProgram {
  const create = ['kubeadm', 'token', 'create', '--print-join-command', '--ttl', '15m']
  const join = [
    'set -e',
    'IFS= read -r line',
    'case "$line" in',
    '  "kubeadm join "*" --token "*" --discovery-token-ca-cert-hash sha256:"*) ;;',
    `  *) echo ${q('kupgrade: kubeadm token create --print-join-command printed no join command')} >&2; exit 1 ;;`,
    'esac',
    'set -f',
    'set -- $line',
    '"$@"',
  ]
  return {
    title: `${create.join(' ')} on the first control-plane node, then that kubeadm join on the node`,
    verify: [nodeCheck(['test', '-s', KUBELET_KUBECONFIG], `${KUBELET_KUBECONFIG} is in place (the node joined)`, { exitCode: 0 }, { privileged: true, okExitCodes: [0, 1] })],
    run: [
      onNode(create, 'make a join token on the first control-plane node', { at: 'first-control-plane', secretOut: 'join', timeoutMs: 2 * 60_000 }),
      script(join, 'join the cluster with the fresh token', { secretIn: 'join', timeoutMs: 10 * 60_000 }),
    ],
    wait: [{ kind: 'service-active', service: 'kubelet', timeoutMs: 5 * 60_000 }],
  }
}

/**
 * A kubeadm node's kept files back. The kubelet reads config.yaml only when it starts, and in a rollback the kubelet
 * package goes back (and restarts it) before the configuration `kubeadm upgrade node` wrote does: so a running
 * kubelet is restarted once more, on the configuration put back, or it would run on the newer one until its next start.
 */
function restoreKubeadmFiles(step: StepOf<'restore-files'>): ActionProgram {
  const p = restoreFilesProgram(step)
  if (!step.params.paths.includes(KUBELET_CONFIG)) return p
  const restart = ['systemctl', 'try-restart', 'kubelet']
  return { ...p, title: `${p.title}; ${restart.join(' ')}`, run: [...p.run, onNode(restart, 'restart a running kubelet on the configuration put back (it reads it only at start)', { timeoutMs: 5 * 60_000 })] }
}

function restartKubelet(): ActionProgram {
  const reload = ['systemctl', 'daemon-reload']
  const restart = ['systemctl', 'restart', 'kubelet']
  return {
    title: `${reload.join(' ')}; ${restart.join(' ')}`,
    verify: [],
    run: [onNode(reload, 'reload unit files the kubelet package may have changed'), onNode(restart, 'restart the kubelet on the new version', { timeoutMs: 5 * 60_000 })],
    wait: [{ kind: 'service-active', service: 'kubelet', timeoutMs: 5 * 60_000 }],
  }
}

/**
 * The documented restore of a kubeadm control plane (facts §3.3; kubernetes.io "Restoring an etcd cluster": stop the
 * API servers, restore etcd, start them), for the only control-plane node of a cluster whose control plane moved: the
 * static pods stopped by moving their manifests aside (the kubelet stops a pod whose manifest is gone), the API
 * awaited down, /var/lib/etcd moved aside (etcdutl refuses a data dir that is not empty), `etcdutl snapshot restore`
 * of the hop's checksummed snapshot, /etc/kubernetes back from the hop's backup (the old manifests, which the kubelet
 * starts), kubelet restarted. It runs after the previous packages went back (the undo runs in reverse). Verify: the
 * API answers at the old version.
 */
function restoreControlPlaneProgram(step: StepOf<'restore-datastore'>): ActionProgram {
  if (step.params.kind !== 'kubeadm') throw new Error(`kubeadm driver: datastore restore of kind ${step.params.kind}`)
  const { dir, snapshot, release } = step.params
  const aside = `${MANIFESTS}.kupgrade-restore`
  const api = ['kubectl', `--kubeconfig=${ADMIN_CONF}`, '--request-timeout=5s', 'get', '--raw', '/version']
  return {
    title: `restore the control plane at ${release} from the pre-hop backup in ${dir}: static pods stopped (manifests moved to ${aside}), ${ETCD_DATA} moved aside, etcdutl snapshot restore ${snapshot} --data-dir ${ETCD_DATA}, /etc/kubernetes back from ${dir}/files, systemctl restart kubelet`,
    readsBackup: { release },
    verify: [nodeCheck(api, `the API answers at ${release}`, { stdoutMatches: `"gitVersion": "${literal(release)}"` }, { privileged: true, okExitCodes: [0, 1] })],
    run: [
      // The snapshot first: a restore without one must stop before anything is stopped.
      onNode(['sha256sum', '--check', '--quiet', '--strict', `${snapshot}.sha256`], `check the pre-hop etcd snapshot ${snapshot}`),
      script(['set -e', `mkdir -p ${q(aside)}`, `for f in ${q(MANIFESTS)}/*.yaml; do if [ -e "$f" ]; then mv -f "$f" ${q(aside)}/; fi; done`], `stop the static control plane: its manifests moved to ${aside}`),
      script(
        [
          'for i in $(seq 1 120); do',
          `  if ! ${api.map(q).join(' ')} >/dev/null 2>&1; then exit 0; fi`,
          '  sleep 1',
          'done',
          `echo kupgrade: the API still answers 120 s after the manifests moved to ${q(aside)}: "the kubelet did not stop the static pods; stop them (crictl), then resume" >&2`,
          'exit 1',
        ],
        'wait until the kubelet stopped the apiserver',
        { timeoutMs: 3 * 60_000 },
      ),
      script(
        ['set -e', `if [ -e ${q(ETCD_DATA)} ]; then mv ${q(ETCD_DATA)} ${q(ETCD_DATA)}.kupgrade-$(date +%s); fi`, `etcdutl snapshot restore ${q(snapshot)} --data-dir ${q(ETCD_DATA)}`],
        `etcdutl snapshot restore of the pre-hop snapshot into a fresh ${ETCD_DATA}`,
        { timeoutMs: 10 * 60_000 },
      ),
      // The kept /etc/kubernetes holds the manifests at the old version: the kubelet starts them.
      ...restoreFilesCommands({ dir, paths: ['/etc/kubernetes'] }),
      onNode(['rm', '-rf', aside], `drop the moved-aside manifests ${aside}`),
      onNode(['systemctl', 'daemon-reload'], 'reload unit files the previous kubelet package may have changed'),
      onNode(['systemctl', 'restart', 'kubelet'], 'restart the kubelet: it runs the restored static control plane', { timeoutMs: 5 * 60_000 }),
      // The apiserver's container starts after the kubelet: its first answer can take a minute.
      script(
        [
          'for i in $(seq 1 300); do',
          `  if ${api.map(q).join(' ')} 2>/dev/null | grep -qF ${q(`"gitVersion": "${release}"`)}; then exit 0; fi`,
          '  sleep 1',
          'done',
          `echo kupgrade: the API did not come back at ${q(release)} within 300 s of the restore: "see journalctl -u kubelet and /var/log/pods/kube-system_kube-apiserver-*" >&2`,
          'exit 1',
        ],
        `wait until the API answers at ${release}`,
        { timeoutMs: 6 * 60_000 },
      ),
    ],
    wait: [{ kind: 'service-active', service: 'kubelet', timeoutMs: 5 * 60_000 }],
  }
}
