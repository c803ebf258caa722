import type { ClusterModel } from '../fleet/cluster.js'
import type { PodState } from '../fleet/types.js'
import { podLogFromNode } from '../pod-log-source.js'

/**
 * Container logs as the real components print them (klog / structured logging), so log-reading gates match real
 * lines: kube-proxy's `"Failed to execute iptables-restore"` / `"Sync failed"` under kube-proxy-sync-failure
 * (facts §4.2), CoreDNS timing out on the kubernetes Service IP under coredns-crashloop; bare pods log their command.
 */
const klog = (level: 'I' | 'E' | 'W', at: Date, file: string, msg: string): string => {
  const mm = String(at.getUTCMonth() + 1).padStart(2, '0')
  const dd = String(at.getUTCDate()).padStart(2, '0')
  const time = at.toISOString().slice(11, 23) + '000'
  return `${level}${mm}${dd} ${time}       1 ${file}] ${msg}`
}

export function podLogs(m: ClusterModel, p: PodState): string[] {
  const fromNode = podLogFromNode(m, p)
  if (fromNode) return fromNode
  const start = p.startedAt ?? p.createdAt
  switch (p.kind) {
    case 'bare':
      return (p.bare?.log ?? '').split('\n').filter((l, i, all) => l !== '' || i < all.length - 1)
    case 'kube-proxy': {
      const out = [
        klog('I', start, 'server_linux.go:69', `"Using iptables proxy"`),
        klog('I', start, 'server.go:1050', `"Successfully retrieved node IP(s)" IPs=["${m.nodes.get(p.nodeName ?? '')?.address ?? ''}"]`),
        klog('I', start, 'server_linux.go:165', `"Using iptables Proxier"`),
        klog('I', start, 'server.go:872', `"Version info" version="${m.kubeProxyVersion}"`),
        klog('I', start, 'shared_informer.go:320', `Caches are synced for service config`),
      ]
      const since = m.faultSince('kube-proxy-sync-failure', p.nodeName)
      if (since) {
        // One failed sync every syncPeriod (30s) since the fault began; at least one so the signal is immediate.
        const syncs = Math.min(20, 1 + Math.floor((Date.now() - since.getTime()) / 30_000))
        for (let i = 0; i < syncs; i++) {
          const at = new Date(Math.max(since.getTime(), start.getTime()) + i * 30_000)
          out.push(klog('E', at, 'proxier.go:1562', `"Failed to execute iptables-restore" err=<\n\texit status 1: iptables-restore: line 86 failed\n > ipFamily="IPv4"`))
          out.push(klog('I', at, 'proxier.go:819', `"Sync failed" ipFamily="IPv4" retryingTime="30s"`))
        }
      }
      return out
    }
    case 'coredns': {
      if (m.hasFault('coredns-crashloop')) {
        const ip = m.distribution === 'k3s' ? '10.43.0.1' : '10.96.0.1'
        return [
          '[INFO] plugin/kubernetes: waiting for Kubernetes API before starting server',
          `[ERROR] plugin/kubernetes: pkg/mod/k8s.io/client-go@v0.27.4/tools/cache/reflector.go:231: Failed to watch *v1.Namespace: failed to list *v1.Namespace: Get "https://${ip}:443/api/v1/namespaces?limit=500&resourceVersion=0": dial tcp ${ip}:443: i/o timeout`,
          '[FATAL] plugin/kubernetes: timed out waiting for Kubernetes API',
        ]
      }
      return ['.:53', '[INFO] plugin/reload: Running configuration SHA512 = 591cf328cccc12bc490481273e738df59329c62c0b729d94e8b61db9961c2fa5', 'CoreDNS-1.11.1', 'linux/amd64, go1.20.7, ae2bbc2']
    }
    default:
      return [`${start.toISOString()} ${p.container} started`]
  }
}
