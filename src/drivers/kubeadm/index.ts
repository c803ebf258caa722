import type { Hop } from '../../planner/hops.js'
import type { EtcdMemberRestore, Step, StepOf } from '../../planner/types.js'
import { parseKubeVersion } from '../../plan/versions.js'
import { backupDir, literal, nodeCheck, OFF_NODE, onNode, script, q, SUMS } from '../common/commands.js'
import { backupFilesProgram, keptCopy, putBackLines, restoreFilesCommands, restoreFilesProgram } from '../common/files.js'
import { describePerPm, hold, install, packageManagerOf, perPackageManager, repoCheck, repoSwitchableScript, switchRepo, unhold, type Pm } from '../common/packages.js'
import type { ActionProgram, Check } from '../program.js'
import type { ClusterRestoreTemplates, ControlPlaneNode, Driver, DriverNodeFacts, NodeContext, StepTemplate } from '../types.js'

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
const CLUSTER_RESTORE = `automatic, every control-plane node at once: the first node's pre-hop etcd snapshot on each (its copy kept off the node) and each node's etcd manifest (kept before the hop, else its own) naming it as the plan does; the static pods stopped on every node (manifests moved aside), the API awaited down; on each, ${ETCD_DATA} moved aside and etcdutl snapshot restore of that snapshot with its own --name and peer URL and the same --initial-cluster and --initial-cluster-token, /etc/kubernetes back from the hop's backup, kubelet restarted; the API awaited at the old version; then on each the previous packages, held`
/** etcd's peer URL of a control-plane node as kubeadm advertises it: its address, port 2380. */
const peerUrlOf = (host: string): string => `https://${host.includes(':') ? `[${host}]` : host}:2380`

/** Binary versions read the same whatever the package manager: `kubeadm version -o short`, `kubelet --version`. */
const versionCheck = (pkg: string, version: string): Check => {
  const [argv, prefix] =
    pkg === 'kubeadm' ? [['kubeadm', 'version', '-o', 'short'], ''] : pkg === 'kubelet' ? [['kubelet', '--version'], 'Kubernetes '] : [['kubectl', 'version', '--client'], 'Client Version: ']
  return nodeCheck(argv, `${argv.join(' ')} reports ${version}`, { stdoutMatches: `^${literal(prefix + version)}$` }, { okExitCodes: [0, 1, 127] })
}

export const kubeadm: Driver = {
  name: 'kubeadm',
  actions: ['backup', 'backup-files', 'switch-repo', 'unhold-packages', 'upgrade-package', 'upgrade-control-plane', 'restart', 'hold-packages', 'downgrade-packages', 'restore-datastore', 'restore-files', 'reset-node', 'join-node', 'prepare-etcd-restore', 'stop-control-plane'],
  serviceName: () => 'kubelet',
  planBackup: (hop: Hop): StepTemplate[] => {
    const dir = backupDir(hop.from)
    return [{ action: 'backup', params: { kind: 'kubeadm-etcd', dir, file: snapshotFile(dir) } }]
  },
  repositoryCheck: (pm) => {
    try {
      return repoSwitchableScript(packageManagerOf(pm, 'the Kubernetes package repository'))
    } catch (err) {
      return [`echo ${q(`kupgrade: ${(err as Error).message}`)} >&2`, 'exit 1']
    }
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
    const steps: StepTemplate[] = [{ action: 'backup-files', params: { dir, paths, release: node.foundAt ?? from } }]
    if (minor !== fromMinor) steps.push({ action: 'switch-repo', params: { minor, from: fromMinor }, undo: { action: 'switch-repo', params: { minor: fromMinor, from: minor } } })
    steps.push(
      { action: 'unhold-packages', params: { packages: PACKAGES }, undo: { action: 'hold-packages', params: { packages: PACKAGES } } },
      { action: 'upgrade-package', params: { packages: ['kubeadm'], version, ...exact }, undo: downgrade(['kubeadm']) },
      node.role === 'control-plane'
        ? {
            action: 'upgrade-control-plane',
            params: { command: node.firstControlPlane ? 'apply' : 'node', version, last: node.lastControlPlane },
            // The only control-plane node holds the hop's snapshot and no other member has to rejoin: it is put back
            // from it. With several, the restore is the whole etcd cluster's (planClusterRestore), which puts every
            // node's /etc/kubernetes back too: this undo then finds it there.
            undo: singleControlPlane(node)
              ? { action: 'restore-datastore', params: { kind: 'kubeadm', dir, snapshot: snapshotFile(dir), release: from } }
              : { action: 'restore-files', params: { dir, paths: ['/etc/kubernetes'] } },
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
      : { path: 'snapshot-restore', detail: singleControlPlane(node) ? SINGLE_RESTORE : CLUSTER_RESTORE },
  planClusterRestore: (hop: Hop, controlPlanes: readonly ControlPlaneNode[]): ClusterRestoreTemplates | undefined => {
    if (controlPlanes.length < 2) return undefined
    const dir = backupDir(hop.from)
    const snapshot = snapshotFile(dir)
    const first = controlPlanes[0]!
    const initialCluster = controlPlanes.map((c) => `${c.name}=${peerUrlOf(c.host)}`).join(',')
    // A token of its own: the restored members make a new etcd cluster, which a member still holding the old data
    // (one the restore missed) cannot join by mistake (etcd "Disaster recovery").
    const token = `kupgrade-restore-${hop.from}`
    const all = controlPlanes.map((_, i) => i)
    // kubernetes.io "Restoring an etcd cluster": stop every API server, restore every etcd member, start them. Every
    // member checked first, so that a wrong name stops the restore before anything is stopped; the first node (which
    // took the snapshot and whose API answers longest) stopped last, and the API awaited down after it.
    return {
      steps: [
        ...all.map((i) => ({ controlPlane: i, template: { action: 'prepare-etcd-restore' as const, params: { kind: 'kubeadm' as const, dir, snapshot, release: hop.from, member: controlPlanes[i]!.name, peerURL: peerUrlOf(controlPlanes[i]!.host), ...(i > 0 ? { snapshotFrom: first.name } : {}) } } })),
        ...[...all.slice(1).reverse(), 0].map((i) => ({ controlPlane: i, template: { action: 'stop-control-plane' as const, params: { kind: 'kubeadm' as const, last: i === 0 } } })),
        ...all.map((i) => ({
          controlPlane: i,
          template: { action: 'restore-datastore' as const, params: { kind: 'kubeadm' as const, dir, snapshot, release: hop.from, member: { name: controlPlanes[i]!.name, peerURL: peerUrlOf(controlPlanes[i]!.host), initialCluster, token, last: i === all.length - 1 } } },
        })),
        // The packages of the old version, held again, on every node: the kubelet must not stay newer than the API.
        ...all.map((i) => ({ controlPlane: i, template: { action: 'downgrade-packages' as const, params: { packages: PACKAGES, version: hop.from, minor: minorOf(hop.from) } } })),
        ...all.map((i) => ({ controlPlane: i, template: { action: 'hold-packages' as const, params: { packages: PACKAGES } } })),
      ],
      detail: CLUSTER_RESTORE,
    }
  },
  planRebuild: (hop, node, _install, version = 'previous') => {
    const from = hop.from
    if (node.role === 'control-plane' && singleControlPlane(node)) return { procedure: 'not automatic for the only kubeadm control-plane node: restore it from the pre-hop etcd snapshot (kupgrade rollback)' }
    if (node.role === 'control-plane' && (node.controlPlanes ?? 0) < 3) {
      return { procedure: 'not automatic for a kubeadm control plane of two: while the node rejoins, its new etcd member and the other make two members of which one runs, no quorum; add a third control-plane node first, or by hand: kubeadm reset -f on it (it leaves etcd), kubectl delete node, kubeadm init phase upload-certs --upload-certs on the other, kubeadm join --control-plane --certificate-key <key> (facts §3.3)' }
    }
    const reset: StepTemplate[] = [{ action: 'reset-node', params: { service: 'kubelet' } }]
    // The packages of the version the node ran before the hop (from that minor's repository), held again, then a join
    // with a fresh token: the node gets its kubelet configuration from the cluster, as at its first join.
    const previous = (kind: 'kubeadm' | 'kubeadm-control-plane'): StepTemplate[] => [
      { action: 'unhold-packages', params: { packages: PACKAGES } },
      { action: 'downgrade-packages', params: { packages: PACKAGES, version: from, minor: minorOf(from) } },
      { action: 'hold-packages', params: { packages: PACKAGES } },
      { action: 'join-node', params: { kind } },
    ]
    const workerJoin = 'kubeadm token create --print-join-command on the first control-plane node and that kubeadm join on the node'
    if (node.role === 'control-plane') {
      // kubernetes.io "Rejoin a control-plane node" (facts §3.3): kubeadm reset removes its stacked etcd member through
      // the cluster; the packages it ran before the hop; the shared certificates uploaded under a fresh key on another
      // control-plane node, and a control-plane join with it. The static pods come at the version the cluster's
      // kubeadm-config names (kubeadm join takes it from there), the kubelet at the old one.
      return {
        reset,
        rejoin: previous('kubeadm-control-plane'),
        detail: `kubeadm reset -f (its etcd member removed), kubectl delete node, kubeadm/kubelet/kubectl ${from} (held), kubeadm init phase upload-certs --upload-certs and kubeadm token create --print-join-command --certificate-key on another control-plane node, that kubeadm join --control-plane on the node (its static pods at the cluster's version, a new etcd member), Ready at ${from}`,
      }
    }
    if (version === 'target') {
      // Rolled forward on a clean machine: the target's repository and packages (workers come after the whole control
      // plane moved, so the kubelet is never newer than an API server), held, then the join.
      const to = hop.to.kubernetes
      const exact = hop.to.package !== undefined && hop.to.package !== `${to.slice(1)}-1.1` ? { package: hop.to.package } : {}
      return {
        reset,
        rejoin: [
          ...(minorOf(to) !== minorOf(from) ? [{ action: 'switch-repo' as const, params: { minor: minorOf(to), from: minorOf(from) } }] : []),
          { action: 'unhold-packages', params: { packages: PACKAGES } },
          { action: 'upgrade-package', params: { packages: PACKAGES, version: to, ...exact } },
          { action: 'hold-packages', params: { packages: PACKAGES } },
          { action: 'join-node', params: { kind: 'kubeadm' } },
        ],
        detail: `kubeadm reset -f, kubectl delete node, kubeadm/kubelet/kubectl ${to} (the hop's target: strategy.rebuild.version; held), ${workerJoin}, Ready at ${to}`,
        readyAt: hop.to.kubelet,
      }
    }
    return { reset, rejoin: previous('kubeadm'), detail: `kubeadm reset -f, kubectl delete node, kubeadm/kubelet/kubectl ${from} (held), ${workerJoin}, Ready at ${from}` }
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
      case 'restore-datastore': return step.params.kind === 'kubeadm' && step.params.member ? restoreMemberProgram(step, step.params.member) : restoreControlPlaneProgram(step)
      case 'prepare-etcd-restore': return prepareRestoreProgram(step)
      case 'stop-control-plane': return stopControlPlaneProgram(step)
      case 'restore-files': return restoreKubeadmFiles(step)
      case 'reset-node': return resetProgram()
      case 'join-node': return step.params.kind === 'kubeadm-control-plane' ? joinControlPlaneProgram(step) : joinProgram()
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
      // An earlier run's checksum goes first: a snapshot cut off halfway must not verify against it on a resume.
      onNode(['rm', '-f', `${file}.sha256`], `forget the checksum of an earlier snapshot in ${dir}`),
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
  // A failed `kubeadm upgrade plan` or `upgrade apply`/`node` that stopped at its preflight changed nothing, and one
  // that failed upgrading the static pods put its own backup of them (and of etcd's data) back ("kubeadm has tried to
  // recover everything into the earlier state"): the manifests then are byte for byte those kept before the hop.
  const kept = step.undo !== undefined && 'action' in step.undo && 'dir' in step.undo.params ? `${step.undo.params.dir}/files${MANIFESTS}` : undefined
  const untouched = step.role === 'control-plane' && kept
    ? { untouched: [nodeCheck(['diff', '-r', '-q', kept, MANIFESTS], `the static pod manifests in ${MANIFESTS} are those kept before the hop`, { exitCode: 0 }, { privileged: true, okExitCodes: [0, 1, 2] })] }
    : {}
  if (command === 'apply') {
    const apply = ['kubeadm', 'upgrade', 'apply', version, '--yes']
    return {
      ...untouched,
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
    ...untouched,
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
 * A control-plane node joins again (facts §3.3 "Rejoin a control-plane node"): on another control-plane node, the
 * shared certificates uploaded under a fresh certificate key and a join command made with it; on the node, that
 * command. Key and token are secrets: the key never leaves the other node's shell, the command goes on stdin and only
 * its documented shape runs. Done once the kubelet runs and another control-plane node's etcd lists the node.
 */
function joinControlPlaneProgram(step: StepOf<'join-node'>): ActionProgram {
  if (!step.node) throw new Error('kubeadm driver: a control-plane join without a node')
  const upload = ['kubeadm', 'init', 'phase', 'upload-certs', '--upload-certs']
  const create = ['kubeadm', 'token', 'create', '--print-join-command', '--ttl', '15m', '--certificate-key']
  const make = [
    'set -e',
    // upload-certs prints the key last, alone on its line. Not through a pipe, so that set -e sees it fail (sh has no
    // pipefail).
    `out=$(${upload.join(' ')})`,
    'key=$(printf \'%s\\n\' "$out" | tail -n 1)',
    'case "$key" in',
    `  *[!0-9a-f]*|"") echo ${q('kupgrade: kubeadm init phase upload-certs printed no certificate key')} >&2; exit 1 ;;`,
    'esac',
    `[ \${#key} -eq 64 ] || { echo ${q('kupgrade: kubeadm init phase upload-certs printed no certificate key')} >&2; exit 1; }`,
    `${create.join(' ')} "$key"`,
  ]
  const join = [
    'set -e',
    'IFS= read -r line',
    'case "$line" in',
    '  "kubeadm join "*" --token "*" --discovery-token-ca-cert-hash sha256:"*" --control-plane --certificate-key "*) ;;',
    `  *) echo ${q('kupgrade: kubeadm token create --print-join-command --certificate-key printed no control-plane join command')} >&2; exit 1 ;;`,
    'esac',
    'set -f',
    'set -- $line',
    '"$@"',
  ]
  const member = etcdMemberCheck(step.node)
  return {
    title: `${upload.join(' ')} and ${create.join(' ')} <key> on another control-plane node, then that kubeadm join --control-plane on the node`,
    verify: [nodeCheck(['test', '-s', MANIFEST], `${MANIFEST} is in place (the node joined the control plane)`, { exitCode: 0 }, { privileged: true, okExitCodes: [0, 1] }), member],
    run: [
      script(make, 'upload the shared certificates under a fresh key and make a control-plane join command on another control-plane node', { at: 'peer-control-plane', secretOut: 'join', timeoutMs: 2 * 60_000 }),
      script(join, 'join the control plane with the fresh token and key', { secretIn: 'join', timeoutMs: 10 * 60_000 }),
    ],
    wait: [{ kind: 'service-active', service: 'kubelet', timeoutMs: 5 * 60_000 }, { kind: 'holds', check: member, timeoutMs: 5 * 60_000 }],
  }
}

/** Another control-plane node's etcd lists `node` as a member (`etcdctl member list`: id, status, name, peer, client, learner). */
const etcdMemberCheck = (node: string): Check =>
  nodeCheck(
    ['env', 'ETCDCTL_API=3', 'etcdctl', '--endpoints=https://127.0.0.1:2379', `--cacert=${ETCD_PKI}/ca.crt`, `--cert=${ETCD_PKI}/healthcheck-client.crt`, `--key=${ETCD_PKI}/healthcheck-client.key`, 'member', 'list'],
    `etcdctl member list on another control-plane node names ${node}`,
    { exitCode: 0, stdoutMatches: `^[0-9a-f]+, started, ${literal(node)}, ` },
    { privileged: true, okExitCodes: [0, 1], at: 'peer-control-plane' },
  )

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
  return {
    title: `restore the control plane at ${release} from the pre-hop backup in ${dir}: static pods stopped (manifests moved to ${ASIDE}), ${ETCD_DATA} moved aside, etcdutl snapshot restore ${snapshot} --data-dir ${ETCD_DATA} with the member's --name and peer URL from its etcd manifest, /etc/kubernetes back from ${dir}/files, systemctl restart kubelet`,
    readsBackup: { release },
    verify: [apiAt(release)],
    run: [
      // The snapshot first: a restore without one must stop before anything is stopped.
      snapshotCheck(snapshot),
      stopStaticPods(),
      waitApiDown(),
      etcdRestore(snapshot, ownMemberFlags(dir)),
      ...restoreFilesCommands({ dir, paths: ['/etc/kubernetes'] }),
      ...restartRestoredControlPlane(),
      waitApiAt(release),
    ],
    wait: [{ kind: 'service-active', service: 'kubelet', timeoutMs: 5 * 60_000 }],
  }
}

const ASIDE = `${MANIFESTS}.kupgrade-restore`
const API = ['kubectl', `--kubeconfig=${ADMIN_CONF}`, '--request-timeout=5s', 'get', '--raw', '/version']
const KEPT_ETCD_MANIFEST = (dir: string): string => keptCopy(dir, `${MANIFESTS}/etcd.yaml`)
/** Where a restored member records which snapshot and token it was restored with: its data dir's own, so that data moved
 *  aside or replaced takes the record with it. */
const RESTORED_FROM = `${ETCD_DATA}/member/kupgrade-restored-from`

const apiAt = (release: string): Check => nodeCheck(API, `the API answers at ${release}`, { stdoutMatches: `"gitVersion": "${literal(release)}"` }, { privileged: true, okExitCodes: [0, 1] })
const snapshotCheck = (snapshot: string) => onNode(['sha256sum', '--check', '--quiet', '--strict', `${snapshot}.sha256`], `check the pre-hop etcd snapshot ${snapshot}`)
const stopStaticPods = () =>
  script(['set -e', `mkdir -p ${q(ASIDE)}`, `for f in ${q(MANIFESTS)}/*.yaml; do if [ -e "$f" ]; then mv -f "$f" ${q(ASIDE)}/; fi; done`], `stop the static control plane: its manifests moved to ${ASIDE}`)
const waitApiDown = () =>
  script(
    [
      'for i in $(seq 1 120); do',
      `  if ! ${API.map(q).join(' ')} >/dev/null 2>&1; then exit 0; fi`,
      '  sleep 1',
      'done',
      `echo kupgrade: the API still answers 120 s after the manifests moved to ${q(ASIDE)}: "the kubelet did not stop the static pods; stop them (crictl), then resume" >&2`,
      'exit 1',
    ],
    'wait until the kubelet stopped the apiserver',
    { timeoutMs: 3 * 60_000 },
  )
/**
 * The only member's own name and peer URL, as its etcd manifest (kept before the hop, else its own) names them: etcdutl
 * would otherwise restore a member "default" advertising http://localhost:2380, which etcd keeps and which a control-plane
 * node joined later could not reach. No manifest: etcdutl's defaults, as the Kubernetes docs' restore does.
 */
const ownMemberFlags = (dir: string): EtcdRestoreFlags => ({
  prelude: [
    ...readEtcdMember(dir),
    'set --',
    'if [ -n "$name" ] && [ -n "$peer" ]; then set -- --name="$name" --initial-cluster="$name=$peer" --initial-advertise-peer-urls="$peer"; fi',
  ],
  args: '"$@"',
})

/** etcdutl's member flags as shell words (`args`), after any shell lines that work them out (`prelude`). */
interface EtcdRestoreFlags {
  prelude?: string[]
  args: string
}

/**
 * Shell lines that set `m` to the node's etcd manifest — the one kept before the hop, else its own (in place, or moved
 * aside by a restore that stopped after it: a node the hop never reached kept none) — and `name` and `peer` to the
 * member name and peer URL it gives etcd; all empty where there is none.
 */
const readEtcdMember = (dir: string): string[] => {
  const sources = [KEPT_ETCD_MANIFEST(dir), `${MANIFESTS}/etcd.yaml`, `${ASIDE}/etcd.yaml`]
  const flag = (name: string) => `sed -n 's/^ *- --${name}=//p' "$m" | head -n 1`
  return [
    `m=; for f in ${sources.map(q).join(' ')}; do if [ -f "$f" ]; then m=$f; break; fi; done`,
    `name=; peer=; if [ -n "$m" ]; then name=$(${flag('name')}); peer=$(${flag('initial-advertise-peer-urls')}); fi`,
  ]
}

/** The data dir moved aside (etcdutl refuses one that is not empty: the old data is the last copy of what the restore
 *  throws away), then `etcdutl snapshot restore` with `flags`, and the record of it. */
const etcdRestore = (snapshot: string, flags: EtcdRestoreFlags, record?: string) =>
  script(
    [
      'set -e',
      ...(flags.prelude ?? []),
      `if [ -e ${q(ETCD_DATA)} ]; then mv ${q(ETCD_DATA)} ${q(ETCD_DATA)}.kupgrade-$(date +%s); fi`,
      `etcdutl snapshot restore ${q(snapshot)} --data-dir ${q(ETCD_DATA)} ${flags.args}`,
      ...(record ? [`printf '%s %s\n' ${q(record)} "$(sha256sum < ${q(snapshot)} | cut -d' ' -f1)" > ${q(RESTORED_FROM)}`] : []),
    ],
    `etcdutl snapshot restore of the pre-hop snapshot into a fresh ${ETCD_DATA}`,
    { timeoutMs: 10 * 60_000 },
  )
/** Once the manifests are back (the kept /etc/kubernetes holds them at the old version), the kubelet starts them. */
const restartRestoredControlPlane = () => [
  onNode(['rm', '-rf', ASIDE], `drop the moved-aside manifests ${ASIDE}`),
  onNode(['systemctl', 'daemon-reload'], 'reload unit files the previous kubelet package may have changed'),
  onNode(['systemctl', 'restart', 'kubelet'], 'restart the kubelet: it runs the restored static control plane', { timeoutMs: 5 * 60_000 }),
]
/** The apiserver's container starts after the kubelet: its first answer can take a minute. */
const waitApiAt = (release: string) =>
  script(
    [
      'for i in $(seq 1 300); do',
      `  if ${API.map(q).join(' ')} 2>/dev/null | grep -qF ${q(`"gitVersion": "${release}"`)}; then exit 0; fi`,
      '  sleep 1',
      'done',
      `echo kupgrade: the API did not come back at ${q(release)} within 300 s of the restore: "see journalctl -u kubelet and /var/log/pods/kube-system_kube-apiserver-*" >&2`,
      'exit 1',
    ],
    `wait until the API answers at ${release}`,
    { timeoutMs: 6 * 60_000 },
  )

/**
 * Before a control plane of several nodes is stopped for its restore: on each node, the first node's pre-hop snapshot
 * (put there from the copy kept off that node) intact, and the etcd manifest the node kept before the hop naming it
 * the member, at the peer URL, that the restore's --initial-cluster will name it (kubeadm advertises the node's
 * address). A mismatch stops the restore here, with every member still running. Verify: both hold already.
 */
function prepareRestoreProgram(step: StepOf<'prepare-etcd-restore'>): ActionProgram {
  const { dir, snapshot, release, member, peerURL, snapshotFrom } = step.params
  const kept = KEPT_ETCD_MANIFEST(dir)
  const names = [
    ...readEtcdMember(dir),
    `[ -n "$m" ] || { echo ${q(`kupgrade: no etcd manifest on this node (${kept}, ${MANIFESTS}/etcd.yaml or ${ASIDE}/etcd.yaml): the restore cannot tell its etcd member name and peer URL; restore by hand (kubernetes.io "Restoring an etcd cluster")`)} >&2; exit 1; }`,
    `if [ "$name" != ${q(member)} ] || [ "$peer" != ${q(peerURL)} ]; then`,
    `  echo "kupgrade: this node's etcd is member $name at $peer ($m), not" ${q(`${member} at ${peerURL} as the restore would name it from the plan (node name, host): set the node's host to its etcd peer address, or restore by hand (kubernetes.io "Restoring an etcd cluster")`)} >&2`,
    '  exit 1',
    'fi',
  ]
  return {
    title: `check the pre-hop etcd snapshot ${snapshot}${snapshotFrom ? ` (put here from the copy of ${snapshotFrom}'s)` : ''} and that the node's etcd manifest (${kept}, else its own) names it ${member} at ${peerURL}`,
    readsBackup: snapshotFrom ? { release, from: { node: snapshotFrom, paths: [snapshot, `${snapshot}.sha256`] } } : { release },
    verify: [
      nodeCheck(['sha256sum', '--check', '--quiet', '--strict', `${snapshot}.sha256`], `the pre-hop etcd snapshot ${snapshot} is here, intact`, { exitCode: 0 }, { privileged: true, okExitCodes: [0, 1, 2] }),
      nodeCheck(['sh', '-c', names.join('\n')], `the node's etcd manifest names it ${member} at ${peerURL}`, { exitCode: 0 }, { privileged: true, okExitCodes: [0, 1] }),
    ],
    run: [snapshotCheck(snapshot), script(names, `check that the node's etcd manifest names it ${member} at ${peerURL}`)],
  }
}

/** A control-plane node's static pods stopped for a restore of several: its manifests moved aside; after the last
 *  node, the API awaited down. Verify: no manifest left in /etc/kubernetes/manifests (and, after the last, no API). */
function stopControlPlaneProgram(step: StepOf<'stop-control-plane'>): ActionProgram {
  const none = nodeCheck(['sh', '-c', `! ls ${q(MANIFESTS)}/*.yaml >/dev/null 2>&1`], `no static pod manifest in ${MANIFESTS}`, { exitCode: 0 }, { privileged: true, okExitCodes: [0, 1] })
  return {
    title: `stop the static control plane: manifests moved to ${ASIDE}${step.params.last ? '; the API awaited down' : ''}`,
    verify: [none, ...(step.params.last ? [nodeCheck(API, 'the API does not answer', { exitCode: 1 }, { privileged: true, okExitCodes: [0, 1] })] : [])],
    run: [stopStaticPods(), ...(step.params.last ? [waitApiDown()] : [])],
  }
}

/**
 * One member of a control plane of several back from the cluster's pre-hop snapshot (etcd "Disaster recovery",
 * kubernetes.io "Restoring an etcd cluster"), every static pod already stopped: `etcdutl snapshot restore` with this
 * member's --name and peer URL and the --initial-cluster and --initial-cluster-token all members share, into a fresh
 * /var/lib/etcd; /etc/kubernetes back from the hop's backup; kubelet restarted. After the last member the API is
 * awaited at the old version (etcd has quorum once more than half run). Verify: this member's data was restored from
 * this snapshot with this token and its apiserver manifest is at the old version (after the last, the API answers).
 */
function restoreMemberProgram(step: StepOf<'restore-datastore'>, m: EtcdMemberRestore): ActionProgram {
  if (step.params.kind !== 'kubeadm') throw new Error(`kubeadm driver: datastore restore of kind ${step.params.kind}`)
  const { dir, snapshot, release } = step.params
  const flags = [`--name=${m.name}`, `--initial-cluster=${m.initialCluster}`, `--initial-cluster-token=${m.token}`, `--initial-advertise-peer-urls=${m.peerURL}`]
  const restored = nodeCheck(['sh', '-c', `[ "$(cat ${q(RESTORED_FROM)} 2>/dev/null)" = "${m.token} $(sha256sum < ${q(snapshot)} | cut -d' ' -f1)" ]`], `${ETCD_DATA} was restored from ${snapshot} with token ${m.token}`, { exitCode: 0 }, { privileged: true, okExitCodes: [0, 1] })
  const manifestAt = nodeCheck(['grep', '-qE', `image: .*/kube-apiserver:${literal(release)}$`, MANIFEST], `${MANIFEST} runs kube-apiserver ${release}`, { exitCode: 0 }, { privileged: true, okExitCodes: [0, 1, 2] })
  return {
    title: `restore etcd member ${m.name} from the pre-hop snapshot: etcdutl snapshot restore ${snapshot} --data-dir ${ETCD_DATA} ${flags.join(' ')}; /etc/kubernetes back from ${dir}/files, systemctl restart kubelet${m.last ? `; the API awaited at ${release}` : ''}`,
    readsBackup: { release },
    verify: [restored, manifestAt, ...(m.last ? [apiAt(release)] : [])],
    run: [
      snapshotCheck(snapshot),
      // Already stopped by stop-control-plane; again here, so that a member never runs on data being replaced.
      stopStaticPods(),
      etcdRestore(snapshot, { args: flags.map(q).join(' ') }, m.token),
      // A node the hop never reached kept no files: its /etc/kubernetes is as it was, and its manifests go back as
      // they were moved aside.
      script(
        [
          'set -e',
          `if [ -f ${q(`${dir}/${SUMS}`)} ]; then`,
          `  sha256sum --check --quiet --strict ${q(`${dir}/${SUMS}`)}`,
          ...putBackLines(dir, ['/etc/kubernetes']).map((l) => `  ${l}`),
          'else',
          `  echo ${q(`kupgrade: no files kept in ${dir} (the hop never reached this node): its /etc/kubernetes is as it was; the manifests moved to ${ASIDE} go back`)} >&2`,
          `  for f in ${q(ASIDE)}/*.yaml; do if [ -e "$f" ]; then mv -f "$f" ${q(MANIFESTS)}/; fi; done`,
          'fi',
        ],
        `/etc/kubernetes back from ${dir}/files (the static pods at the old version)`,
      ),
      ...restartRestoredControlPlane(),
      ...(m.last ? [waitApiAt(release)] : []),
    ],
    wait: [{ kind: 'service-active', service: 'kubelet', timeoutMs: 5 * 60_000 }],
  }
}
