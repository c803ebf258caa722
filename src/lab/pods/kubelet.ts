import { constants } from 'node:os'
import { shellJoin } from '../../transport/quote.js'
import type { ClusterModel } from '../fleet/cluster.js'
import type { NodeState, PodState } from '../fleet/types.js'
import { podEnv } from './env.js'
import { containerArgv } from './spec.js'
import type { LabProcess } from '../node/off-loop-spawn.js'

/** Where a node runs a container: the lab node's `runContainer` (its bash, in its mount namespace). */
export interface ContainerHost {
  runContainer(script: string, env: Record<string, string>): LabProcess
}

/** What `kubectl logs` can return of one container: the runtime keeps the log on disk; the lab keeps the last 1 MiB. */
const LOG_LIMIT = 1024 * 1024
/** CrashLoopBackOff: 10s, doubling, at most 5 minutes (kubelet's defaults). */
const backoffMs = (restarts: number) => Math.min(300_000, 10_000 * 2 ** Math.max(0, restarts - 1))

/**
 * The kubelets of one cluster, for pods created through the API: a pod bound to a node whose kubelet is up and Ready
 * starts there — its command in the node's bash with the pod's environment — and its exit code decides Succeeded or
 * Failed (restartPolicy Never; Always and OnFailure restart it with the kubelet's back-off). A pod on a node that is
 * down stays Pending until the node is back; deleting the pod stops its container (SIGTERM).
 */
export class BarePodKubelet {
  private readonly running = new Map<string, LabProcess>()

  constructor(private readonly m: ClusterModel, private readonly hostOf: (node: string) => ContainerHost | undefined) {}

  /** Called after every reconcile of the model: start what can start, stop what was deleted. */
  sync(): void {
    const live = new Set<string>()
    for (const p of this.m.pods.values()) {
      if (!p.bare) continue
      live.add(p.uid)
      const child = this.running.get(p.uid)
      if (p.deletionTimestamp) {
        if (child) stop(child)
        continue
      }
      const due = (p.phase === 'Pending' && !p.bare.startedAt) || p.bare.restartDue
      if (child || !due || !p.nodeName) continue
      const n = this.m.nodes.get(p.nodeName)
      const host = this.hostOf(p.nodeName)
      if (!n?.isNode || !host || !n.kubeletActive || n.ready.status !== 'True') continue
      this.start(p, n, host)
    }
    for (const [uid, child] of this.running) if (!live.has(uid)) stop(child)
  }

  stopAll(): void {
    for (const child of this.running.values()) stop(child)
  }

  private start(p: PodState, n: NodeState, host: ContainerHost): void {
    const b = p.bare!
    const involved = { kind: 'Pod', name: p.name, namespace: p.namespace, uid: p.uid }
    if (b.restartCount === 0) this.m.event(involved, 'Normal', 'Pulled', `Container image "${b.spec.image}" already present on machine`, 'kubelet')
    this.m.event(involved, 'Normal', 'Created', `Created container ${b.spec.container}`, 'kubelet')
    this.m.event(involved, 'Normal', 'Started', `Started container ${b.spec.container}`, 'kubelet')
    p.phase = 'Running'
    b.startedAt = new Date()
    p.startedAt ??= b.startedAt
    delete b.waiting
    delete b.restartDue
    b.log = ''
    p.resourceVersion = this.m.nextRv()
    const argv = containerArgv(b.spec)
    if (!argv) {
      b.serving = true
      return
    }
    const child = host.runContainer(`exec ${shellJoin(argv)}`, { ...podEnv(this.m, p, n), LAB_POD: `${p.namespace}/${p.name}`, LAB_CLIENT: `pod:${p.namespace}/${p.name}` })
    this.running.set(p.uid, child)
    const append = (d: Buffer) => {
      b.log = (b.log + d.toString('utf8')).slice(-LOG_LIMIT)
    }
    child.stdout?.on('data', append)
    child.stderr?.on('data', append)
    child.on('error', (err) => append(Buffer.from(`kupgrade lab: cannot start the container: ${err.message}\n`)))
    child.on('close', (code, signal) => {
      this.running.delete(p.uid)
      if (this.m.pods.get(`${p.namespace}/${p.name}`) !== p) return
      const exitCode = code ?? 128 + (signal ? (constants.signals[signal] ?? 9) : 9)
      b.terminated = { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt: b.startedAt!, finishedAt: new Date() }
      const restart = !p.deletionTimestamp && (b.spec.restartPolicy === 'Always' || (b.spec.restartPolicy === 'OnFailure' && exitCode !== 0))
      if (!restart) {
        p.phase = exitCode === 0 ? 'Succeeded' : 'Failed'
      } else {
        b.restartCount++
        b.waiting = { reason: 'CrashLoopBackOff', message: `back-off ${Math.round(backoffMs(b.restartCount) / 1000)}s restarting failed container=${b.spec.container} pod=${p.name}_${p.namespace}(${p.uid})` }
        this.m.event(involved, 'Warning', 'BackOff', 'Back-off restarting failed container', 'kubelet')
        this.m.later(backoffMs(b.restartCount), () => {
          if (this.m.pods.get(`${p.namespace}/${p.name}`) !== p || p.deletionTimestamp) return
          b.restartDue = true // the next sync starts it again where the node allows
          this.sync()
        })
      }
      p.resourceVersion = this.m.nextRv()
      this.m.reconcile()
    })
  }
}

/** The container's whole process group, as the runtime stops a container. */
function stop(child: LabProcess): void {
  child.killGroup('SIGTERM')
}
