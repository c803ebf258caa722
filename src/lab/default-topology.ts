import type { TopologyInput } from './topology.js'

/**
 * The fleet `kupgrade demo` (and `lab up` without --topology) runs: a small k3s staging cluster and a
 * production-shaped kubeadm cluster (3 control-plane nodes for etcd quorum, 2 workers), both on v1.29 with v1.30 in
 * the mirror, running workloads with PodDisruptionBudgets so drains have something real to respect.
 * examples/lab/demo.yaml is the same topology as a file (a test keeps the two equal).
 */
export function defaultTopology(): TopologyInput {
  return {
    apiVersion: 'kupgrade.dev/v1alpha1',
    kind: 'LabTopology',
    metadata: { name: 'demo' },
    spec: {
      mirror: ['v1.29.6', 'v1.29.8', 'v1.30.4'],
      timing: { serviceRestart: '500ms', readyDelay: '1s', reboot: '2s', drainEvictionDelay: '500ms' },
      clusters: [
        {
          name: 'staging',
          stage: 'staging',
          distribution: 'k3s',
          version: 'v1.29.6',
          nodes: [
            { name: 'staging-server-1', role: 'control-plane', os: 'ubuntu-22.04' },
            { name: 'staging-agent-1', role: 'worker', os: 'ubuntu-22.04' },
            { name: 'staging-agent-2', role: 'worker', os: 'ubuntu-22.04' },
          ],
          workloads: {
            deployments: [{ name: 'web', namespace: 'default', replicas: 2, requests: { cpu: '250m', memory: '256Mi' }, pdb: { minAvailable: 1 } }],
            daemonSets: [],
            coredns: { replicas: 1 },
          },
        },
        {
          name: 'production',
          stage: 'production',
          distribution: 'kubeadm',
          version: 'v1.29.6',
          nodes: [
            { name: 'prod-cp-1', role: 'control-plane', os: 'debian-12' },
            { name: 'prod-cp-2', role: 'control-plane', os: 'debian-12' },
            { name: 'prod-cp-3', role: 'control-plane', os: 'debian-12' },
            { name: 'prod-worker-1', role: 'worker', os: 'debian-12', allocatable: { cpu: '8', memory: '16Gi' } },
            { name: 'prod-worker-2', role: 'worker', os: 'debian-12', allocatable: { cpu: '8', memory: '16Gi' } },
          ],
          workloads: {
            deployments: [
              { name: 'web', namespace: 'shop', replicas: 4, requests: { cpu: '500m', memory: '512Mi' }, pdb: { maxUnavailable: 1 } },
              { name: 'checkout', namespace: 'shop', replicas: 2, requests: { cpu: '250m', memory: '256Mi' }, pdb: { minAvailable: 1 } },
            ],
            daemonSets: [{ name: 'node-exporter', namespace: 'monitoring', requests: { cpu: '50m', memory: '64Mi' } }],
            coredns: { replicas: 2 },
          },
        },
      ],
    },
  }
}
