#!/bin/sh
# kupgrade lab stand-in for https://get.k3s.io (k3s-io/k3s install.sh; facts §3.1): POSIX sh, run as
# `curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.30.4+k3s1 sh -s - [server|agent] [args]`. Resolves the
# release (INSTALL_K3S_VERSION, else INSTALL_K3S_CHANNEL from the lab mirror), downloads hash and binary with curl
# (a release the mirror lacks fails "[ERROR]  Download failed"), installs /usr/local/bin/k3s, writes the unit and
# env file, and restarts the service unless INSTALL_K3S_SKIP_START=true. Its messages are install.sh's.
set -e
info() { echo '[INFO] ' "$@"; }
fatal() { echo '[ERROR] ' "$@" >&2; exit 1; }
SUDO=sudo; [ "$(id -u)" -eq 0 ] && SUDO=
. "$LAB_DIR/node.env"
if [ -n "$K3S_URL" ] || [ "$1" = agent ] || [ -f /etc/systemd/system/k3s-agent.service ]; then SYSTEM_NAME=k3s-agent; CMD=agent; else SYSTEM_NAME=k3s; CMD=server; fi
if [ -n "$INSTALL_K3S_VERSION" ]; then
  VERSION_K3S=$INSTALL_K3S_VERSION
else
  CHANNEL=${INSTALL_K3S_CHANNEL:-stable}
  info "Finding release for channel $CHANNEL"
  VERSION_K3S=""
  for v in $(printf '%s\n' $LAB_MIRROR | sort -V); do
    case "$CHANNEL" in stable|latest) VERSION_K3S=$v ;; v1.*) case "$v" in "$CHANNEL".*) VERSION_K3S=$v ;; esac ;; esac
  done
  [ -n "$VERSION_K3S" ] || fatal "Failed to find release for channel $CHANNEL"
fi
info "Using $VERSION_K3S as release"
TMP_DIR=$(mktemp -d -t k3s-install.XXXXXXXXXX)
trap 'rm -rf "$TMP_DIR"' EXIT
URL=https://github.com/k3s-io/k3s/releases/download/$VERSION_K3S
if [ "$INSTALL_K3S_SKIP_DOWNLOAD" != true ]; then
  info "Downloading hash $URL/sha256sum-amd64.txt"
  curl -o "$TMP_DIR/k3s.hash" -sfL "$URL/sha256sum-amd64.txt" || fatal 'Download failed'
  info "Downloading binary $URL/k3s"
  curl -o "$TMP_DIR/k3s.bin" -sfL "$URL/k3s" || fatal 'Download failed'
  info "Verifying binary download"
  HASH_EXPECTED=$(cut -d' ' -f1 "$TMP_DIR/k3s.hash")
  HASH_BIN=$(sha256sum "$TMP_DIR/k3s.bin" | cut -d' ' -f1)
  [ "$HASH_EXPECTED" = "$HASH_BIN" ] || fatal "Download sha256 does not match $HASH_EXPECTED, got $HASH_BIN"
  info "Installing k3s to /usr/local/bin/k3s"
  $SUDO lab-install k3s "$VERSION_K3S" /usr/local/bin/k3s
fi
info "Skipping installation of SELinux RPM"
for cmd in kubectl crictl ctr; do info "Skipping /usr/local/bin/$cmd symlink to k3s, command exists in PATH at /usr/bin/$cmd"; done
info "Creating killall script /usr/local/bin/k3s-killall.sh"
info "Creating uninstall script /usr/local/bin/$SYSTEM_NAME-uninstall.sh"
info "env: Creating environment file /etc/systemd/system/$SYSTEM_NAME.service.env"
[ -f "/etc/systemd/system/$SYSTEM_NAME.service.env" ] || $SUDO touch "/etc/systemd/system/$SYSTEM_NAME.service.env"
info "systemd: Creating service file /etc/systemd/system/$SYSTEM_NAME.service"
if [ ! -f "/etc/systemd/system/$SYSTEM_NAME.service" ]; then
  printf '[Unit]\nDescription=Lightweight Kubernetes\nDocumentation=https://k3s.io\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=notify\nEnvironmentFile=-/etc/systemd/system/%s.service.env\nExecStart=/usr/local/bin/k3s %s %s\nRestart=always\nRestartSec=5s\n\n[Install]\nWantedBy=multi-user.target\n' "$SYSTEM_NAME" "$CMD" "$INSTALL_K3S_EXEC" | $SUDO tee "/etc/systemd/system/$SYSTEM_NAME.service" >/dev/null
fi
info "systemd: Enabling $SYSTEM_NAME unit"
$SUDO systemctl daemon-reload
if [ "$INSTALL_K3S_SKIP_START" != true ]; then
  info "systemd: Starting $SYSTEM_NAME"
  $SUDO systemctl restart "$SYSTEM_NAME"
fi
