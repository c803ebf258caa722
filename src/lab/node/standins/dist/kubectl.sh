#!/bin/bash
# Body of the kubectl package binary on kubeadm nodes (lab prepends LAB_VERSION). `kubectl version --client` prints
# the package's version (facts §2.5); anything else goes to the host's real kubectl (the lab API servers are on
# loopback, so it reaches them like a node's kubectl would), except into the api-vip-unreachable fault.
. "$LAB_DIR/lib.sh"
if [ "${1:-}" = version ] && [[ " $* " == *" --client"* ]]; then
  if [[ " $* " == *" -o json"* ]] || [[ " $* " == *"--output=json"* ]]; then
    m=$(lab_minor "$LAB_VERSION")
    printf '{\n  "clientVersion": {\n    "major": "1",\n    "minor": "%s",\n    "gitVersion": "%s",\n    "gitCommit": "%s",\n    "gitTreeState": "clean",\n    "buildDate": "2024-08-14T19:00:00Z",\n    "goVersion": "go1.22.5",\n    "compiler": "gc",\n    "platform": "linux/%s"\n  },\n  "kustomizeVersion": "v5.0.4-0.20230601165947-6ce0bf390ce3"\n}\n' "$m" "$LAB_VERSION" "$LAB_COMMIT" "${LAB_BINARY_ARCH:-amd64}"
  else
    echo "Client Version: $LAB_VERSION"
    echo "Kustomize Version: v5.0.4-0.20230601165947-6ce0bf390ce3"
  fi
  exit 0
fi
[ -n "$LAB_REAL_KUBECTL" ] || { echo "kupgrade lab: no kubectl on the lab host" >&2; exit 1; }
# Under api-vip-unreachable, a kubectl aimed at the VIP (or the ClusterIP) from this node cannot connect: its dial
# times out after --request-timeout (or kubectl's 30 s dial timeout) with kubectl's own message.
if lab_fault api-vip-unreachable; then
  server="" kc=${KUBECONFIG:-$HOME/.kube/config} rt=""
  prev=""
  for a in "$@"; do
    case "$prev" in --server|-s) server=$a ;; --kubeconfig) kc=$a ;; --request-timeout) rt=$a ;; esac
    case "$a" in --server=*) server=${a#*=} ;; --kubeconfig=*) kc=${a#*=} ;; --request-timeout=*) rt=${a#*=} ;; esac
    prev=$a
  done
  [ -n "$server" ] || server=$(sed -n 's/^ *server: *//p' "${kc%%:*}" 2>/dev/null | head -n1)
  hp=${server#*://}; hp=${hp%%/*}; h=${hp%:*}
  if [ "$h" = "$LAB_API_HOST" ] || [ "$h" = "$LAB_CLUSTER_IP" ]; then
    case "$rt" in *ms) ms=${rt%ms} ;; *m) ms=$(( ${rt%m} * 60000 )) ;; *s) ms=$(( ${rt%s} * 1000 )) ;; [0-9]*) ms=$(( rt * 1000 )) ;; *) ms=$(lab_fault_param api-vip-unreachable hangMs 30000) ;; esac
    [ "$ms" -gt 0 ] 2>/dev/null || ms=$(lab_fault_param api-vip-unreachable hangMs 30000)
    sleep "$(awk "BEGIN{printf \"%.3f\", $ms/1000}")"
    echo "Unable to connect to the server: dial tcp $hp: i/o timeout" >&2
    exit 1
  fi
fi
lab_kubectl_into kubectl "$LAB_VERSION"
exec "$kubectl" "$@"
