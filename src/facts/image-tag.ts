/**
 * The version in a container image reference: `registry.k8s.io/kube-proxy:v1.29.2` → `v1.29.2`. kubeadm writes
 * `+` as `_` in tags (KubernetesVersionToImageTag, facts §2.7), so `v1.29.2_k3s1`-style tags are turned back.
 * A registry port (`host:5000/kube-proxy`) is not a tag; a digest (`@sha256:…`) is dropped.
 */
export function imageTag(image: string): string | undefined {
  const noDigest = image.split('@')[0]!
  const lastSlash = noDigest.lastIndexOf('/')
  const colon = noDigest.indexOf(':', lastSlash + 1)
  if (colon < 0) return undefined
  const tag = noDigest.slice(colon + 1)
  return tag ? tag.replace(/_/g, '+') : undefined
}
