import type { Driver, NodeActionTemplate } from './types.js'

/**
 * kubeadm: packages from pkgs.k8s.io, `kubeadm upgrade apply` on the first control-plane node and `kubeadm upgrade
 * node` everywhere else, then kubelet and kubectl packages and a kubelet restart (facts §3.3).
 */
export const kubeadm: Driver = {
  name: 'kubeadm',
  serviceName: () => 'kubelet',
  planBackup: (hop) => [
    {
      action: 'backup',
      title: `etcd snapshot before ${hop.to.kubernetes} (etcdctl snapshot save with the kubeadm etcd client certificate)`,
      params: { dir: '/var/lib/etcd-backup' },
    },
  ],
  planNodeUpgrade: (hop, node) => {
    const pkg = hop.to.package!
    const steps: NodeActionTemplate[] = [
      {
        action: 'upgrade-package',
        title: `upgrade kubeadm package → ${pkg}`,
        undo: 'reinstall the previous kubeadm package and hold it',
        params: { packages: ['kubeadm'], version: pkg },
      },
    ]
    if (node.role === 'control-plane' && node.firstControlPlane) {
      steps.push({
        action: 'upgrade-control-plane',
        title: `kubeadm upgrade apply ${hop.to.kubernetes}`,
        undo: 'restore the static pod manifests and etcd data kubeadm backed up under /etc/kubernetes/tmp',
        params: { command: 'apply', version: hop.to.kubernetes },
      })
    } else {
      steps.push({
        action: 'upgrade-control-plane',
        title: `kubeadm upgrade node${node.lastControlPlane ? ' (last control-plane node: kube-proxy and CoreDNS addons follow)' : ''}`,
        undo: node.role === 'control-plane' ? 'restore the static pod manifests kubeadm backed up under /etc/kubernetes/tmp' : 'restore the previous kubelet configuration',
        params: { command: 'node' },
      })
    }
    steps.push(
      {
        action: 'upgrade-package',
        title: `upgrade kubelet and kubectl packages → ${pkg}`,
        undo: 'reinstall the previous kubelet and kubectl packages and hold them',
        params: { packages: ['kubelet', 'kubectl'], version: pkg },
      },
      { action: 'restart', title: 'restart kubelet (systemctl daemon-reload; systemctl restart kubelet)', params: { service: 'kubelet' } },
    )
    return steps
  },
}
