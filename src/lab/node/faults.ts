import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { append, journalLine, klogPrefix, servicePid } from './journal.js'
import { NODE_FAULTS, type NodeFault } from './types.js'

/**
 * Node-side faults. Each active fault is a file lab/faults/NAME holding its params as `key=value` lines (plus
 * `since_ms`), which is all the stand-ins need (`lab_fault NAME`, `lab_fault_param NAME KEY DEFAULT` in lib.sh).
 * Faults with a life of their own (the kube-proxy sync loop) run here.
 */
export type FaultParams = Record<string, unknown>

export interface FaultHost {
  faultsDir: string
  stateDir: string
  node: string
  /** Where kube-proxy logs: the k3s journal file, or /var/log/kube-proxy.log of a kubeadm/k0s node. */
  kubeProxyLogs: () => { file: string; journalIdent?: string }[]
  syncMs: number
}

export function isNodeFault(name: string): name is NodeFault {
  return (NODE_FAULTS as readonly string[]).includes(name)
}

export class NodeFaults {
  private syncTimer?: NodeJS.Timeout

  constructor(private readonly host: FaultHost) {}

  active(name: NodeFault): boolean {
    return existsSync(join(this.host.faultsDir, name))
  }

  params(name: NodeFault): FaultParams {
    const file = join(this.host.faultsDir, name)
    if (!existsSync(file)) return {}
    const out: FaultParams = {}
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const i = line.indexOf('=')
      if (i > 0) out[line.slice(0, i)] = line.slice(i + 1)
    }
    return out
  }

  set(name: NodeFault, on: boolean, params: FaultParams = {}): void {
    const file = join(this.host.faultsDir, name)
    if (!on) {
      rmSync(file, { force: true })
      if (name === 'kube-proxy-sync-failure') this.stopSyncLoop()
      return
    }
    const lines = Object.entries(params).map(([k, v]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`fault ${name}: bad parameter name ${JSON.stringify(k)}`)
      const text = String(v)
      if (/[\n\r]/.test(text)) throw new Error(`fault ${name}: parameter ${k} must be one line`)
      return `${k}=${text}`
    })
    writeFileSync(file, [...lines, `since_ms=${Date.now()}`].join('\n') + '\n')
    if (name === 'kube-proxy-sync-failure') this.startSyncLoop(params)
  }

  /** Re-arms loops for faults that survived a lab restart (their files are on disk). */
  resume(): void {
    if (this.active('kube-proxy-sync-failure')) this.startSyncLoop(this.params('kube-proxy-sync-failure'))
  }

  stop(): void {
    this.stopSyncLoop()
  }

  /**
   * kube-proxy's failing sync loop (facts §4.2): every sync period one more iptables-restore failure is counted
   * (kubeproxy_sync_proxy_rules_iptables_restore_failures_total) and the two log lines are written, in klog form
   * (`Sync failed; retrying in 30s`, older kube-proxy) or structured form (`"Sync failed" retryingTime="30s"`).
   */
  private startSyncLoop(params: FaultParams): void {
    this.stopSyncLoop()
    const structured = params['format'] === 'structured'
    const counter = join(this.host.stateDir, 'kproxy-restore-failures')
    const pid = servicePid(this.host.node)
    const tick = () => {
      const n = (existsSync(counter) ? Number(readFileSync(counter, 'utf8')) || 0 : 0) + 1
      writeFileSync(counter, `${n}\n`)
      const now = new Date()
      const msgs = structured
        ? [`${klogPrefix('E', pid, 'proxier.go:1564', now)}"Failed to execute iptables-restore" err=<`, `\texit status 1: iptables-restore: line 86 failed`, ' >',
           `${klogPrefix('I', pid, 'proxier.go:833', now)}"Sync failed" retryingTime="30s"`]
        : [`${klogPrefix('E', pid, 'proxier.go:1598', now)}Failed to execute iptables-restore: exit status 1 (iptables-restore: line 86 failed`, ')',
           `${klogPrefix('I', pid, 'proxier.go:879', now)}Sync failed; retrying in 30s`]
      for (const target of this.host.kubeProxyLogs()) {
        const text = target.journalIdent
          ? msgs.map((m) => journalLine(this.host.node, target.journalIdent!, pid, m, now)).join('')
          : msgs.join('\n') + '\n'
        append(target.file, text)
      }
    }
    tick()
    this.syncTimer = setInterval(tick, Math.max(50, Number(params['intervalMs']) || this.host.syncMs))
    this.syncTimer.unref()
  }

  private stopSyncLoop(): void {
    if (this.syncTimer) clearInterval(this.syncTimer)
    this.syncTimer = undefined
  }
}
