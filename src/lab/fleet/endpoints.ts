import type { ClusterModel } from './cluster.js'
import { servingApiServers } from './apiservers.js'

/**
 * Endpoints and EndpointSlice of the `default/kubernetes` Service, as the apiserver's endpoint reconciler keeps them:
 * one address per apiserver that serves now (its node's address and the secure port), so a stopped control-plane
 * service disappears from them and comes back when it runs again.
 */
type Obj = Record<string, unknown>
const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z')

export function kubernetesEndpoints(m: ClusterModel): Obj {
  const addresses = servingApiServers(m).map((n) => ({ ip: n.address }))
  return {
    kind: 'Endpoints', apiVersion: 'v1',
    metadata: { name: 'kubernetes', namespace: 'default', uid: `ep-${m.info.name}-kubernetes`, resourceVersion: String(m.resourceVersion), creationTimestamp: iso(m.info.createdAt), labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } },
    subsets: addresses.length ? [{ addresses, ports: [{ name: 'https', port: m.info.apiPort, protocol: 'TCP' }] }] : [],
  }
}

export function kubernetesEndpointSlice(m: ClusterModel): Obj {
  return {
    kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1',
    metadata: { name: 'kubernetes', namespace: 'default', uid: `eps-${m.info.name}-kubernetes`, resourceVersion: String(m.resourceVersion), generation: 1, creationTimestamp: iso(m.info.createdAt), labels: { 'kubernetes.io/service-name': 'kubernetes' } },
    addressType: 'IPv4',
    endpoints: servingApiServers(m).map((n) => ({ addresses: [n.address], conditions: { ready: true } })),
    ports: [{ name: 'https', port: m.info.apiPort, protocol: 'TCP' }],
  }
}
