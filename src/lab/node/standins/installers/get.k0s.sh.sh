#!/bin/sh
# kupgrade lab stand-in for https://get.k0s.sh (facts §3.2): `curl -sSLf https://get.k0s.sh | sudo K0S_VERSION=v… sh`
# downloads the release binary to /usr/local/bin/k0s; it does not restart k0s (that is `k0s stop` / `k0s start`).
set -e
. "$LAB_DIR/node.env"
k0sInstallPath=/usr/local/bin
k0sBinary=$k0sInstallPath/k0s
if [ -z "$K0S_VERSION" ]; then K0S_VERSION=$(printf '%s\n' $LAB_MIRROR | sort -V | tail -n1); fi
# _detect_arch
case "$(uname -m)" in
  amd64|x86_64) k0sArch=amd64 ;;
  arm64|aarch64) k0sArch=arm64 ;;
  armv7l|armv8l|arm) k0sArch=arm ;;
  *) echo "Unsupported processor architecture: $(uname -m)" 1>&2; exit 1 ;;
esac
k0sDownloadUrl="https://github.com/k0sproject/k0s/releases/download/$K0S_VERSION/k0s-$K0S_VERSION-$k0sArch"
echo "Downloading k0s from URL: $k0sDownloadUrl"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
curl -sSLf "$k0sDownloadUrl" >"$tmp"
lab-install k0s "$K0S_VERSION" "$k0sBinary" "$tmp"
chmod 755 -- "$k0sBinary"
echo "k0s is now executable in $k0sInstallPath"
