#!/bin/bash
# Body of the kubelet stand-in binary (kubeadm nodes; lab prepends LAB_VERSION). `kubelet --version` prints
# "Kubernetes vX.Y.Z" (facts §2.4); `--version=raw` the Go struct.
. "$LAB_DIR/lib.sh"
case "${1:-}" in
  --version) echo "Kubernetes $LAB_VERSION" ;;
  --version=raw) m=$(lab_minor "$LAB_VERSION"); echo "version.Info{Major:\"1\", Minor:\"$m\", GitVersion:\"$LAB_VERSION\", GitCommit:\"$LAB_COMMIT\", GitTreeState:\"clean\", BuildDate:\"2024-08-14T19:00:00Z\", GoVersion:\"go1.22.5\", Compiler:\"gc\", Platform:\"linux/${LAB_BINARY_ARCH:-amd64}\"}" ;;
  *) echo "E0000 00:00:00.000000 kupgrade lab: the kubelet runs as kubelet.service (systemctl start kubelet)" >&2; exit 1 ;;
esac
