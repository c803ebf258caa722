import { apiVipGate } from './checks/api-vip.js'
import { capacityGate } from './checks/capacity.js'
import { certificatesGate } from './checks/certificates.js'
import { commandGate } from './checks/command.js'
import { controlPlaneHaGate } from './checks/control-plane-ha.js'
import { diskSpaceGate } from './checks/disk-space.js'
import { dnsGate } from './checks/dns.js'
import { drainFeasibilityGate } from './checks/drain-feasibility.js'
import { etcdGate } from './checks/etcd.js'
import { eventStormGate } from './checks/event-storm.js'
import { httpGate } from './checks/http.js'
import { iptablesBackendGate } from './checks/iptables-backend.js'
import { kubeProxySyncGate } from './checks/kube-proxy-sync.js'
import { nodesReadyGate } from './checks/nodes-ready.js'
import { pendingPodsGate } from './checks/pending-pods.js'
import { prometheusGate } from './checks/prometheus.js'
import { releaseSourceGate } from './checks/release-source.js'
import { removedApisGate } from './checks/removed-apis.js'
import { systemPodsGate } from './checks/system-pods.js'
import * as versionSkew from './checks/version-skew.js'
import { upgradePathGate } from './checks/upgrade-path.js'
import type { Gate } from './types.js'

/**
 * The one registry: catalog id → implementation, written out by hand so that a gate cannot be added or lost by a
 * file appearing or vanishing. test/gates/registry.test.ts proves it matches the catalog, the JSON Schema and the
 * README's gate table.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyGate = Gate<any>

/** version-skew is written by another module owner; take whichever export of that file is the gate. */
const fromModule = (m: Record<string, unknown>, id: string): AnyGate => {
  const g = Object.values(m).find((v): v is AnyGate => typeof v === 'object' && v !== null && (v as AnyGate).id === id && typeof (v as AnyGate).check === 'function')
  if (!g) throw new Error(`src/gates/checks/${id}.ts exports no gate with id ${id}`)
  return g
}

export const GATE_REGISTRY: Readonly<Record<string, AnyGate>> = Object.freeze({
  'version-skew': fromModule(versionSkew, 'version-skew'),
  'upgrade-path': upgradePathGate,
  'release-source': releaseSourceGate,
  'api-vip': apiVipGate,
  'nodes-ready': nodesReadyGate,
  certificates: certificatesGate,
  'disk-space': diskSpaceGate,
  etcd: etcdGate,
  'control-plane-ha': controlPlaneHaGate,
  'kube-proxy-sync': kubeProxySyncGate,
  'iptables-backend': iptablesBackendGate,
  'system-pods': systemPodsGate,
  dns: dnsGate,
  'pending-pods': pendingPodsGate,
  'event-storm': eventStormGate,
  capacity: capacityGate,
  'drain-feasibility': drainFeasibilityGate,
  'removed-apis': removedApisGate,
  command: commandGate,
  http: httpGate,
  prometheus: prometheusGate,
})
