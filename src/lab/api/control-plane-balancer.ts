import type { Socket } from 'node:net'
import type { ClusterModel } from '../fleet/cluster.js'
import { servingApiServers } from '../fleet/apiservers.js'

/**
 * The cluster's API address as a TCP load balancer in front of the control-plane nodes (an HA VIP, or the only
 * server): each new connection goes to one serving apiserver, round robin. When that node's apiserver stops (service
 * stop or restart, reboot) its connections are reset, as a real backend going away resets them, and clients reconnect
 * to another node or, with none serving, find the address refusing connections (server.ts stops listening).
 */
export class ControlPlaneBalancer {
  private readonly backends = new Map<Socket, string>()
  private next = 0

  constructor(private readonly model: ClusterModel) {}

  serving(): string[] {
    return servingApiServers(this.model).map((n) => n.name)
  }

  assign(socket: Socket): void {
    const serving = this.serving()
    if (!serving.length) return void socket.destroy()
    const node = serving[this.next++ % serving.length]!
    this.backends.set(socket, node)
    socket.once('close', () => this.backends.delete(socket))
  }

  /** Resets the connections whose apiserver no longer serves; returns whether any apiserver still serves. */
  dropUnserved(): boolean {
    const serving = new Set(this.serving())
    for (const [socket, node] of this.backends) if (!serving.has(node)) socket.destroy()
    return serving.size > 0
  }

  dropAll(): void {
    for (const socket of this.backends.keys()) socket.destroy()
    this.backends.clear()
  }
}
