import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { KubeProxy } from './kube-proxy.js'
import { NODE_FAULTS, type NodeFault } from './types.js'

/**
 * Node-side faults. Each active fault is a file lab/faults/NAME holding its params as `key=value` lines (plus
 * `since_ms`), which is all the stand-ins need (`lab_fault NAME`, `lab_fault_param NAME KEY DEFAULT` in lib.sh).
 * Faults with a life of their own (the kube-proxy sync loop) are started from here.
 */
export type FaultParams = Record<string, unknown>

export interface FaultHost {
  faultsDir: string
  stateDir: string
  node: string
  /** The node's kube-proxy, whose sync loop fails while kube-proxy-sync-failure is on (kube-proxy.ts). */
  kubeProxy: Pick<KubeProxy, 'startFailing' | 'stopFailing'>
}

export function isNodeFault(name: string): name is NodeFault {
  return (NODE_FAULTS as readonly string[]).includes(name)
}

export class NodeFaults {
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

  private startSyncLoop(params: FaultParams): void {
    this.host.kubeProxy.startFailing(params)
  }

  private stopSyncLoop(): void {
    this.host.kubeProxy.stopFailing()
  }
}
