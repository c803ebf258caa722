import type { NodeActionTemplate } from './types.js'

export interface OsTarget {
  packages: 'all' | 'security' | string[]
  reboot: 'never' | 'if-required' | 'always'
}

/**
 * OS packages through the node's own package manager (apt, dnf, or Flatcar's update_engine, detected per node at
 * apply time), with Kubernetes packages left held. Reboots follow the plan's policy; "if-required" reads the
 * distribution's own signal (facts §6).
 */
export function planOsUpgrade(os: OsTarget): NodeActionTemplate[] {
  const what = os.packages === 'all' ? 'all packages' : os.packages === 'security' ? 'security updates' : `packages ${os.packages.join(', ')}`
  const steps: NodeActionTemplate[] = [
    {
      action: 'os-upgrade',
      title: `upgrade OS ${what} (apt, dnf or update_engine; Kubernetes packages stay held)`,
      undo: 'not undone: OS packages are rolled forward, the node is rebuilt if it cannot recover',
      params: { packages: os.packages },
    },
  ]
  if (os.reboot !== 'never') {
    steps.push({
      action: 'reboot',
      title: os.reboot === 'always' ? 'reboot and wait for SSH' : 'reboot if required (/var/run/reboot-required, needs-restarting -r, update_engine) and wait for SSH',
      params: { policy: os.reboot },
    })
  }
  return steps
}
