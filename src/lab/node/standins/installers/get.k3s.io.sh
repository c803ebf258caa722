#!/bin/sh
# kupgrade lab stand-in for https://get.k3s.io (k3s-io/k3s install.sh; facts §3.1): POSIX sh, run as
# `curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.30.4+k3s1 sh -s - [server|agent] [args]`. Resolves the
# release (INSTALL_K3S_VERSION, else INSTALL_K3S_CHANNEL from the lab mirror), downloads hash and binary with curl
# (a release the mirror lacks fails "[ERROR]  Download failed"), installs /usr/local/bin/k3s, writes the unit and
# env file, and restarts the service unless INSTALL_K3S_SKIP_START=true. Its messages and decisions are install.sh's:
#  - the command is $1 (or INSTALL_K3S_EXEC's first word); given only flags or nothing it is `agent` when K3S_URL is
#    set (K3S_TOKEN or K3S_TOKEN_FILE then required) and `server` otherwise — so re-running it on an agent without
#    K3S_URL/K3S_TOKEN installs a k3s *server* unit there, whatever is already installed (setup_env);
#  - the unit file and the env file are rewritten on every run, the env file from the K3S_*/CONTAINERD_* variables of
#    this run's environment (systemd_disable, create_env_file, create_systemd_service_file);
#  - the service is restarted only when the binary, unit or env file changed (or INSTALL_K3S_FORCE_RESTART=true).
set -e
info() { echo '[INFO] ' "$@"; }
fatal() { echo '[ERROR] ' "$@" >&2; exit 1; }
SUDO=sudo; [ "$(id -u)" -eq 0 ] && SUDO=
. "$LAB_DIR/node.env"
# --- re-evaluate args to include env command (install.sh: eval set -- $(escape "${INSTALL_K3S_EXEC}") "$@") ---
# shellcheck disable=SC2086
[ -n "$INSTALL_K3S_EXEC" ] && set -- $INSTALL_K3S_EXEC "$@"
case "$1" in
  -*|"")
    if [ -z "$K3S_URL" ]; then
      CMD_K3S=server
    else
      if [ -z "$K3S_TOKEN" ] && [ -z "$K3S_TOKEN_FILE" ]; then
        fatal "Defaulted k3s exec command to 'agent' because K3S_URL is defined, but K3S_TOKEN or K3S_TOKEN_FILE is not defined."
      fi
      CMD_K3S=agent
    fi ;;
  *) CMD_K3S=$1; shift ;;
esac
case "$K3S_URL" in ""|https://*) ;; *) fatal "Only https:// URLs are supported for K3S_URL (have $K3S_URL)" ;; esac
# quote, quote_indent: install.sh's own, so the unit's ExecStart is laid out as upstream writes it (one quoted word per line).
quote() { for arg in "$@"; do printf '%s\n' "$arg" | sed "s/'/'\\\\''/g;1s/^/'/;\$s/\$/'/"; done; }
quote_indent() { printf ' \\\n'; for arg in "$@"; do printf '\t%s \\\n' "$(quote "$arg")"; done; }
CMD_K3S_EXEC="$CMD_K3S$(quote_indent "$@")"
if [ -n "$INSTALL_K3S_NAME" ]; then SYSTEM_NAME=k3s-$INSTALL_K3S_NAME
elif [ "$CMD_K3S" = server ]; then SYSTEM_NAME=k3s
else SYSTEM_NAME=k3s-$CMD_K3S; fi
# setup_env: a server's unit is Type=notify (k3s tells systemd once it is up), an agent's Type=exec.
if [ -n "$INSTALL_K3S_TYPE" ]; then SYSTEMD_TYPE=$INSTALL_K3S_TYPE
elif [ "$CMD_K3S" = server ]; then SYSTEMD_TYPE=notify
else SYSTEMD_TYPE=exec; fi
FILE_K3S_SERVICE=/etc/systemd/system/$SYSTEM_NAME.service
FILE_K3S_ENV=/etc/systemd/system/$SYSTEM_NAME.service.env
installed_hashes() { $SUDO sha256sum /usr/local/bin/k3s "$FILE_K3S_SERVICE" "$FILE_K3S_ENV" 2>&1 || true; }
PRE_INSTALL_HASHES=$(installed_hashes)
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
TMP_DIR=$(mktemp -d -t k3s-install.XXXXXXXXXX)
trap 'rm -rf "$TMP_DIR"' EXIT
if [ "$INSTALL_K3S_SKIP_DOWNLOAD" = true ] || [ "$INSTALL_K3S_SKIP_DOWNLOAD" = binary ]; then
  info 'Skipping k3s download and verify'
  [ -x /usr/local/bin/k3s ] || fatal "Executable k3s binary not found at /usr/local/bin/k3s"
else
  # setup_verify_arch: the release asset of this machine's architecture.
  ARCH=$(uname -m)
  case $ARCH in
    amd64|x86_64) ARCH=amd64; SUFFIX= ;;
    arm64|aarch64) ARCH=arm64; SUFFIX=-$ARCH ;;
    s390x) ARCH=s390x; SUFFIX=-$ARCH ;;
    arm*) ARCH=arm; SUFFIX=-${ARCH}hf ;;
    *) fatal "Unsupported architecture $ARCH" ;;
  esac
  info "Using $VERSION_K3S as release"
  URL=https://github.com/k3s-io/k3s/releases/download/$VERSION_K3S
  info "Downloading hash $URL/sha256sum-$ARCH.txt"
  curl -o "$TMP_DIR/k3s.hash" -sfL "$URL/sha256sum-$ARCH.txt" || fatal 'Download failed'
  HASH_EXPECTED=$(grep " k3s$SUFFIX$" "$TMP_DIR/k3s.hash" | cut -d' ' -f1)
  if [ -x /usr/local/bin/k3s ] && [ "$(sha256sum /usr/local/bin/k3s | cut -d' ' -f1)" = "$HASH_EXPECTED" ]; then
    info 'Skipping binary downloaded, installed k3s matches hash'
  else
    info "Downloading binary $URL/k3s$SUFFIX"
    curl -o "$TMP_DIR/k3s.bin" -sfL "$URL/k3s$SUFFIX" || fatal 'Download failed'
    info "Verifying binary download"
    HASH_BIN=$(sha256sum "$TMP_DIR/k3s.bin" | cut -d' ' -f1)
    [ "$HASH_EXPECTED" = "$HASH_BIN" ] || fatal "Download sha256 does not match $HASH_EXPECTED, got $HASH_BIN"
    info "Installing k3s to /usr/local/bin/k3s"
    $SUDO lab-install k3s "$VERSION_K3S" /usr/local/bin/k3s "$TMP_DIR/k3s.bin"
  fi
fi
info "Skipping installation of SELinux RPM"
for cmd in kubectl crictl ctr; do info "Skipping /usr/local/bin/$cmd symlink to k3s, command exists in PATH at /usr/bin/$cmd"; done
info "Creating killall script /usr/local/bin/k3s-killall.sh"
info "Creating uninstall script /usr/local/bin/$SYSTEM_NAME-uninstall.sh"
$SUDO install -m 0755 "$LAB_DIR/k3s-killall.sh" /usr/local/bin/k3s-killall.sh
$SUDO install -m 0755 "$LAB_DIR/k3s-uninstall.sh" "/usr/local/bin/$SYSTEM_NAME-uninstall.sh"
# systemd_disable: this run's unit and env file replace whatever was there.
$SUDO rm -f "$FILE_K3S_SERVICE" "$FILE_K3S_ENV"
info "env: Creating environment file $FILE_K3S_ENV"
$SUDO touch "$FILE_K3S_ENV"
$SUDO chmod 0600 "$FILE_K3S_ENV"
sh -c export | while read -r x v; do echo "$v"; done | grep -E '^(K3S|CONTAINERD)_' | $SUDO tee "$FILE_K3S_ENV" >/dev/null || true
sh -c export | while read -r x v; do echo "$v"; done | grep -Ei '^(NO|HTTP|HTTPS)_PROXY' | $SUDO tee -a "$FILE_K3S_ENV" >/dev/null || true
info "systemd: Creating service file $FILE_K3S_SERVICE"
printf '[Unit]\nDescription=Lightweight Kubernetes\nDocumentation=https://k3s.io\nWants=network-online.target\nAfter=network-online.target\n\n[Install]\nWantedBy=multi-user.target\n\n[Service]\nType=%s\nEnvironmentFile=-/etc/default/%%N\nEnvironmentFile=-/etc/sysconfig/%%N\nEnvironmentFile=-%s\nKillMode=process\nDelegate=yes\nUser=root\nRestart=always\nRestartSec=5s\nExecStart=/usr/local/bin/k3s \\\n    %s\n\n' "$SYSTEMD_TYPE" "$FILE_K3S_ENV" "$CMD_K3S_EXEC" | $SUDO tee "$FILE_K3S_SERVICE" >/dev/null
[ "$INSTALL_K3S_SKIP_ENABLE" = true ] && exit 0
info "systemd: Enabling $SYSTEM_NAME unit"
$SUDO systemctl daemon-reload
[ "$INSTALL_K3S_SKIP_START" = true ] && exit 0
if [ "$PRE_INSTALL_HASHES" = "$(installed_hashes)" ] && [ "$INSTALL_K3S_FORCE_RESTART" != true ]; then
  info 'No change detected so skipping service start'
  exit 0
fi
info "systemd: Starting $SYSTEM_NAME"
$SUDO systemctl restart "$SYSTEM_NAME"
