/**
 * API versions Kubernetes stopped serving, from the upstream Deprecated API Migration Guide
 * (kubernetes/website content/en/docs/reference/using-api/deprecation-guide.md). Shipped with the tool, like
 * talosctl's and EKS upgrade insights' tables; `removedIn` is the first minor that no longer serves it.
 */
export interface RemovedApi {
  group: string
  version: string
  resource: string
  removedIn: string
  replacement?: string
}

const r = (group: string, version: string, resources: string[], removedIn: string, replacement?: string): RemovedApi[] =>
  resources.map((resource) => ({ group, version, resource, removedIn, ...(replacement ? { replacement } : {}) }))

export const REMOVED_APIS: RemovedApi[] = [
  ...r('extensions', 'v1beta1', ['deployments', 'daemonsets', 'replicasets', 'networkpolicies', 'podsecuritypolicies'], '1.16', 'apps/v1, networking.k8s.io/v1, policy/v1beta1'),
  ...r('apps', 'v1beta1', ['deployments', 'statefulsets', 'replicasets'], '1.16', 'apps/v1'),
  ...r('apps', 'v1beta2', ['deployments', 'statefulsets', 'daemonsets', 'replicasets'], '1.16', 'apps/v1'),
  ...r('admissionregistration.k8s.io', 'v1beta1', ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'], '1.22', 'admissionregistration.k8s.io/v1'),
  ...r('apiextensions.k8s.io', 'v1beta1', ['customresourcedefinitions'], '1.22', 'apiextensions.k8s.io/v1'),
  ...r('apiregistration.k8s.io', 'v1beta1', ['apiservices'], '1.22', 'apiregistration.k8s.io/v1'),
  ...r('certificates.k8s.io', 'v1beta1', ['certificatesigningrequests'], '1.22', 'certificates.k8s.io/v1'),
  ...r('coordination.k8s.io', 'v1beta1', ['leases'], '1.22', 'coordination.k8s.io/v1'),
  ...r('extensions', 'v1beta1', ['ingresses'], '1.22', 'networking.k8s.io/v1'),
  ...r('networking.k8s.io', 'v1beta1', ['ingresses', 'ingressclasses'], '1.22', 'networking.k8s.io/v1'),
  ...r('rbac.authorization.k8s.io', 'v1beta1', ['clusterroles', 'clusterrolebindings', 'roles', 'rolebindings'], '1.22', 'rbac.authorization.k8s.io/v1'),
  ...r('scheduling.k8s.io', 'v1beta1', ['priorityclasses'], '1.22', 'scheduling.k8s.io/v1'),
  ...r('storage.k8s.io', 'v1beta1', ['csidrivers', 'csinodes', 'storageclasses', 'volumeattachments'], '1.22', 'storage.k8s.io/v1'),
  ...r('batch', 'v1beta1', ['cronjobs'], '1.25', 'batch/v1'),
  ...r('discovery.k8s.io', 'v1beta1', ['endpointslices'], '1.25', 'discovery.k8s.io/v1'),
  ...r('events.k8s.io', 'v1beta1', ['events'], '1.25', 'events.k8s.io/v1'),
  ...r('autoscaling', 'v2beta1', ['horizontalpodautoscalers'], '1.25', 'autoscaling/v2'),
  ...r('policy', 'v1beta1', ['poddisruptionbudgets'], '1.25', 'policy/v1'),
  ...r('policy', 'v1beta1', ['podsecuritypolicies'], '1.25', 'Pod Security Admission (no replacement API)'),
  ...r('node.k8s.io', 'v1beta1', ['runtimeclasses'], '1.25', 'node.k8s.io/v1'),
  ...r('flowcontrol.apiserver.k8s.io', 'v1beta1', ['flowschemas', 'prioritylevelconfigurations'], '1.26', 'flowcontrol.apiserver.k8s.io/v1'),
  ...r('autoscaling', 'v2beta2', ['horizontalpodautoscalers'], '1.26', 'autoscaling/v2'),
  ...r('storage.k8s.io', 'v1beta1', ['csistoragecapacities'], '1.27', 'storage.k8s.io/v1'),
  ...r('flowcontrol.apiserver.k8s.io', 'v1beta2', ['flowschemas', 'prioritylevelconfigurations'], '1.29', 'flowcontrol.apiserver.k8s.io/v1'),
  ...r('flowcontrol.apiserver.k8s.io', 'v1beta3', ['flowschemas', 'prioritylevelconfigurations'], '1.32', 'flowcontrol.apiserver.k8s.io/v1'),
]
