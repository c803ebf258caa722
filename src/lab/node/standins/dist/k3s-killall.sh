#!/bin/sh
# kupgrade lab stand-in: /usr/local/bin/k3s-killall.sh (facts §3.1): stops k3s or k3s-agent and its containers
# (here: the service), keeps the data. The real script runs under `set -x`, so it traces its commands on stderr.
[ "$(id -u)" -eq 0 ] || exec sudo "$0" "$@"
for unit in k3s k3s-agent; do
  if [ -f "/etc/systemd/system/$unit.service" ]; then
    echo "+ systemctl stop $unit" >&2
    systemctl stop "$unit"
  fi
done
echo "+ killtree" >&2
echo "+ do_unmount_and_remove /run/k3s" >&2
rm -rf /run/k3s
echo "+ ip link delete cni0" >&2
echo "+ ip link delete flannel.1" >&2
echo "+ iptables-save | grep -v KUBE- | grep -v CNI- | grep -iv flannel | iptables-restore" >&2
exit 0
