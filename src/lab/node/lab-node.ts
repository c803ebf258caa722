import { EventEmitter } from 'node:events'
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { parseAuthorizedKeys } from './auth.js'
import { EventTail } from './event-tail.js'
import { execEnv, spawnInNode, type ExecUser } from './exec.js'
import { runSession } from './session.js'
import { NodeFaults, isNodeFault, type FaultParams } from './faults.js'
import { loadHostKey } from './host-key.js'
import { defaultLeafNotAfter, keepsSqlite, prepareRoot, runsKubelet, writeCerts } from './layout.js'
import { LabIsolationError, probeIsolation, type NodeEntry } from './namespace.js'
import { applyStagedOsUpdate } from './os-update.js'
import { drawBootId } from './boot-id.js'
import { pathsOf, type NodePaths } from './paths.js'
import { realTools } from './real-tools.js'
import { enterProgram, vipShim } from './native-build.js'
import { archInBinary, mainBinaryOf, releaseForm, unitOf, versionInBinary } from './release.js'
import { NodeSshServer, type SessionRequest } from './ssh-server.js'
import { defaultTiming } from './timing.js'
import { readUnit, readUnitAsOf, writeUnit } from './unit-state.js'
import { journalLine, klogPrefix, servicePid } from './journal.js'
import { dataMembers, etcdClusterDir, etcdDbBytes, etcdMetrics, expectedEtcdMembers, membersRunning, parseEtcdIdentity, publishEtcdIdentity, setEtcdMemberHealth } from './etcd-sim.js'
import { KubeProxy, kubeProxySkewRefusal } from './kube-proxy.js'
import { NodePorts, type LocalPort } from './local-ports.js'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { redact } from './redact.js'
import { FileScan, PACKAGE_STATE } from '../recorder/file-scan.js'
import type { NodeChange } from '../recorder/types.js'
import type { LabNodeEvents, LabNodeOptions, LabNodeState } from './types.js'
import type { LabProcess } from './off-loop-spawn.js'

/** Ports whose servers bind 0.0.0.0 (so the node address reaches them too); the rest are 127.0.0.1 only
 *  (facts §7: kube-proxy metrics 127.0.0.1:10249 except k0s 0.0.0.0, healthz 0.0.0.0:10256 except k3s 127.0.0.1;
 *  kubelet healthz 127.0.0.1:10248). */
const PUBLIC_PORTS: Record<LabNodeOptions['distribution'], LocalPort[]> = { kubeadm: [10256], k0s: [10249, 10256], k3s: [] }

/** The kubelet's healthz server (--healthz-port 10248): `ok` while the kubelet runs. */
function kubeletHealthz(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0]
  res.writeHead(path === '/healthz' ? 200 : 404, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' })
  res.end(path === '/healthz' ? 'ok' : '404 page not found\n')
}

interface RunningExec {
  child: LabProcess
  connectionId: number
  /** The command as the client sent it (ssh-drop's `command` picks by it). */
  command: string
}

/**
 * One simulated node: an SSH server whose commands run in real bash, in a private mount namespace that shows the
 * node's own root at /etc/kubernetes, /run, /usr/local/bin …, with stand-ins for the Kubernetes and OS tools first
 * on PATH. State lives in files (binaries carry their version, units have state files); the stand-ins report changes
 * as JSON lines in lab/events.jsonl, which this class turns into events for the fleet.
 */
export class LabNode extends EventEmitter<LabNodeEvents> {
  readonly options: LabNodeOptions
  readonly paths: NodePaths
  readonly unit: string
  private readonly timing: Required<LabNodeOptions['timing']>
  private readonly hostKey: ReturnType<typeof loadHostKey>
  private entry?: NodeEntry
  private ssh?: NodeSshServer
  private tail?: EventTail
  private readonly faults: NodeFaults
  private readonly kubeProxy: KubeProxy
  private readonly ports: NodePorts
  private readonly running = new Set<RunningExec>()
  /** Pods' containers running here (runContainer): they die with a reboot or the node's stop. */
  private readonly containers = new Set<LabProcess>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private rebooting = false
  private notReady = false
  /** node-not-ready-after-upgrade: the version the node ran before the upgrade that broke it. */
  private notReadyGoodVersion?: string
  /** ssh-drop armed for the next command (whose text contains `match`, when given). */
  private dropNext?: { match?: string }
  /** Certificates were renewed; the service picks them up at its next start ('certs-rotated'). */
  private certsPending = false
  /** ssh-drop's afterMs (it is one-shot, so it is not kept in the fault files). */
  private dropAfterMs = 100
  /** The version the node's unit ran at its last start (unit file at lab start, then every 'started'). */
  private lastStartedVersion?: string
  private started = false
  private sftpServer?: string
  /** Finds the files a command changed, for the lab's recorder ('change' events). */
  private files?: FileScan

  constructor(options: LabNodeOptions) {
    super()
    this.options = { ...options, port: options.port ?? 2222, version: releaseForm(options.distribution, options.version) }
    if (!/^127\.\d+\.\d+\.\d+$/.test(options.address)) throw new Error(`lab node ${options.name}: address must be loopback (127.0.0.0/8), got ${options.address}`)
    this.paths = pathsOf(options.rootDir)
    this.unit = unitOf(options.distribution, options.role)
    this.timing = defaultTiming(options.timing)
    this.hostKey = loadHostKey(this.paths.hostKey, options.hostKey)
    this.kubeProxy = new KubeProxy({
      distribution: options.distribution,
      node: options.name,
      address: options.address,
      paths: this.paths,
      syncMs: this.timing.kubeProxySyncMs,
      unitName: this.unit,
      unit: () => this.unitNow(),
      ...(options.kubeProxyPod ? { pod: options.kubeProxyPod } : {}),
      rebooting: () => this.rebooting,
    })
    this.faults = new NodeFaults({ faultsDir: this.paths.faults, stateDir: this.paths.state, node: options.name, kubeProxy: this.kubeProxy })
    this.ports = new NodePorts({
      root: this.paths.root,
      labDir: this.paths.lab,
      address: options.address,
      publicPorts: PUBLIC_PORTS[options.distribution],
      up: (port) => {
        if (port === 10249 || port === 10256) return this.kubeProxy.now().up
        // etcd: a static pod on kubeadm (outlives a kubelet stop), inside the k3s/k0s process otherwise.
        // (A k3s server on SQLite runs no etcd: nothing listens.)
        if (port === 2381) return options.role === 'control-plane' && !keepsSqlite(options) && !this.rebooting && (options.distribution === 'kubeadm' || this.unitNow().active)
        // 10248: the kubelet's healthz, only where a kubelet runs (not on a k0s controller without a worker).
        return runsKubelet(options) && this.unitNow().active && !this.rebooting
      },
      handle: (port, req, res) => {
        if (port === 10248) return kubeletHealthz(req, res)
        if (port === 2381) return this.etcdMetrics(req, res)
        this.kubeProxy.serve(port, req, res)
      },
    })
  }

  /** etcd's metrics listener (--listen-metrics-urls=http://127.0.0.1:2381): /metrics and /health. */
  private etcdMetrics(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]
    const dir = etcdClusterDir(this.options, this.paths.lab)
    const near = this.faults.active('etcd-db-near-quota') ? Number(this.faults.params('etcd-db-near-quota')['bytes'] ?? 2040109465) : undefined
    if (path === '/metrics') {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' })
      return void res.end(etcdMetrics(dir, this.options.name, etcdDbBytes(this.options.name, near)))
    }
    if (path === '/health') {
      const ok = !this.faults.active('etcd-unhealthy')
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain; charset=utf-8' })
      return void res.end(ok ? '{"health":"true","reason":""}' : '{"health":"false","reason":"RAFT NO LEADER"}')
    }
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' })
    res.end('404 page not found\n')
  }

  private unitNow(): { active: boolean; version: string; sinceS: number } {
    const u = readUnit(this.paths.units, this.unit)
    return { active: u?.state === 'active', version: u?.version ?? '', sinceS: u?.sinceS ?? 0 }
  }

  /** `ssh-ed25519 AAAA…` for a known_hosts line. */
  get hostKeyPublic(): string {
    return this.hostKey.publicKey
  }

  /** The node's kube-proxy log: kubeadm/k0s the pod's container log as `kubectl logs` prints it (the node's
   *  /var/log/pods/… file without its CRI prefixes); k3s the k3s journal. */
  readKubeProxyLog(): string {
    return this.kubeProxy.readLog()
  }

  async start(): Promise<void> {
    if (this.started) return
    this.entry = { isolation: await probeIsolation(), program: await enterProgram() }
    const tools = await realTools()
    this.sftpServer = tools['LAB_SFTP_SERVER'] || undefined
    prepareRoot(this.options, tools, await vipShim())
    await this.checkMounts()
    this.files = new FileScan(this.paths.root)
    this.files.baseline()
    this.checkStaticControlPlane()
    this.lastStartedVersion ??= readUnit(this.paths.units, this.unit)?.version || undefined
    this.tail = new EventTail(this.paths.events, (e) => this.onNodeEvent(e))
    this.tail.start()
    this.faults.resume()
    if (this.options.role === 'control-plane') setEtcdMemberHealth(etcdClusterDir(this.options, this.paths.lab), this.options.name, !this.faults.active('etcd-unhealthy'))
    await this.ports.start()
    this.started = true
    // Stopped in the middle of a reboot: the node finishes booting now rather than staying "rebooting" forever.
    if (this.rebooting) return this.bootUp()
    await this.listen()
  }

  /** One real exec before listening: a host that allows namespaces but not these mounts (no overlayfs, say) fails
   *  `lab up` here with mount's own message, not every later command with exit 125. */
  private async checkMounts(): Promise<void> {
    const child = spawnInNode(this.paths, this.entry!, 'test -d /etc/kubernetes && test -d /var/lib/rancher', execEnv({ name: 'root', sudo: true }, {}))
    child.stdin!.end()
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    if (code !== 0)
      throw new LabIsolationError(`lab node ${this.options.name}: the node root cannot be mounted in its namespace (exit ${code}): ${stderr.trim() || 'no message'}`, {
        hint: 'the lab needs bind mounts and a read-only overlayfs mount inside a private mount namespace (root, or unprivileged user namespaces on Linux ≥ 5.11)',
      })
  }

  async stop(): Promise<void> {
    this.started = false
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    this.faults.stop()
    await this.ports.stop()
    this.tail?.stop()
    for (const r of this.running) r.child.killGroup()
    for (const c of this.containers) c.killGroup()
    await this.ssh?.close()
    this.ssh = undefined
  }

  getState(): LabNodeState {
    const main = join(this.paths.root, mainBinaryOf(this.options.distribution).path)
    const installedVersion = existsSync(main) ? (versionInBinary(readFileSync(main, 'utf8')) ?? '') : ''
    const u = readUnit(this.paths.units, this.unit)
    const images = join(this.paths.state, 'airgap-images')
    return {
      installedVersion,
      runningVersion: u?.version ?? '',
      serviceActive: !this.rebooting && u?.state === 'active',
      rebooting: this.rebooting,
      notReady: this.notReady,
      ...(existsSync(images) ? { airgapImages: readFileSync(images, 'utf8').split('\n').filter(Boolean) } : {}),
    }
  }

  /** k3s at boot imports the archives in agent/images, as at every start (lib.sh lab_k3s_import_images). */
  private importAirgapImages(): void {
    const dir = join(this.paths.root, 'var/lib/rancher/k3s/agent/images')
    if (!existsSync(dir)) return
    const known = join(this.paths.state, 'airgap-images')
    const have = new Set(existsSync(known) ? readFileSync(known, 'utf8').split('\n').filter(Boolean) : [])
    const log = (level: string, msg: string) => writeFileSync(join(this.paths.journal, `${this.unit}.log`), journalLine(this.options.name, 'k3s', servicePid(this.options.name), `time="${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}" level=${level} msg="${msg}"`), { flag: 'a' })
    for (const f of readdirSync(dir, { withFileTypes: true })) {
      if (!f.isFile() || /\.txt$/i.test(f.name)) continue
      const path = `/var/lib/rancher/k3s/agent/images/${f.name}`
      if (!/(\.tar|\.tar\.lz4|\.tar\.bz2|\.tbz|\.tar\.gz|\.tgz|tar\.zst|\.tzst)$/i.test(f.name)) {
        log('error', `Error encountered while importing ${path}: unhandled file type`)
        continue
      }
      log('info', `Importing images from ${path}`)
      const release = /^LAB_IMAGES_RELEASE='(.*)'$/m.exec(readFileSync(join(dir, f.name), 'utf8'))?.[1]
      if (release && !have.has(release)) {
        have.add(release)
        appendFileSync(known, `${release}\n`)
      }
    }
  }

  setFault(fault: string, on: boolean, params: FaultParams = {}): void {
    if (fault === 'kube-proxy-skew') throw new Error(`lab node ${this.options.name}: ${kubeProxySkewRefusal(this.options.distribution)}`)
    if (!isNodeFault(fault)) throw new Error(`lab node ${this.options.name}: unknown node fault "${fault}"`)
    if (fault === 'ssh-drop') return this.setSshDrop(on, params)
    this.faults.set(fault, on, params)
    if (fault === 'etcd-unhealthy' && this.options.role === 'control-plane') setEtcdMemberHealth(etcdClusterDir(this.options, this.paths.lab), this.options.name, !on)
    if (fault === 'node-not-ready-after-upgrade') {
      if (!on) this.notReady = false
      this.notReadyGoodVersion = on ? this.lastStartedVersion : undefined
    }
    if (fault === 'cert-expired' || fault === 'cert-expiring') {
      this.rewriteCerts()
      this.files?.baseline() // the lab's own rewrite, not a client's change
    }
  }

  /**
   * A node the cluster admitted: where a reset removed its certificates (k3s-agent-uninstall.sh, kubeadm reset, k0s
   * reset), joining gave it new ones: the k3s server signs an agent's, kubeadm's TLS bootstrap the kubelet's client
   * certificate (and `join --control-plane` the control plane's under the CA it downloaded), k0s's join API a worker's
   * or a controller's. Without them the certificates gate finds nothing to check.
   */
  issueMissingCerts(): void {
    let index: string
    try {
      index = readFileSync(join(this.paths.lab, 'certs.tsv'), 'utf8')
    } catch {
      return
    }
    const files = index.split('\n').map((l) => l.split('\t')[0]!).filter(Boolean)
    if (files.every((f) => existsSync(join(this.paths.root, f)))) return
    this.rewriteCerts()
    this.files?.baseline() // the lab's own writing, not a client's change
  }

  private rewriteCerts(): void {
    const day = 86400_000
    const now = Date.now()
    let notAfter = defaultLeafNotAfter(this.options)
    if (this.faults.active('cert-expiring')) notAfter = new Date(now + (Number(this.faults.params('cert-expiring')['days']) || 10) * day)
    if (this.faults.active('cert-expired')) notAfter = new Date(now - (Number(this.faults.params('cert-expired')['daysAgo']) || 1) * day)
    writeCerts(this.options, this.paths, notAfter)
  }

  /**
   * `ssh-drop`: drop the connections of commands running now; if none runs, drop the next one mid-command. With
   * `command`, only a command whose text contains it (a network blip in the middle of one chosen step).
   */
  private setSshDrop(on: boolean, params: FaultParams): void {
    this.dropNext = undefined
    if (!on) return
    const afterMs = Number(params['afterMs'] ?? 100)
    const match = typeof params['command'] === 'string' && params['command'] !== '' ? params['command'] : undefined
    this.dropAfterMs = afterMs
    const now = [...this.running].filter((r) => match === undefined || r.command.includes(match))
    if (now.length) for (const r of now) this.dropLater(r.connectionId, afterMs)
    else this.dropNext = match === undefined ? {} : { match }
  }

  private dropLater(connectionId: number, ms: number): void {
    this.later(() => this.ssh?.drop(connectionId), ms)
  }

  private later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t)
      fn()
    }, ms)
    this.timers.add(t)
  }

  private async listen(): Promise<void> {
    const users: ExecUser[] = (this.options.users ?? []).map((u) => ({ name: u.name, sudo: u.sudo }))
    this.ssh = new NodeSshServer({
      hostKey: this.hostKey.privateKey,
      authorizedKeys: parseAuthorizedKeys(this.options.authorizedKeys),
      users,
      onSession: (req) => this.runSession(req),
      onForward: (e) => this.emit('forward', e),
      ...(this.sftpServer ? { sftpServer: this.sftpServer } : {}),
    })
    await this.ssh.listen(this.options.address, this.options.port ?? 2222)
  }

  /** A pod's container: its command in this node's bash and mount namespace, as root, with the pod's environment on
   *  top of the node's (the stand-ins stay first on PATH, so `curl` to the Service ClusterIP reaches the API). */
  runContainer(script: string, env: Record<string, string>): LabProcess {
    const child = spawnInNode(this.paths, this.entry!, script, { ...execEnv({ name: 'root', sudo: true }, {}), ...env }, this.options.niceness)
    child.stdin!.end()
    this.containers.add(child)
    child.on('close', () => this.containers.delete(child))
    return child
  }

  /** Faults the cluster applies to pods' traffic only (`api-vip-unreachable` without a node): a file in
   *  lab/pod-faults that the stand-ins consult when LAB_POD is set. */
  setPodNetworkFault(fault: string, on: boolean): void {
    const dir = join(this.paths.lab, 'pod-faults')
    mkdirSync(dir, { recursive: true })
    if (on) writeFileSync(join(dir, fault), '')
    else rmSync(join(dir, fault), { force: true })
  }

  private runSession(req: SessionRequest): void {
    const child = runSession(this.paths, this.entry!, req, (_child, end) => {
      this.running.delete(entry)
      this.tail?.poll()
      this.recordFileChanges(req.user.client ?? `ssh:${req.user.name}`)
      this.checkStaticControlPlane()
      this.emit('exec', { user: req.user.name, command: redact(req.command ?? 'exec /bin/bash'), ...end })
    }, this.options.niceness)
    const entry = { child, connectionId: req.connectionId, command: req.command ?? '' }
    this.running.add(entry)
    if (this.dropNext && (this.dropNext.match === undefined || entry.command.includes(this.dropNext.match))) {
      this.dropNext = undefined
      this.dropLater(req.connectionId, this.dropAfterMs)
    }
  }

  /**
   * kubeadm: the kubelet runs whatever /etc/kubernetes/manifests says. When the kube-apiserver manifest's version or
   * the etcd datastore (/var/lib/etcd) changed, the control plane is what they say now: an apiserver older (by minor)
   * than the release that last wrote the datastore crash-loops (the kubelet's journal shows the back-off, the
   * container's log why), as a binary-only downgrade does; `etcdutl snapshot restore` of an older snapshot fixes it.
   */
  private staticControlPlane = ''
  /** Judged again when another member of the cluster's etcd started or stopped: its quorum may have changed. */
  recheckStaticControlPlane(): void {
    if (this.started) this.checkStaticControlPlane()
  }

  private checkStaticControlPlane(): void {
    if (this.options.distribution !== 'kubeadm' || this.options.role !== 'control-plane') return
    const read = (rel: string) => { try { return readFileSync(join(this.paths.root, rel), 'utf8') } catch { return '' } }
    const version = /image: \S*\/kube-apiserver:(v\d+\.\d+\.\d+)\s*$/m.exec(read('etc/kubernetes/manifests/kube-apiserver.yaml'))?.[1]
    const store = read('var/lib/etcd/member/lab-written-by').trim()
    const etcd = this.etcdMembership(read)
    if (!version) {
      // The manifest moved away (as a restore does first, so that nothing writes to etcd meanwhile): the kubelet stops
      // the static apiserver and the API is no longer served from this node, until a manifest is back.
      if (this.staticControlPlane === '' || this.staticControlPlane.startsWith('absent ')) return
      const last = this.staticControlPlane.split(' ')[0]!
      this.staticControlPlane = `absent ${last}`
      this.emit('static-control-plane', { version: last, failing: 'the kubelet runs no kube-apiserver: /etc/kubernetes/manifests/kube-apiserver.yaml is gone' })
      return
    }
    const minor = (v: string) => Number(/^v?\d+\.(\d+)/.exec(v)?.[1] ?? NaN)
    const failing = store && minor(version) < minor(store)
      ? `the datastore was written by Kubernetes ${store.replace(/\+.*/, '')} and cannot be read by ${version}: downgrading the control plane is not supported; restore a snapshot taken before the upgrade`
      : etcd
    const key = `${version} ${store} ${failing ?? ''}`
    if (key === this.staticControlPlane) return
    const first = this.staticControlPlane === ''
    this.staticControlPlane = key
    if (first) return // the state the node started in
    if (failing) {
      const pid = servicePid(this.options.name)
      const pod = `kube-apiserver-${this.options.name}`
      const uid = createHash('sha256').update(`${this.options.name}/${version}`).digest('hex').slice(0, 32).replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-')
      appendFileSync(join(this.paths.journal, 'kubelet.log'), journalLine(this.options.name, 'kubelet', pid,
        `${klogPrefix('E', pid, 'pod_workers.go:1298')}"Error syncing pod, skipping" err="failed to \\"StartContainer\\" for \\"kube-apiserver\\" with CrashLoopBackOff: \\"back-off 10s restarting failed container=kube-apiserver pod=${pod}_kube-system(${uid})\\"" pod="kube-system/${pod}" podUID="${uid}"`))
      const dir = join(this.paths.root, `var/log/pods/kube-system_${pod}_${uid}/kube-apiserver`)
      mkdirSync(dir, { recursive: true })
      appendFileSync(join(dir, '0.log'), `${new Date().toISOString()} stderr F ${klogPrefix('E', 1, 'run.go:72')}"command failed" err="${failing}"\n`)
    }
    this.emit('static-control-plane', { version, ...(failing ? { failing } : {}) })
  }

  /**
   * The member's stacked etcd (etcd-sim.ts): it runs while its static pod manifest is there, and it publishes the
   * cluster ID of its data then. Of several members, its data must be of this cluster's members (a restore with
   * other --initial-cluster flags makes a different cluster), and more than half of them must run with its cluster
   * ID, or etcd has no quorum and the apiserver on this node cannot serve. Returns why it cannot, if so.
   */
  private etcdMembership(read: (rel: string) => string): string | undefined {
    const dir = etcdClusterDir(this.options, this.paths.lab)
    const identity = parseEtcdIdentity(read('var/lib/etcd/member/lab-cluster'))
    const runs = read('etc/kubernetes/manifests/etcd.yaml') !== ''
    publishEtcdIdentity(dir, this.options.name, runs ? identity?.id : undefined)
    const expected = expectedEtcdMembers(dir)
    const count = expected ? expected.split(',').length : 0
    if (!identity || count < 2) return undefined
    const members = dataMembers(dir, identity)
    if (members !== expected) {
      return `etcd: the member data in /var/lib/etcd is of an etcd cluster of ${members}, not of this cluster's members ${expected}: restore every member from the same snapshot with --name, --initial-cluster and --initial-advertise-peer-urls`
    }
    const running = membersRunning(dir, identity.id)
    if (running.length * 2 <= count) {
      return `etcd has no quorum: ${running.length} of ${count} members run with this member's cluster ID ${identity.id} (${running.join(', ') || 'none'}); the others are stopped or hold other data (request cluster ID mismatch)`
    }
    return undefined
  }

  /** Files under the distribution's paths that changed during a command: 'change' events for the recorder. (With
   *  several commands running at once on this node, a change goes to the one that ends first.) */
  private recordFileChanges(client: string): void {
    if (!this.files) return
    const atMs = Date.now()
    for (const c of this.files.diff()) {
      const pkg = PACKAGE_STATE[c.rel]
      this.emit('change', { action: pkg ? 'package' : 'file-write', client, atMs, path: pkg ?? `/${c.rel}`, change: c.change })
    }
  }

  /** A stand-in's state change (lib.sh lab_event) as a 'change' event for the recorder. */
  private recordStandinEvent(e: Record<string, unknown>): void {
    const s = (k: string) => (e[k] === undefined ? undefined : String(e[k]))
    const base = { client: s('client') ?? 'lab', atMs: Number(e['ms']) || Date.now() }
    let c: NodeChange | undefined
    switch (e['type']) {
      case 'service':
        if (s('state') === 'stopped') c = { ...base, action: 'service-stop', unit: s('unit'), version: s('version') }
        if (s('state') === 'starting') c = { ...base, action: 'service-start', unit: s('unit'), version: s('version') }
        break
      case 'installed':
        c = { ...base, action: 'install', binary: s('binary'), version: s('version') }
        break
      case 'upgrade-applied':
        c = { ...base, action: 'upgrade-applied', command: s('command') === 'node' ? 'node' : 'apply', version: s('version') }
        break
      case 'certs-renewed':
        c = { ...base, action: 'certs-renewed' }
        break
      case 'reboot':
        c = { ...base, action: 'reboot' }
        break
      case 'backup':
        c = { ...base, action: 'backup', path: s('path') }
        break
      case 'reset':
        c = { ...base, action: 'reset' }
        break
      case 'restore':
        c = { ...base, action: 'restore', path: s('path') }
        break
    }
    if (c) this.emit('change', Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)) as unknown as NodeChange)
  }

  private onNodeEvent(e: Record<string, unknown>): void {
    this.recordStandinEvent(e)
    const s = (k: string) => String(e[k] ?? '')
    switch (e['type']) {
      case 'service':
        // Only the unit that makes this machine the cluster's node counts: a `k3s` server unit that the installer put
        // on an agent (run without K3S_URL) is another cluster's server, not this node's kubelet.
        if (s('unit') !== this.unit) return
        if (s('state') === 'stopped') return void this.emit('service', { service: s('unit'), state: 'stopped', version: s('version') })
        if (s('state') === 'starting') return this.whenStarted(s('unit'), s('version'), Number(e['due']))
        return
      case 'installed':
        return void this.emit('installed', { version: s('version'), binary: s('binary') })
      case 'reset':
        // k3s-uninstall.sh, kubeadm reset, k0s reset: the node's in-place state is gone, and with it what an upgrade
        // in place broke (node-not-ready-after-upgrade): the next start comes up Ready, whatever its version.
        this.notReady = false
        this.notReadyGoodVersion = undefined
        this.lastStartedVersion = undefined
        return
      case 'upgrade-applied':
        return void this.emit('upgrade-applied', { command: s('command') === 'node' ? 'node' : 'apply', version: s('version') })
      case 'certs-renewed':
        // Renewed files are valid whatever the fault said; the services use them after their next start.
        this.faults.set('cert-expired', false)
        this.faults.set('cert-expiring', false)
        this.certsPending = true
        return this.rewriteCerts()
      case 'reboot':
        return this.reboot()
    }
  }

  /** The start a stand-in began completes at `due` (the unit file turns active by itself; this tells the fleet). */
  private whenStarted(unit: string, version: string, due: number): void {
    this.later(() => {
      const u = readUnitAsOf(this.paths.units, unit, due)
      if (!u || u.state !== 'active' || u.dueMs !== due) return // stopped again, or restarted, meanwhile
      // The fault is about an upgrade: only a start that runs another version than the last start leaves it NotReady.
      if (unit === this.unit) {
        // The new version is what is broken: going back to the version that ran when the fault was armed (a
        // rollback) comes up Ready again, as a node whose upgrade broke it does.
        if (this.faults.active('node-not-ready-after-upgrade')) {
          const good = this.notReadyGoodVersion ?? this.lastStartedVersion
          if (good !== undefined) this.notReady = version !== good
          this.notReadyGoodVersion ??= this.lastStartedVersion
        }
        this.lastStartedVersion = version
      }
      this.emit('service', { service: unit, state: 'started', version, due })
      if (unit === this.unit && this.certsPending) {
        this.certsPending = false
        this.emit('certs-rotated', { version })
      }
    }, Math.max(0, due - Date.now()))
  }

  /**
   * A reboot: sshd and every session go at once, services stop, /run is emptied (it is a tmpfs), a staged OS update
   * takes effect; after `rebootMs` enabled services start and sshd listens again with the same host key.
   */
  private reboot(): void {
    if (this.rebooting) return
    this.rebooting = true
    // The boot the node comes back with (its kubelet reports it as the Node's bootID).
    drawBootId(this.paths)
    this.emit('reboot', { phase: 'down' })
    for (const r of this.running) r.child.killGroup()
    for (const c of this.containers) c.killGroup()
    void this.ssh?.close()
    this.ssh = undefined
    const u = readUnit(this.paths.units, this.unit)
    if (u && u.state !== 'inactive') {
      writeUnit(this.paths.units, this.unit, { ...u, state: 'inactive', dueMs: 0, sinceS: Math.floor(Date.now() / 1000) })
      this.emit('service', { service: this.unit, state: 'stopped', version: u.version })
    }
    const run = join(this.paths.root, 'run')
    for (const f of readdirSync(run)) if (f !== 'lab') rmSync(join(run, f), { recursive: true, force: true })
    applyStagedOsUpdate(this.paths, this.options.os, this.options.arch)
    this.later(() => void this.bootUp(), this.timing.rebootMs)
  }

  private async bootUp(): Promise<void> {
    if (!this.started) return // stop() came first; start() resumes the boot
    const enabled = existsSync(join(this.paths.root, `etc/systemd/system/${this.unit}.service`))
    const main = join(this.paths.root, mainBinaryOf(this.options.distribution).path)
    const text = existsSync(main) ? readFileSync(main, 'utf8') : ''
    const version = versionInBinary(text) ?? ''
    // A reset kubeadm node's kubelet has no kubeconfig: it exits at once and systemd keeps restarting it (lib.sh
    // lab_kubelet_credentials_error); it comes up only after `kubeadm join`.
    const noKubeconfig = this.options.distribution === 'kubeadm' && this.options.adminKubeconfig !== undefined && !['etc/kubernetes/kubelet.conf', 'etc/kubernetes/bootstrap-kubelet.conf'].some((f) => existsSync(join(this.paths.root, f)))
    if (enabled && version && archInBinary(text) !== (this.options.arch ?? 'amd64')) {
      // A binary of another architecture cannot be exec'd: systemd gives up on the unit at boot (lib.sh lab_unit_start).
      writeUnit(this.paths.units, this.unit, { state: 'failed', version: '', dueMs: 0, sinceS: Math.floor(Date.now() / 1000) })
      writeFileSync(join(this.paths.journal, `${this.unit}.log`), journalLine(this.options.name, 'systemd', 1, `${this.unit}.service: Main process exited, code=exited, status=203/EXEC`), { flag: 'a' })
    } else if (enabled && version && noKubeconfig) {
      writeUnit(this.paths.units, this.unit, { state: 'auto-restart', version, dueMs: 0, sinceS: Math.floor(Date.now() / 1000) })
    } else if (enabled && version) {
      const due = Date.now() + this.timing.serviceStartMs
      writeUnit(this.paths.units, this.unit, { state: 'activating', version, dueMs: due, sinceS: Math.floor(due / 1000) })
      writeFileSync(join(this.paths.journal, `${this.unit}.log`), journalLine(this.options.name, 'systemd', 1, `Starting ${this.unit}.service after boot`), { flag: 'a' })
      if (this.options.distribution === 'k3s') this.importAirgapImages()
      this.whenStarted(this.unit, version, due)
    }
    await this.listen()
    this.rebooting = false
    this.emit('reboot', { phase: 'up' })
  }
}
