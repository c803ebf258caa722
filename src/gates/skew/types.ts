import type { Distribution } from '../../plan/versions.js'

/**
 * The inputs and outputs of the version-skew policy evaluator (policy.ts). Pure data: the live gate builds a
 * `SkewState` from facts, the planner builds one per intermediate state of a plan, tests build them by hand.
 */

export type SkewComponent =
  | 'kube-apiserver'
  | 'kubelet'
  | 'kube-proxy'
  | 'kube-controller-manager'
  | 'kube-scheduler'
  | 'cloud-controller-manager'
  | 'kubectl'

export interface ComponentInstance {
  component: SkewComponent
  /** As the component reports it: `v1.30.4`, `v1.30.4+k3s1`, `1.30.4`. */
  version: string
  /** The node it runs on (kubectl: none). kube-proxy is compared with the kubelet on the same node. */
  node?: string
  /**
   * Which kube-apiserver instances it talks to. `any` (the default): through a VIP or load balancer, so every
   * apiserver of the cluster narrows its range (the policy's HA notes). `local`: only the apiserver on its own node
   * (k3s servers, kubeadm control-plane kubelets in local mode); falls back to `any` when its node runs none.
   */
  talksTo?: 'any' | 'local'
}

export interface SkewState {
  /** Adds the distribution's own rules (k0s: kube-proxy matches the kubelet; workers at most one minor older). */
  distribution?: Distribution
  components: ComponentInstance[]
}

export type SkewRule =
  | 'apiserver-ha-skew'
  | 'kubelet-newer-than-apiserver'
  | 'kubelet-too-old'
  | 'kubelet-blocks-control-plane-upgrade'
  | 'kube-proxy-newer-than-apiserver'
  | 'kube-proxy-too-old'
  | 'kube-proxy-blocks-control-plane-upgrade'
  | 'kube-proxy-vs-kubelet'
  | 'control-plane-component-newer-than-apiserver'
  | 'control-plane-component-too-old'
  | 'kubectl-skew'
  | 'k0s-kube-proxy-matches-kubelet'
  | 'k0s-worker-skew'
  | 'apiserver-skipped-minor'
  | 'apiserver-downgrade'
  | 'kubelet-too-old-for-apiserver-upgrade'
  | 'kubeadm-kubelet-too-old'
  | 'unreadable-version'

export type SkewSeverity = 'error' | 'warning' | 'unknown'

export interface SkewViolation {
  rule: SkewRule
  /** error: outside the policy; warning: legal now but blocks the next control-plane upgrade; unknown: unreadable. */
  severity: SkewSeverity
  component: SkewComponent
  node?: string
  version: string
  /** One line naming both sides and the limit, e.g. `kubelet v1.27.3 on w-1 is 4 minors older than …`. */
  message: string
}

/** `conservative`: kubelets ≥ N-2 before an apiserver moves to N (the upstream upgrade-order text); `permissive`: N-3. */
export type SkewPolicy = 'conservative' | 'permissive'
