#!/bin/sh
# kupgrade lab stand-in: /usr/local/bin/k3s-uninstall.sh and k3s-agent-uninstall.sh (facts §3.1): killall, then
# remove the binary, the units and the data (/var/lib/rancher/k3s, /etc/rancher/k3s; /etc/rancher/node with it).
set -e
[ "$(id -u)" -eq 0 ] || exec sudo "$0" "$@"
/usr/local/bin/k3s-killall.sh
for unit in k3s k3s-agent; do
  if [ -f "/etc/systemd/system/$unit.service" ]; then
    echo "+ systemctl disable $unit" >&2
    rm -f "/etc/systemd/system/$unit.service" "/etc/systemd/system/$unit.service.env"
  fi
done
echo "+ rm -f /usr/local/bin/k3s" >&2
rm -f /usr/local/bin/k3s /usr/local/bin/k3s-killall.sh
printf '{"type":"installed","binary":"k3s","version":""}\n' >> "$LAB_DIR/events.jsonl"
printf '{"type":"reset"}\n' >> "$LAB_DIR/events.jsonl"
echo "+ rm -rf /etc/rancher/k3s /var/lib/rancher/k3s /etc/rancher/node" >&2
rm -rf /etc/rancher/k3s /var/lib/rancher/k3s /etc/rancher/node /var/lib/kubelet/*
# containerd's image store was under /var/lib/rancher/k3s/agent/containerd: the images imported from archives went too.
rm -f "$LAB_DIR/state/airgap-images"
rm -f "$0"
