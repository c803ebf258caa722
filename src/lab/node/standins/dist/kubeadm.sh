#!/bin/bash
# Body of the kubeadm stand-in binary (lab prepends LAB_VERSION/LAB_COMMIT). Formats and rules: facts §2.3
# (version -o short|json|yaml, default &version.Info{…}), §1.5 (upgrade version policy and its error rendering),
# §3.3 (upgrade plan/apply/node, SUCCESS line, backups under /etc/kubernetes/tmp, certs check-expiration table with
# Go layout "Jan 02, 2006 15:04 MST" and ShortHumanDuration, reset -f).
. "$LAB_DIR/lib.sh"
M=/etc/kubernetes/manifests
minor() { lab_minor "$1"; }
patch() { local p; p=$(lab_plain "$1"); echo "${p##*.}"; }
cluster_version() { sed -n 's|.*image: registry.k8s.io/kube-apiserver:\(v[^ ]*\)|\1|p' "$M/kube-apiserver.yaml" 2>/dev/null; }
trace_hint() { echo "To see the stack trace of this error execute with --v=5 or higher" >&2; }
need_root() { lab_is_root && return 0; echo "[preflight] Running pre-flight checks." ; echo "error execution phase preflight: [preflight] Some fatal errors occurred:" >&2; printf '\t[ERROR IsPrivilegedUser]: user is not running as root\n' >&2; echo "[preflight] If you know what you are doing, you can make a check non-fatal with \`--ignore-preflight-errors=...\`" >&2; trace_hint; exit 1; }
confirm() { # PROMPT: kubeadm reads the answer from stdin
  printf '%s [y/N]: ' "$1"
  local a=""; read -r a || true
  case "$a" in y|Y|yes|Yes) return 0 ;; esac
  echo "won't proceed; the user didn't answer (Y|y) in order to continue" >&2
  return 1
}
human() { # ShortHumanDuration of SECONDS
  local s=$1
  if [ "$s" -lt 0 ]; then echo "<invalid>"; elif [ "$s" -lt 60 ]; then echo "${s}s"; elif [ "$s" -lt 3600 ]; then echo "$(( s / 60 ))m"
  elif [ "$s" -lt $(( 48 * 3600 )) ]; then echo "$(( s / 3600 ))h"; elif [ "$s" -lt $(( 730 * 86400 )) ]; then echo "$(( s / 86400 ))d"; else echo "$(( s / 31536000 ))y"; fi
}
tabwrite() { # Go tabwriter(minwidth 10, padding 3) over tab-separated lines
  awk -F'\t' '{ for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) + 3 > w[i]) w[i] = length($i) + 3 } nf[NR] = NF; n = NR }
    END { for (r = 1; r <= n; r++) { o = ""; for (i = 1; i <= nf[r]; i++) { ww = w[i] < 10 ? 10 : w[i]; o = o (i < nf[r] ? sprintf("%-" ww "s", c[r, i]) : c[r, i]) } print o } }'
}

# A node of a lab cluster (LAB_HAS_API) asks the cluster's API as kubeadm does, with admin.conf on control-plane
# nodes and kubelet.conf on workers: the cluster version (/version), the Nodes (kubelet versions, control-plane
# readiness) and the kubeadm-config ConfigMap. A lone lab node (no cluster) reads its own static pod manifests.
KC=/etc/kubernetes/admin.conf; [ -f "$KC" ] || KC=/etc/kubernetes/kubelet.conf
lab_kubectl_into KUBEADM_KUBECTL "$LAB_VERSION"
kapi() { "$KUBEADM_KUBECTL" --kubeconfig "$KC" --request-timeout=10s "$@"; }
api_cluster_version() { kapi version -o json 2>/dev/null | sed -n 's/^ *"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -n 1; }
# kubernetesVersion of the ClusterConfiguration in kube-system/kubeadm-config (what `upgrade apply` last uploaded).
config_version() {
  local cc
  if ! cc=$(kapi -n kube-system get configmap kubeadm-config -o 'jsonpath={.data.ClusterConfiguration}' 2>&1); then
    echo "unable to fetch the kubeadm-config ConfigMap: failed to get config map: $(printf '%s' "$cc" | sed -n 's/^Error from server (NotFound): //p;s/^error: //p' | head -n1)" >&2
    return 1
  fi
  printf '%s\n' "$cc" | sed -n 's/^kubernetesVersion: *//p' | head -n1
}
kubelet_versions() { kapi get nodes -o 'jsonpath={range .items[*]}{.status.nodeInfo.kubeletVersion}{"\n"}{end}' | sort -u; }
notready_control_planes() {
  kapi get nodes -l node-role.kubernetes.io/control-plane -o 'jsonpath={range .items[*]}{.metadata.name}{"\t"}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' \
    | awk -F'\t' '$2 != "True" { printf "%s%s", sep, $1; sep = " " }'
}
ignored() { case ",$IGNORE," in *",$1,"*|*",all,"*) return 0 ;; esac; return 1; }
# CheckClusterHealth (cmd/kubeadm/app/phases/upgrade/health.go): every control-plane Node must be Ready.
health_check() {
  local nr; nr=$(notready_control_planes) || { echo "[upgrade/health] FATAL: couldn't list control-plane nodes in cluster" >&2; trace_hint; exit 1; }
  [ -z "$nr" ] && return 0
  if ignored controlplanenodesready; then printf '\t[WARNING ControlPlaneNodesReady]: there are NotReady control-planes in the cluster: [%s]\n' "$nr"; return 0; fi
  { echo "[upgrade/health] FATAL: [preflight] Some fatal errors occurred:"
    printf '\t[ERROR ControlPlaneNodesReady]: there are NotReady control-planes in the cluster: [%s]\n' "$nr"
    echo "[preflight] If you know what you are doing, you can make a check non-fatal with \`--ignore-preflight-errors=...\`"; } >&2
  trace_hint; exit 1
}

version_cmd() {
  local out="" m; m=$(minor "$LAB_VERSION")
  while [ $# -gt 0 ]; do case "$1" in -o|--output) out=$2; shift ;; -o*) out=${1#-o} ;; --output=*) out=${1#*=} ;; esac; shift; done
  case "$out" in
    short) echo "$LAB_VERSION" ;;
    json) printf '{\n  "clientVersion": {\n    "major": "1",\n    "minor": "%s",\n    "gitVersion": "%s",\n    "gitCommit": "%s",\n    "gitTreeState": "clean",\n    "buildDate": "2024-08-14T19:00:00Z",\n    "goVersion": "go1.22.5",\n    "compiler": "gc",\n    "platform": "linux/%s"\n  }\n}\n' "$m" "$LAB_VERSION" "$LAB_COMMIT" "${LAB_BINARY_ARCH:-amd64}" ;;
    yaml) printf 'clientVersion:\n  buildDate: "2024-08-14T19:00:00Z"\n  compiler: gc\n  gitCommit: %s\n  gitTreeState: clean\n  gitVersion: %s\n  goVersion: go1.22.5\n  major: "1"\n  minor: "%s"\n  platform: linux/%s\n' "$LAB_COMMIT" "$LAB_VERSION" "$m" "${LAB_BINARY_ARCH:-amd64}" ;;
    "") echo "kubeadm version: &version.Info{Major:\"1\", Minor:\"$m\", GitVersion:\"$LAB_VERSION\", GitCommit:\"$LAB_COMMIT\", GitTreeState:\"clean\", BuildDate:\"2024-08-14T19:00:00Z\", GoVersion:\"go1.22.5\", Compiler:\"gc\", Platform:\"linux/${LAB_BINARY_ARCH:-amd64}\"}" ;;
    *) echo "error: invalid output format: $out" >&2; exit 1 ;;
  esac
}

# EnforceVersionPolicies (facts §1.5): prints the rendered error and returns 1 when the upgrade may not proceed.
policy() { # TARGET CLUSTER FORCE
  local t=$1 c=$2 force=$3 tm cm km fatal=() skip=()
  tm=$(minor "$t") cm=$(minor "$c") km=$(minor "$LAB_VERSION")
  [ "$tm" -gt $(( cm + 1 )) ] && fatal+=("Specified version to upgrade to \"$t\" is too high; kubeadm can upgrade only 1 minor version at a time")
  [ "$tm" -lt $(( cm - 1 )) ] && fatal+=("Specified version to downgrade to \"$t\" is too low; kubeadm can downgrade only 1 minor version at a time")
  [ "$tm" -gt "$km" ] && fatal+=("Specified version to upgrade to \"$t\" is at least one minor release higher than the kubeadm minor release ($tm > $km). Such an upgrade is not supported")
  [ "$tm" = "$km" ] && [ "$(patch "$t")" -gt "$(patch "$LAB_VERSION")" ] && skip+=("Specified version to upgrade to \"$t\" is higher than the kubeadm version \"$LAB_VERSION\". Upgrade kubeadm first using the tool you used to install kubeadm")
  [ "$km" -gt "$tm" ] && skip+=("Kubeadm version $LAB_VERSION can only be used to upgrade to Kubernetes version 1.$km")
  # detectTooOldKubelets: MaximumAllowedMinorVersionKubeletSkew = 1 (policy.go), skippable with --force.
  local old=() kv
  for kv in $KUBELETS; do [ "$tm" -gt $(( $(minor "$kv") + 1 )) ] && old+=("$kv"); done
  [ ${#old[@]} -gt 0 ] && skip+=("There are kubelets in this cluster that are too old that have these versions [${old[*]}]")
  if [ ${#fatal[@]} -gt 0 ]; then
    { echo "error execution phase preflight: the --version argument is invalid due to these fatal errors:"; echo
      for e in "${fatal[@]}" "${skip[@]}"; do printf '\t- %s\n' "$e"; done
      echo; echo "Please fix the misalignments highlighted above and try upgrading again"; } >&2
    trace_hint; return 1
  fi
  if [ ${#skip[@]} -gt 0 ] && [ "$force" = 0 ]; then
    { echo "error execution phase preflight: the --version argument is invalid due to these errors:"; echo
      for e in "${skip[@]}"; do printf '\t- %s\n' "$e"; done
      echo; echo "Can be bypassed if you pass the --force flag"; } >&2
    trace_hint; return 1
  fi
}

write_manifests() { # VERSION: back up and rewrite the static pod manifests (real file changes)
  local backup; backup=/etc/kubernetes/tmp/kubeadm-backup-manifests-$(date -u +%Y-%m-%d-%H-%M-%S)
  # The new control plane writes to this member's etcd data: only a snapshot restore goes back from here.
  lab_datastore_write "$1"
  mkdir -p "$backup"
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    cp "$M/$c.yaml" "$backup/$c.yaml"
    sed -i "s|image: registry.k8s.io/$c:.*|image: registry.k8s.io/$c:$1|" "$M/$c.yaml"
    echo "[upgrade/staticpods] Moved new manifest to \"$M/$c.yaml\" and backed up old manifest to \"$backup/$c.yaml\""
    echo "[upgrade/staticpods] Waiting for the kubelet to restart the component"
    echo "[apiclient] Found 1 Pods for label selector component=$c"
    echo "[upgrade/staticpods] Component \"$c\" upgraded successfully!"
  done
}

upgrade_apply() {
  local target="" yes=0 force=0 renew=1 cur
  while [ $# -gt 0 ]; do
    case "$1" in
      -y|--yes|-f) yes=1 ;; --force) force=1; yes=1 ;; --certificate-renewal=false) renew=0 ;; --certificate-renewal=true) ;;
      --ignore-preflight-errors=*) IGNORE=$(printf '%s' "${1#*=}" | tr 'A-Z' 'a-z') ;;
      --dry-run|--etcd-upgrade*|--v=*|--allow-*|--config=*) ;;
      -*) ;; *) target=$1 ;;
    esac
    shift
  done
  need_root
  [ -f /etc/kubernetes/admin.conf ] || { echo "couldn't create a Kubernetes client from file \"/etc/kubernetes/admin.conf\": failed to load admin kubeconfig: open /etc/kubernetes/admin.conf: no such file or directory" >&2; trace_hint; exit 1; }
  [ -n "$target" ] || { echo "error execution phase preflight: missing one or more required arguments. Required arguments: [version]" >&2; trace_hint; exit 1; }
  [[ "$target" =~ ^v?[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "error execution phase preflight: unable to fetch release information. URL: \"https://dl.k8s.io/release/$target.txt\"" >&2; trace_hint; exit 1; }
  target=v${target#v}
  echo "[preflight] Running pre-flight checks."
  echo "[upgrade/config] Reading configuration from the cluster..."
  echo "[upgrade/config] FYI: You can look at this config file with 'kubectl -n kube-system get cm kubeadm-config -o yaml'"
  if [ -n "$LAB_HAS_API" ]; then
    cur=$(api_cluster_version)
    [ -n "$cur" ] || { echo "[upgrade/version] FATAL: Unable to fetch cluster version: couldn't get the API server version" >&2; trace_hint; exit 1; }
    KUBELETS=$(kubelet_versions)
  else
    cur=$(cluster_version) KUBELETS=""
  fi
  echo "[upgrade] Running cluster health checks"
  [ -n "$LAB_HAS_API" ] && health_check
  echo "[upgrade/version] You have chosen to change the cluster version to \"$target\""
  echo "[upgrade/versions] Cluster version: $cur"
  echo "[upgrade/versions] kubeadm version: $LAB_VERSION"
  policy "$target" "$cur" "$force" || exit 1
  if [ $yes = 0 ]; then confirm "[upgrade] Are you sure you want to proceed?" || { trace_hint; exit 1; }; echo; fi
  echo "[upgrade/prepull] Pulling images required for setting up a Kubernetes cluster"
  echo "[upgrade/prepull] This might take a minute or two, depending on the speed of your internet connection"
  if ! lab_in_mirror "$target"; then
    { echo "error execution phase preflight: [preflight] Some fatal errors occurred:"
      printf '\t[ERROR ImagePull]: failed to pull image registry.k8s.io/kube-apiserver:%s: output: E0000 pull image failed: rpc error: code = NotFound desc = failed to pull and unpack image "registry.k8s.io/kube-apiserver:%s": not found, error: exit status 1\n' "$target" "$target"; } >&2
    trace_hint; exit 1
  fi
  echo "[upgrade/apply] Upgrading your Static Pod-hosted control plane to version \"$target\" (timeout: 5m0s)..."
  if lab_upgrade_fails kubeadm; then
    echo "[upgrade/apply] FATAL: couldn't upgrade control plane. kubeadm has tried to recover everything into the earlier state. Errors faced: timed out waiting for the condition" >&2
    trace_hint; exit 1
  fi
  if lab_disk_full /etc; then echo "[upgrade/apply] FATAL: failed to create directory \"/etc/kubernetes/tmp\": mkdir /etc/kubernetes/tmp: no space left on device" >&2; trace_hint; exit 1; fi
  write_manifests "$target"
  if [ $renew = 1 ]; then echo "[upgrade/staticpods] Renewing certificates"; lab_event '{"type":"certs-renewed"}'; fi
  echo "[upload-config] Storing the configuration used in ConfigMap \"kubeadm-config\" in the \"kube-system\" Namespace"
  echo "[addons] Applied essential addon: CoreDNS"
  echo "[addons] Applied essential addon: kube-proxy"
  echo
  echo "[upgrade/successful] SUCCESS! Your cluster was upgraded to \"$target\". Enjoy!"
  echo
  echo "[upgrade/kubelet] Now that your control plane is upgraded, please proceed with upgrading your kubelets if you haven't already done so."
  lab_event "{\"type\":\"upgrade-applied\",\"command\":\"apply\",\"version\":\"$target\"}"
}

upgrade_node() {
  need_root
  echo "[upgrade] Reading configuration from the cluster..."
  echo "[upgrade] FYI: You can look at this config file with 'kubectl -n kube-system get cm kubeadm-config -o yaml'"
  # The version to move this node to is the cluster's (kubeadm-config's kubernetesVersion), not this binary's.
  local target=$LAB_VERSION
  if [ -n "$LAB_HAS_API" ]; then
    target=$(config_version 2>/tmp/.kubeadm-config-err) || { echo "error execution phase preflight: $(cat /tmp/.kubeadm-config-err)" >&2; rm -f /tmp/.kubeadm-config-err; trace_hint; exit 1; }
    rm -f /tmp/.kubeadm-config-err
  fi
  if lab_upgrade_fails kubeadm; then
    echo "error execution phase control-plane: couldn't complete the static pod upgrade: timed out waiting for the condition" >&2; trace_hint; exit 1
  fi
  if [ "$LAB_ROLE" = control-plane ]; then
    echo "[upgrade] Upgrading your Static Pod-hosted control plane instance to version \"$target\"..."
    write_manifests "$target"
    echo "[upgrade] The control plane instance for this node was successfully updated!"
  else
    echo "[preflight] Skipping prepull. Not a control plane node."
    echo "[upgrade] Skipping phase. Not a control plane node."
  fi
  echo "[kubelet-start] Writing kubelet configuration to file \"/var/lib/kubelet/config.yaml\""
  if ! printf 'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n# written by kubeadm %s\n' "$LAB_VERSION" > /var/lib/kubelet/config.yaml 2>/dev/null; then
    echo "error execution phase kubelet-config: failed to write kubelet configuration to disk: write /var/lib/kubelet/config.yaml: no space left on device" >&2; trace_hint; exit 1
  fi
  echo "[upgrade] The configuration for this node was successfully updated!"
  echo "[upgrade] Now you should go ahead and upgrade the kubelet package using your package manager."
  lab_event "{\"type\":\"upgrade-applied\",\"command\":\"node\",\"version\":\"$target\"}"
}

upgrade_plan() {
  need_root
  local cur latest="" series="" v km cm
  local nodes=""
  if [ -n "$LAB_HAS_API" ]; then
    cur=$(api_cluster_version)
    nodes=$(kapi get nodes -o 'jsonpath={range .items[*]}{.metadata.name}{"\t"}{.status.nodeInfo.kubeletVersion}{"\n"}{end}')
  else
    cur=$(cluster_version)
  fi
  [ -n "$cur" ] || { echo "[upgrade/config] FATAL: failed to get config map: configmaps \"kubeadm-config\" not found" >&2; trace_hint; exit 1; }
  km=$(minor "$LAB_VERSION") cm=$(minor "$cur")
  for v in $LAB_MIRROR; do
    [ "$(minor "$v")" = "$cm" ] && { [ -z "$series" ] || [ "$(patch "$v")" -gt "$(patch "$series")" ]; } && series=$v
    [ "$(minor "$v")" = "$km" ] && { [ -z "$latest" ] || [ "$(patch "$v")" -gt "$(patch "$latest")" ]; } && latest=$v
  done
  echo "[preflight] Running pre-flight checks."
  echo "[upgrade/config] Reading configuration from the cluster..."
  echo "[upgrade] Running cluster health checks"
  echo "[upgrade] Fetching available versions to upgrade to"
  echo "[upgrade/versions] Cluster version: $cur"
  echo "[upgrade/versions] kubeadm version: $LAB_VERSION"
  [ -n "$series" ] && echo "[upgrade/versions] Latest version in the v1.$cm series: $series"
  if [ -z "$latest" ] || [ "$latest" = "$cur" ]; then echo; echo "Awesome, you're up-to-date! Enjoy!"; return 0; fi
  if [ -n "$nodes" ]; then
    # The kubelets are upgraded by hand (package + restart) on every node: kubeadm lists each one.
    echo "Components that must be upgraded manually after you have upgraded the control plane with 'kubeadm upgrade apply':"
    { printf 'COMPONENT\tNODE\tCURRENT\tTARGET\n'; printf '%s\n' "$nodes" | while IFS=$'\t' read -r n v; do printf 'kubelet\t%s\t%s\t%s\n' "$n" "$v" "$latest"; done; } | tabwrite
    echo
  fi
  echo "Upgrade to the latest stable version:"; echo
  { printf 'COMPONENT\tNODE\tCURRENT\tTARGET\n'
    for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do printf '%s\t%s\t%s\t%s\n' "$c" "$( [ $c = kube-proxy ] && echo '' || echo "$LAB_NODE")" "$cur" "$latest"; done
    printf 'CoreDNS\t\tv1.11.1\tv1.11.1\netcd\t%s\t3.5.12-0\t3.5.12-0\n' "$LAB_NODE"; } | tabwrite
  echo; echo "You can now apply the upgrade by executing the following command:"; echo
  printf '\tkubeadm upgrade apply %s\n' "$latest"
  echo; echo "_____________________________________________________________________"
}

certs_check() {
  local out=""
  while [ $# -gt 0 ]; do case "$1" in -o|--output) out=$2; shift ;; --output=*) out=${1#*=} ;; esac; shift; done
  need_root
  [ "$LAB_ROLE" = control-plane ] || { echo "[check-expiration] Error reading configuration from the Cluster. Falling back to default configuration"; }
  # One sorted read of the table and the shell's own clock: this runs on every certificates gate check.
  local now=$EPOCHSECONDS rows row exp
  mapfile -t rows < <(sort -t$'\t' -k5,5 "$LAB_DIR/certs.tsv")
  if [ "$out" = json ]; then
    local first=1
    printf '{\n  "kind": "CertificateExpirationInfo",\n  "apiVersion": "output.kubeadm.k8s.io/v1alpha3",\n  "certificates": ['
    for row in "${rows[@]}"; do
      IFS=$'\t' read -r path cn na ca name kind usage issuer <<<"$row"
      [ "$kind" = ca ] && continue; [ $first = 1 ] || printf ','; first=0
      TZ=UTC printf -v exp '%(%Y-%m-%dT%H:%M:%SZ)T' "$na"
      printf '\n    {\n      "name": "%s",\n      "expirationDate": "%s",\n      "residualTime": %d,\n      "caName": "%s",\n      "externallyManaged": false\n    }' "$name" "$exp" $(( na > now ? na - now : 0 )) "$ca"
    done
    printf '\n  ],\n  "certificateAuthorities": ['; first=1
    for row in "${rows[@]}"; do
      IFS=$'\t' read -r path cn na ca name kind usage issuer <<<"$row"
      [ "$kind" = ca ] || continue; [ $first = 1 ] || printf ','; first=0
      TZ=UTC printf -v exp '%(%Y-%m-%dT%H:%M:%SZ)T' "$na"
      printf '\n    {\n      "name": "%s",\n      "expirationDate": "%s",\n      "residualTime": %d,\n      "externallyManaged": false\n    }' "$name" "$exp" $(( na > now ? na - now : 0 ))
    done
    printf '\n  ]\n}\n'
    return 0
  fi
  echo "[check-expiration] Reading configuration from the cluster..."
  echo "[check-expiration] FYI: You can look at this config file with 'kubectl -n kube-system get cm kubeadm-config -o yaml'"
  echo
  { printf 'CERTIFICATE\tEXPIRES\tRESIDUAL TIME\tCERTIFICATE AUTHORITY\tEXTERNALLY MANAGED\n'
    for row in "${rows[@]}"; do
      IFS=$'\t' read -r path cn na ca name kind usage issuer <<<"$row"
      [ "$kind" = ca ] && continue
      TZ=UTC LC_ALL=C printf -v exp '%(%b %d, %Y %H:%M UTC)T' "$na"
      printf '%s\t%s\t%s\t%s\tno\n' "$name" "$exp" "$(human $(( na - now )))" "$ca"
    done; } | tabwrite
  echo
  { printf 'CERTIFICATE AUTHORITY\tEXPIRES\tRESIDUAL TIME\tEXTERNALLY MANAGED\n'
    for row in "${rows[@]}"; do
      IFS=$'\t' read -r path cn na ca name kind usage issuer <<<"$row"
      [ "$kind" = ca ] || continue
      TZ=UTC LC_ALL=C printf -v exp '%(%b %d, %Y %H:%M UTC)T' "$na"
      printf '%s\t%s\t%s\tno\n' "$name" "$exp" "$(human $(( na - now )))"
    done; } | tabwrite
}

# --- Stacked etcd membership (phases/reset/removeetcdmember.go, phases/etcd/local.go, util/etcd/etcd.go), on the
# cluster's simulated etcd (etcd-sim.ts): lab/etcd-cluster/members is the member list every member's raft agrees on,
# membership/<cluster id> that cluster's members as `name=peerURL` once they changed after its bootstrap.
EC="$LAB_DIR/etcd-cluster"
etcd_member_listed() { awk -F'\t' -v n="$1" '$1 == n { f = 1 } END { exit !f }' "$EC/members" 2>/dev/null; }
etcd_member_sick() { [ -e "$EC/unhealthy/$1" ]; }
# The ID of the cluster the running members serve (each publishes it in identity/NAME while its etcd runs).
etcd_live_id() { local f; for f in "$EC"/identity/*; do [ -s "$f" ] && { head -n1 "$f"; return 0; }; done; return 1; }
# kubeadm reset on a stacked-etcd control-plane node removes its member through the cluster (a failure is a warning:
# the member must then be removed by hand with etcdctl, or the node cannot join again).
remove_etcd_member() {
  [ -n "$LAB_ETCD_ENDPOINTS" ] && return 0 # a real etcd (etcd: real) keeps its members: the lab does not rejoin there
  etcd_member_listed "$LAB_NODE" || return 0
  local id; id=$(sed -n 's/^id=//p' /var/lib/etcd/member/lab-cluster 2>/dev/null)
  if lab_fault etcd-unhealthy || etcd_member_sick "$LAB_NODE"; then
    echo "W$(date -u +%m%d\ %H:%M:%S.000000)    $$ removeetcdmember.go:105] [reset] Failed to remove etcd member: context deadline exceeded, please manually remove this etcd member using etcdctl" >&2
    return 0
  fi
  lab_etcd_members_replace "\$1 != \"$LAB_NODE\"" "" "$id"
}

reset_cmd() {
  local force=0
  for a in "$@"; do case "$a" in -f|--force) force=1 ;; esac; done
  need_root
  if [ $force = 0 ]; then
    echo "[reset] WARNING: Changes made to this host by 'kubeadm init' or 'kubeadm join' will be reverted."
    confirm "[reset] Are you sure you want to proceed?" || { trace_hint; exit 1; }
  fi
  echo "[preflight] Running pre-flight checks"
  if [ "$LAB_ROLE" = control-plane ]; then
    remove_etcd_member
    rm -rf /var/lib/etcd/*; echo "[reset] Deleted contents of the etcd data directory: /var/lib/etcd"
  fi
  lab_event '{"type":"reset"}'
  echo "[reset] Stopping the kubelet service"
  lab_unit_stop kubelet
  echo "[reset] Unmounting mounted directories in \"/var/lib/kubelet\""
  rm -rf /etc/kubernetes/manifests/* /var/lib/kubelet/* /etc/kubernetes/pki/*
  echo "[reset] Deleting contents of directories: [/etc/kubernetes/manifests /var/lib/kubelet /etc/kubernetes/pki]"
  rm -f /etc/kubernetes/admin.conf /etc/kubernetes/super-admin.conf /etc/kubernetes/kubelet.conf /etc/kubernetes/bootstrap-kubelet.conf /etc/kubernetes/controller-manager.conf /etc/kubernetes/scheduler.conf
  echo "[reset] Deleting files: [/etc/kubernetes/admin.conf /etc/kubernetes/super-admin.conf /etc/kubernetes/kubelet.conf /etc/kubernetes/bootstrap-kubelet.conf /etc/kubernetes/controller-manager.conf /etc/kubernetes/scheduler.conf]"
  echo
  echo "The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d"
  echo
  echo "The reset process does not reset or clean up iptables rules or IPVS tables."
  echo "If you wish to reset iptables, you must do so manually by using the \"iptables\" command."
  echo
  echo "The reset process does not clean your kubeconfig files and you must remove them manually."
  echo "Please, check the contents of the \$HOME/.kube/config file."
}

# --- Joining (cmd/kubeadm/app/cmd/token.go, join.go, discovery/token, preflight/checks.go).
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
# pubkeypin.Hash: sha256 of the certificate's DER SubjectPublicKeyInfo, as "sha256:<hex>".
ca_pin() { printf 'sha256:%s' "$(openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)"; }
go_duration_s() { # Go duration (24h, 1h30m, 90m, 45s, 0) → seconds
  local d=$1 total=0 n
  [ "$d" = 0 ] && { echo 0; return 0; }
  [ -n "$d" ] || return 1
  while [[ $d =~ ^([0-9]+)(h|m|s)(.*)$ ]]; do
    n=${BASH_REMATCH[1]} d=${BASH_REMATCH[3]}
    case ${BASH_REMATCH[2]} in h) total=$(( total + n * 3600 )) ;; m) total=$(( total + n * 60 )) ;; s) total=$(( total + n )) ;; esac
  done
  [ -z "$d" ] && echo "$total"
}
rand_chars() { LC_ALL=C tr -dc 'a-z0-9' < /dev/urandom | head -c "$1"; }

# kubeadm token create [--ttl D] [--print-join-command] [--description S]: a bootstrap token Secret in kube-system
# (expiration now+ttl, 24h by default; --ttl 0 never expires), printed as the token or as the worker's join command.
token_create() {
  local ttl=24h print=0 desc="" kc=/etc/kubernetes/admin.conf token="" certkey=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --ttl) ttl=${2:-}; shift ;; --ttl=*) ttl=${1#*=} ;;
      --print-join-command) print=1 ;;
      --description) desc=${2:-}; shift ;; --description=*) desc=${1#*=} ;;
      --kubeconfig) kc=${2:-}; shift ;; --kubeconfig=*) kc=${1#*=} ;;
      --certificate-key) certkey=${2:-}; shift ;; --certificate-key=*) certkey=${1#*=} ;;
      --v=*|-v*) ;;
      -*) echo "unknown flag: $1" >&2; echo "To see the stack trace of this error execute with --v=5 or higher" >&2; exit 1 ;;
      *) token=$1 ;;
    esac
    shift
  done
  local secs; secs=$(go_duration_s "$ttl") || { echo "Error: invalid argument \"$ttl\" for \"--ttl\" flag: time: invalid duration \"$ttl\"" >&2; exit 1; }
  if [ ! -r "$kc" ]; then
    local why="no such file or directory"; [ -e "$kc" ] && why="permission denied"
    echo "failed to load admin kubeconfig: open $kc: $why" >&2; trace_hint; exit 1
  fi
  if [ -n "$token" ] && ! [[ $token =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]]; then
    echo "the bootstrap token \"$token\" was not of the form \"^([a-z0-9]{6})\\.([a-z0-9]{16})\$\"" >&2; trace_hint; exit 1
  fi
  [ -n "$token" ] || token="$(rand_chars 6).$(rand_chars 16)"
  local id=${token%%.*} secret=${token#*.} exp=""
  [ "$secs" -gt 0 ] && exp=$(date -u -d "@$(( $(date +%s) + secs ))" +%Y-%m-%dT%H:%M:%SZ)
  local body
  body="{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"bootstrap-token-$id\",\"namespace\":\"kube-system\"},\"type\":\"bootstrap.kubernetes.io/token\",\"stringData\":{\"token-id\":\"$id\",\"token-secret\":\"$secret\",${exp:+\"expiration\":\"$exp\",}${desc:+\"description\":\"$desc\",}\"usage-bootstrap-authentication\":\"true\",\"usage-bootstrap-signing\":\"true\",\"auth-extra-groups\":\"system:bootstrappers:kubeadm:default-node-token\"}}"
  local err
  if ! err=$(printf '%s' "$body" | "$KUBEADM_KUBECTL" --kubeconfig "$kc" --request-timeout=10s create -f - 2>&1 >/dev/null); then
    echo "failed to create or update bootstrap token with name bootstrap-token-$id: $(printf '%s' "$err" | sed 's/^Error from server ([A-Za-z]*): //' | head -n1)" >&2; trace_hint; exit 1
  fi
  [ $print = 1 ] || { echo "$token"; return 0; }
  local server hash
  server=$(sed -n 's/^ *server: *//p' "$kc" | head -n1)
  hash=$(sed -n 's/^ *certificate-authority-data: *//p' "$kc" | head -n1 | base64 -d | ca_pin)
  # The template's line continuation and tab are removed, its trailing space stays (cmd/util/join.go); with
  # --certificate-key, the control-plane flags follow it.
  echo "kubeadm join ${server#https://} --token $token --discovery-token-ca-cert-hash $hash ${certkey:+--control-plane --certificate-key $certkey}"
}

# --- Certificates shared by the control-plane nodes (phases/copycerts/copycerts.go): the cluster CAs, the front-proxy
# CA, the service-account key pair and the etcd CA, each encrypted with the 32-byte certificate key into the Secret
# kube-system/kubeadm-certs, owned by a bootstrap token that expires in two hours. kubeadm seals each file with
# AES-256-GCM (nonce ‖ ciphertext ‖ tag); `openssl enc` offers no AEAD mode, so the lab seals with AES-256-CTR and an
# HMAC-SHA256 tag in the same layout: only kubeadm reads these values, and a wrong key fails the same way.
SHARED_CERTS="ca.crt ca.key front-proxy-ca.crt front-proxy-ca.key sa.pub sa.key etcd/ca.crt etcd/ca.key"
valid_key() { [[ $1 =~ ^[0-9a-fA-F]{64}$ ]]; }
seal() { # KEY FILE -> base64 of nonce ‖ ciphertext ‖ tag (empty for a missing file, as kubeadm uploads it)
  [ -f "$2" ] || return 0
  local t; t=$(mktemp -d); openssl rand 12 > "$t/n"
  openssl enc -aes-256-ctr -K "$1" -iv "$(od -An -tx1 "$t/n" | tr -d ' \n')00000002" -in "$2" -out "$t/c"
  cat "$t/n" "$t/c" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$1" -binary | head -c 16 > "$t/tag"
  cat "$t/n" "$t/c" "$t/tag" | base64 -w0; rm -rf "$t"
}
unseal() { # KEY IN OUT: 1 when the tag does not check out (the key is not the one that sealed it)
  local t; t=$(mktemp -d); base64 -d < "$2" > "$t/all" 2>/dev/null
  local n; n=$(stat -c %s "$t/all")
  [ "$n" -ge 28 ] || { rm -rf "$t"; return 1; }
  head -c 12 "$t/all" > "$t/n"; tail -c 16 "$t/all" > "$t/tag"; head -c $(( n - 16 )) "$t/all" | tail -c +13 > "$t/c"
  if ! cat "$t/n" "$t/c" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$1" -binary | head -c 16 | cmp -s - "$t/tag"; then rm -rf "$t"; return 1; fi
  openssl enc -d -aes-256-ctr -K "$1" -iv "$(od -An -tx1 "$t/n" | tr -d ' \n')00000002" -in "$t/c" -out "$3"; local rc=$?
  rm -rf "$t"; return $rc
}

# kubeadm init phase upload-certs --upload-certs [--certificate-key KEY] [--skip-certificate-key-print]
upload_certs() {
  local upload=0 key="" skip=0 kc=/etc/kubernetes/admin.conf
  while [ $# -gt 0 ]; do
    case "$1" in
      --upload-certs) upload=1 ;; --skip-certificate-key-print) skip=1 ;;
      --certificate-key) key=${2:-}; shift ;; --certificate-key=*) key=${1#*=} ;;
      --kubeconfig) kc=${2:-}; shift ;; --kubeconfig=*) kc=${1#*=} ;;
      --v=*|-v*|--config=*) ;; --config) shift ;;
      -*) echo "unknown flag: $1" >&2; trace_hint; exit 1 ;;
    esac
    shift
  done
  [ $upload = 1 ] || { echo "[upload-certs] Skipping phase. Please see --upload-certs"; return 0; }
  need_root
  [ -r "$kc" ] || { echo "error execution phase upload-certs: failed to load admin kubeconfig: open $kc: no such file or directory" >&2; trace_hint; exit 1; }
  [ -n "$key" ] || key=$(openssl rand -hex 32)
  echo "[upload-certs] Storing the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace"
  valid_key "$key" || { echo "error execution phase upload-certs: error decoding certificate key: encoding/hex: invalid byte" >&2; trace_hint; exit 1; }
  key=$(printf '%s' "$key" | tr 'A-F' 'a-f')
  local k=("$KUBEADM_KUBECTL" --kubeconfig "$kc" --request-timeout=10s) token id uid
  token=$(token_create --ttl 2h --description "Proxy for managing TTL for the kubeadm-certs secret" --kubeconfig "$kc") || exit 1
  id=${token%%.*}
  uid=$("${k[@]}" -n kube-system get secret "bootstrap-token-$id" -o 'jsonpath={.metadata.uid}' 2>/dev/null) || { echo "error execution phase upload-certs: error to get token reference" >&2; trace_hint; exit 1; }
  local data="" c
  for c in $SHARED_CERTS; do data+="${data:+,}\"${c//\//-}\":\"$(seal "$key" "/etc/kubernetes/pki/$c")\""; done
  local body="{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"kubeadm-certs\",\"namespace\":\"kube-system\",\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"name\":\"bootstrap-token-$id\",\"uid\":\"$uid\",\"controller\":true,\"blockOwnerDeletion\":true}]},\"type\":\"Opaque\",\"data\":{$data}}"
  # CreateOrUpdateSecret: the Secret of an earlier upload is replaced.
  "${k[@]}" -n kube-system delete secret kubeadm-certs --ignore-not-found >/dev/null 2>&1
  local err
  err=$(printf '%s' "$body" | "${k[@]}" create -f - 2>&1 >/dev/null) || { echo "error execution phase upload-certs: $(printf '%s' "$err" | sed 's/^Error from server ([A-Za-z]*): //' | head -n1)" >&2; trace_hint; exit 1; }
  [ $skip = 1 ] && return 0
  echo "[upload-certs] Using certificate key:"
  echo "$key"
}

# join --control-plane's download-certs (DownloadCerts): the Secret read with the bootstrap token, every value
# unsealed with the key before any is written.
download_certs() { # KEY KUBECTL...
  local key=$1; shift
  echo "[download-certs] Downloading the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace"
  valid_key "$key" || join_fail control-plane-prepare/download-certs "error downloading certs: error decoding certificate key: encoding/hex: invalid byte"
  key=$(printf '%s' "$key" | tr 'A-F' 'a-f')
  local t out; t=$(mktemp -d)
  if ! out=$("$@" -n kube-system get secret kubeadm-certs -o json 2>&1 > "$t/secret.json"); then
    rm -rf "$t"
    case "$out" in
      *NotFound*|*"not found"*) join_fail control-plane-prepare/download-certs "error downloading certs: error downloading the secret: Secret \"kubeadm-certs\" was not found in the \"kube-system\" Namespace. This Secret might have expired. Please, run \`kubeadm init phase upload-certs --upload-certs\` on a control plane to generate a new one" ;;
      *) join_fail control-plane-prepare/download-certs "error downloading certs: error downloading the secret: $(printf '%s' "$out" | sed 's/^Error from server ([A-Za-z]*): //' | head -n1)" ;;
    esac
  fi
  local c v
  for c in $SHARED_CERTS; do
    v=$(json_string "${c//\//-}" < "$t/secret.json")
    [ -n "$v" ] || continue
    printf '%s' "$v" > "$t/in"
    mkdir -p "$t/out/$(dirname "$c")"
    unseal "$key" "$t/in" "$t/out/$c" || { rm -rf "$t"; join_fail control-plane-prepare/download-certs "error downloading certs: error decoding secret data with provided key: cipher: message authentication failed"; }
  done
  echo "[download-certs] Saving the certificates to the folder: \"/etc/kubernetes/pki\""
  mkdir -p /etc/kubernetes/pki/etcd
  for c in $SHARED_CERTS; do
    [ -s "$t/out/$c" ] || continue
    case "$c" in *.key) install -m 600 "$t/out/$c" "/etc/kubernetes/pki/$c" ;; *) install -m 644 "$t/out/$c" "/etc/kubernetes/pki/$c" ;; esac
  done
  rm -rf "$t"
}

# json_string KEY < JSON: the first string value of KEY, unescaped (the values read here hold no unicode escapes).
json_string() {
  grep -o "\"$1\": *\"\\([^\"\\\\]\\|\\\\.\\)*\"" | head -n1 | sed -e "s/^\"$1\": *\"//" -e 's/"$//' \
    | sed -e 's/\\"/"/g' -e 's/\\\//\//g' | { IFS= read -r -d '' v || true; v=${v%$'\n'}; printf '%b' "$v"; }
}
join_fail() { echo "error execution phase $1: $2" >&2; trace_hint; exit 1; }

# join's kubelet-start phase: the kubelet's configuration and flags, then the kubelet with the TLS bootstrap's result,
# its own kubeconfig (the lab issues no CSR; see lab/kubelet-credential.conf).
kubelet_start() {
  mkdir -p /var/lib/kubelet
  echo "[kubelet-start] Writing kubelet configuration to file \"/var/lib/kubelet/config.yaml\""
  printf 'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n# written by kubeadm %s\n' "$LAB_VERSION" > /var/lib/kubelet/config.yaml
  echo "[kubelet-start] Writing kubelet environment file with flags to file \"/var/lib/kubelet/kubeadm-flags.env\""
  printf 'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.9"\n' > /var/lib/kubelet/kubeadm-flags.env
  echo "[kubelet-start] Starting the kubelet"
  install -m 600 "$LAB_DIR/kubelet-credential.conf" /etc/kubernetes/kubelet.conf
  lab_unit_stop kubelet
  lab_unit_start kubelet >/dev/null || join_fail kubelet-start "the kubelet did not start"
  echo "[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap..."
}

# join --control-plane (cmd/join.go phases; preflight/checks.go RunInitNodeChecks for a secondary control plane): the
# control-plane preflight, the shared certificates from kubeadm-certs, the static pods at the cluster's
# kubernetesVersion, a healthy etcd, the kubelet, then this node added as an etcd member. Runs inside join_cmd (its
# locals: tmp, as, node, certkey, IGNORE).
join_control_plane() {
  local cc; cc=$("${as[@]}" -n kube-system get configmap kubeadm-config -o 'jsonpath={.data.ClusterConfiguration}' 2>/dev/null)
  local version; version=$(printf '%s\n' "$cc" | sed -n 's/^kubernetesVersion: *//p' | head -n1)
  local cpe; cpe=$(printf '%s\n' "$cc" | sed -n 's/^controlPlaneEndpoint: *//p' | head -n1)
  echo "[preflight] Running pre-flight checks before initializing the new control plane instance"
  local why=()
  [ -n "$cpe" ] || why+=("unable to add a new control plane instance to a cluster that doesn't have a stable controlPlaneEndpoint address")
  [ -n "$certkey" ] || [ -f /etc/kubernetes/pki/ca.key ] || why+=("failure loading certificate for CA: couldn't load the certificate file /etc/kubernetes/pki/ca.crt: open /etc/kubernetes/pki/ca.crt: no such file or directory")
  if [ ${#why[@]} -gt 0 ]; then
    rm -rf "$tmp"
    { echo "error execution phase preflight: "; echo "One or more conditions for hosting a new control plane instance is not satisfied."; echo
      local w; for w in "${why[@]}"; do echo "$w"; done; echo
      echo "Please ensure that:"; echo "* The cluster has a stable controlPlaneEndpoint address."; echo "* The certificates that must be shared among control plane instances are provided."; echo; } >&2
    trace_hint; exit 1
  fi
  local errs=()
  check() { ignored "$(printf '%s' "$1" | tr 'A-Z' 'a-z')" || errs+=("[ERROR $1]: $2"); }
  [ -n "$(ls -A /var/lib/etcd 2>/dev/null)" ] && check DirAvailable--var-lib-etcd "/var/lib/etcd is not empty"
  if [ ${#errs[@]} -gt 0 ]; then
    rm -rf "$tmp"
    { echo "error execution phase preflight: [preflight] Some fatal errors occurred:"; for e in "${errs[@]}"; do printf '\t%s\n' "$e"; done
      echo "[preflight] If you know what you are doing, you can make a check non-fatal with \`--ignore-preflight-errors=...\`"; } >&2
    trace_hint; exit 1
  fi
  echo "[preflight] Pulling images required for setting up a Kubernetes cluster"
  lab_in_mirror "$version" || { rm -rf "$tmp"; join_fail preflight "[preflight] Some fatal errors occurred:
	[ERROR ImagePull]: failed to pull image registry.k8s.io/kube-apiserver:$version: not found"; }
  [ -n "$certkey" ] && download_certs "$certkey" "${as[@]}"
  echo "[certs] Using certificateDir folder \"/etc/kubernetes/pki\""
  echo "[certs] Valid certificates and keys now exist in \"/etc/kubernetes/pki\""
  echo "[kubeconfig] Generating kubeconfig files"
  echo "[kubeconfig] Using kubeconfig folder \"/etc/kubernetes\""
  # The admin kubeconfig kubeadm writes from the CA it downloaded (the lab's stands in; the lab issues the node's leaf
  # certificates when the cluster admits its kubelet, as the certs phase would).
  install -m 600 "$LAB_DIR/kubelet-credential.conf" /etc/kubernetes/admin.conf
  for f in admin.conf controller-manager.conf scheduler.conf; do echo "[kubeconfig] Writing \"$f\" kubeconfig file"; done
  echo "[control-plane] Using manifest folder \"$M\""
  mkdir -p "$M"
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    echo "[control-plane] Creating static Pod manifest for \"$c\""
    printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: kube-system\nspec:\n  containers:\n  - name: %s\n    image: registry.k8s.io/%s:%s\n' "$c" "$c" "$c" "$version" > "$M/.$c.yaml.new"
  done
  echo "[check-etcd] Checking that the etcd cluster is healthy"
  local m a sick=""
  while IFS=$'\t' read -r m a _; do [ -n "$m" ] && { etcd_member_sick "$m" || [ ! -s "$EC/identity/$m" ]; } && sick=$a; done < "$EC/members"
  lab_fault etcd-unhealthy && sick=$LAB_ADDRESS
  if [ -n "$sick" ]; then rm -rf "$tmp" "$M"/.*.yaml.new; join_fail check-etcd "etcd cluster is not healthy: failed to dial endpoint https://$sick:2379 with maintenance client: context deadline exceeded"; fi
  local live; live=$(etcd_live_id) || { rm -rf "$tmp" "$M"/.*.yaml.new; join_fail check-etcd "etcd cluster is not healthy: context deadline exceeded"; }
  rm -rf "$tmp"
  kubelet_start
  # control-plane-join/etcd: MemberAdd through the cluster (an old member of this name must have been removed first),
  # then the etcd manifest with the members so far and state existing; the data comes from the cluster.
  if etcd_member_listed "$node"; then
    rm -f "$M"/.*.yaml.new
    join_fail control-plane-join/etcd "error creating local etcd static pod manifest file: etcdserver: Peer URLs already exists"
  fi
  lab_etcd_members_replace '1' "$node"$'\t'"$LAB_ADDRESS"$'\t'"$LAB_ETCD_ID"$'\t'"$LAB_ETCD_ID_HEX" "$live"
  echo "[etcd] Announced new etcd member joining to the existing etcd cluster"
  local initial; initial=$(awk -F'\t' 'NF >= 2 { printf "%s%s=https://%s:2380", s, $1, $2; s = "," }' "$EC/members")
  mkdir -p /var/lib/etcd/member
  printf 'id=%s\nmembers=%s\n' "$live" "$(lab_etcd_membership)" > /var/lib/etcd/member/lab-cluster
  printf '%s\n' "$version" > /var/lib/etcd/member/lab-written-by
  echo "[etcd] Creating static Pod manifest for \"etcd\""
  etcd_manifest "$initial" > "$M/etcd.yaml"
  for c in kube-apiserver kube-controller-manager kube-scheduler; do mv -f "$M/.$c.yaml.new" "$M/$c.yaml"; done
  echo "[etcd] Waiting for the new etcd member to join the cluster. This can take up to 40s"
  echo "[mark-control-plane] Marking the node $node as control-plane by adding the labels: [node-role.kubernetes.io/control-plane node.kubernetes.io/exclude-from-external-load-balancers]"
  echo "[mark-control-plane] Marking the node $node as control-plane by adding the taints [node-role.kubernetes.io/control-plane:NoSchedule]"
  echo
  echo "This node has joined the cluster and a new control plane instance was created:"
  echo
  echo "* Certificate signing request was sent to apiserver and approval was received."
  echo "* The Kubelet was informed of the new secure connection details."
  echo "* Control plane label and taint were applied to the new node."
  echo "* The Kubernetes control plane instances scaled up."
  echo "* A new etcd member was added to the local/stacked etcd cluster."
  echo
  echo "To start administering your cluster from this node, you need to run the following as a regular user:"
  echo
  printf '\tmkdir -p $HOME/.kube\n\tsudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config\n\tsudo chown $(id -u):$(id -g) $HOME/.kube/config\n'
  echo
  echo "Run 'kubectl get nodes' to see this node join the cluster."
  echo
}

# The etcd static pod kubeadm writes for a joining member (phases/etcd/local.go; the same flags layout.ts writes).
etcd_manifest() { # INITIAL-CLUSTER
  local a=$LAB_ADDRESS
  printf '%s\n' 'apiVersion: v1' 'kind: Pod' 'metadata:' '  annotations:' "    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://$a:2379" \
    '  labels:' '    component: etcd' '    tier: control-plane' '  name: etcd' '  namespace: kube-system' 'spec:' '  containers:' '  - command:' '    - etcd' \
    "    - --advertise-client-urls=https://$a:2379" '    - --cert-file=/etc/kubernetes/pki/etcd/server.crt' '    - --client-cert-auth=true' \
    '    - --data-dir=/var/lib/etcd' "    - --initial-advertise-peer-urls=https://$a:2380" "    - --initial-cluster=$1" '    - --initial-cluster-state=existing' \
    '    - --key-file=/etc/kubernetes/pki/etcd/server.key' "    - --listen-client-urls=https://127.0.0.1:2379,https://$a:2379" '    - --listen-metrics-urls=http://127.0.0.1:2381' \
    "    - --listen-peer-urls=https://$a:2380" "    - --name=$LAB_NODE" '    - --peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt' \
    '    - --peer-client-cert-auth=true' '    - --peer-key-file=/etc/kubernetes/pki/etcd/peer.key' '    - --peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt' \
    '    - --snapshot-count=10000' '    - --trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt' '    image: registry.k8s.io/etcd:3.5.12-0' '    name: etcd'
}

join_cmd() {
  local ep="" token="" hashes=() unsafe=0 node=$LAB_NODE cp=0 certkey=""
  IGNORE=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --token|--discovery-token|--tls-bootstrap-token) token=${2:-}; shift ;;
      --token=*|--discovery-token=*|--tls-bootstrap-token=*) token=${1#*=} ;;
      --discovery-token-ca-cert-hash) hashes+=("${2:-}"); shift ;; --discovery-token-ca-cert-hash=*) hashes+=("${1#*=}") ;;
      --discovery-token-unsafe-skip-ca-verification|--discovery-token-unsafe-skip-ca-verification=true) unsafe=1 ;;
      --ignore-preflight-errors) IGNORE=$(printf '%s' "${2:-}" | tr 'A-Z' 'a-z'); shift ;;
      --ignore-preflight-errors=*) IGNORE=$(printf '%s' "${1#*=}" | tr 'A-Z' 'a-z') ;;
      --node-name) node=${2:-}; shift ;; --node-name=*) node=${1#*=} ;;
      --control-plane) cp=1 ;;
      --certificate-key) certkey=${2:-}; shift ;; --certificate-key=*) certkey=${1#*=} ;;
      --cri-socket|--apiserver-advertise-address|--config) shift ;;
      --v=*|-v*|--cri-socket=*|--apiserver-advertise-address=*|--config=*) ;;
      -*) echo "unknown flag: $1" >&2; echo "To see the stack trace of this error execute with --v=5 or higher" >&2; exit 1 ;;
      *) ep=$1 ;;
    esac
    shift
  done
  if [ $cp = 1 ] && [ -n "$LAB_ETCD_ENDPOINTS" ]; then
    echo "kupgrade lab: kubeadm join --control-plane is simulated on a simulated etcd only (this cluster runs etcd: real)" >&2; exit 1
  fi
  # ValidateJoinConfiguration, before any phase runs.
  if ! [[ $token =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]]; then
    echo "[discovery.bootstrapToken.token: Invalid value: \"$token\": the bootstrap token is invalid, discovery.tlsBootstrapToken: Invalid value: \"$token\": the bootstrap token is invalid]" >&2; trace_hint; exit 1
  fi
  [ -n "$ep" ] || { echo "discovery.bootstrapToken.apiServerEndpoint: Invalid value: \"\": address  : missing port in address" >&2; trace_hint; exit 1; }
  if [ ${#hashes[@]} = 0 ] && [ $unsafe = 0 ]; then
    echo "discovery.bootstrapToken.caCertHashes: Invalid value: \"\": using token-based discovery without caCertHashes can be unsafe. Set unsafeSkipCAVerification as true in your kubeadm config file or pass --discovery-token-unsafe-skip-ca-verification flag to continue" >&2; trace_hint; exit 1
  fi
  need_root
  echo "[preflight] Running pre-flight checks"
  # RunJoinNodeChecks, in its order (the kubelet's port is in use while the kubelet runs).
  local errs=()
  check() { ignored "$(printf '%s' "$1" | tr 'A-Z' 'a-z')" || errs+=("[ERROR $1]: $2"); }
  [ -n "$(ls -A /etc/kubernetes/manifests 2>/dev/null)" ] && check DirAvailable--etc-kubernetes-manifests "/etc/kubernetes/manifests is not empty"
  [ -e /etc/kubernetes/kubelet.conf ] && check FileAvailable--etc-kubernetes-kubelet.conf "/etc/kubernetes/kubelet.conf already exists"
  [ -e /etc/kubernetes/bootstrap-kubelet.conf ] && check FileAvailable--etc-kubernetes-bootstrap-kubelet.conf "/etc/kubernetes/bootstrap-kubelet.conf already exists"
  lab_unit_read kubelet; [ "$U_STATE" = active ] || [ "$U_STATE" = activating ] && check Port-10250 "Port 10250 is in use"
  # A worker must not have the cluster CA yet; a control-plane node gets it (and more) from download-certs.
  [ $cp = 0 ] && [ -e /etc/kubernetes/pki/ca.crt ] && check FileAvailable--etc-kubernetes-pki-ca.crt "/etc/kubernetes/pki/ca.crt already exists"
  if [ ${#errs[@]} -gt 0 ]; then
    { echo "error execution phase preflight: [preflight] Some fatal errors occurred:"; for e in "${errs[@]}"; do printf '\t%s\n' "$e"; done
      echo "[preflight] If you know what you are doing, you can make a check non-fatal with \`--ignore-preflight-errors=...\`"; } >&2
    trace_hint; exit 1
  fi
  # Discovery: cluster-info read anonymously, its kubeconfig's JWS checked with the token, its CA against the pins.
  local id=${token%%.*} secret=${token#*.} tmp; tmp=$(mktemp -d)
  printf 'apiVersion: v1\nkind: Config\n' > "$tmp/empty"
  # Anonymous, as kubeadm's insecure bootstrap client is (kubectl would prompt for a user instead).
  local out code
  out=$("$LAB_REAL_CURL" -sk --max-time 10 -o "$tmp/cluster-info.json" -w '%{http_code}' "https://$ep/api/v1/namespaces/kube-public/configmaps/cluster-info" 2>&1)
  code=$?
  if [ $code != 0 ]; then
    rm -rf "$tmp"; join_fail preflight "couldn't validate the identity of the API Server: failed to request the cluster-info ConfigMap: Get \"https://$ep/api/v1/namespaces/kube-public/configmaps/cluster-info?timeout=10s\": dial tcp $ep: connect: connection refused"
  fi
  if [ "$out" != 200 ]; then
    rm -rf "$tmp"; join_fail preflight "couldn't validate the identity of the API Server: failed to request the cluster-info ConfigMap: $(json_string message < "$tmp/cluster-info.json")"
  fi
  json_string kubeconfig < "$tmp/cluster-info.json" > "$tmp/kubeconfig"
  local jws; jws=$(json_string "jws-kubeconfig-$id" < "$tmp/cluster-info.json")
  [ -n "$jws" ] || { rm -rf "$tmp"; join_fail preflight "couldn't validate the identity of the API Server: could not find a JWS signature in the cluster-info ConfigMap for token ID \"$id\""; }
  printf 'apiVersion: v1\nkind: Config\n' > "$tmp/empty"
  local hdr sig
  hdr=$(printf '{"alg":"HS256","kid":"%s"}' "$id" | b64url)
  sig=$(printf '%s.%s' "$hdr" "$(b64url < "$tmp/kubeconfig")" | openssl dgst -sha256 -hmac "$secret" -binary | b64url)
  [ "$jws" = "$hdr..$sig" ] || { rm -rf "$tmp"; join_fail preflight "couldn't validate the identity of the API Server: failed to verify JWS signature of received cluster info object, can't trust this API Server"; }
  sed -n 's/^ *certificate-authority-data: *//p' "$tmp/kubeconfig" | head -n1 | base64 -d > "$tmp/ca.crt"
  if [ $unsafe = 0 ]; then
    local pin h ok=0; pin=$(ca_pin < "$tmp/ca.crt")
    for h in "${hashes[@]}"; do
      [[ $h =~ ^sha256:[0-9a-fA-F]{64}$ ]] || { rm -rf "$tmp"; join_fail preflight "couldn't validate the identity of the API Server: invalid discovery token CA certificate hash: invalid hash \"$h\", expected a \"format:hex-value\". Known format(s) are: sha256"; }
      [ "$(printf '%s' "$h" | tr 'A-F' 'a-f')" = "$pin" ] && ok=1
    done
    [ $ok = 1 ] || { rm -rf "$tmp"; join_fail preflight "couldn't validate the identity of the API Server: cluster CA found in cluster-info ConfigMap is invalid: none of the public keys \"$pin\" are pinned"; }
  fi
  # From here on as system:bootstrap:<id>, trusting the pinned CA.
  local as=("$KUBEADM_KUBECTL" --kubeconfig "$tmp/empty" --server "https://$ep" --certificate-authority "$tmp/ca.crt" --token "$token" --request-timeout=10s)
  echo "[preflight] Reading configuration from the cluster..."
  echo "[preflight] FYI: You can look at this config file with 'kubectl -n kube-system get cm kubeadm-config -o yaml'"
  if ! out=$("${as[@]}" -n kube-system get configmap kubeadm-config -o name 2>&1); then
    rm -rf "$tmp"; join_fail preflight "unable to fetch the kubeadm-config ConfigMap: failed to get config map: $(printf '%s' "$out" | sed 's/^Error from server ([A-Za-z]*): //' | head -n1)"
  fi
  if [ $cp = 1 ]; then join_control_plane; return; fi
  # kubelet-start: a Ready Node of this name is another machine's; a NotReady or missing one may be taken over.
  local ready; ready=$("${as[@]}" get node "$node" -o go-template='{{range .status.conditions}}{{if eq .type "Ready"}}{{.status}}{{end}}{{end}}' 2>/dev/null)
  if [ "$ready" = True ]; then
    rm -rf "$tmp"; join_fail kubelet-start "a Node with name \"$node\" and status \"Ready\" already exists in the cluster. You must delete the existing Node or change the name of this new joining Node"
  fi
  [ -f "$LAB_DIR/kubelet-credential.conf" ] || { rm -rf "$tmp"; join_fail kubelet-start "kupgrade lab: this node has no kubelet credential to bootstrap (lab/kubelet-credential.conf)"; }
  mkdir -p /etc/kubernetes/pki
  cp "$tmp/ca.crt" /etc/kubernetes/pki/ca.crt
  rm -rf "$tmp"
  kubelet_start
  echo
  echo "This node has joined the cluster:"
  echo "* Certificate signing request was sent to apiserver and a response was received."
  echo "* The Kubelet was informed of the new secure connection details."
  echo
  echo "Run 'kubectl get nodes' on the control-plane to see this node join the cluster."
  echo
}

case "${1:-}" in
  version) shift; version_cmd "$@" ;;
  upgrade)
    shift
    case "${1:-}" in
      plan) shift; upgrade_plan "$@" ;;
      apply) shift; upgrade_apply "$@" ;;
      node) shift; upgrade_node "$@" ;;
      *) echo "Error: unknown command \"${1:-}\" for \"kubeadm upgrade\"" >&2; exit 1 ;;
    esac ;;
  certs)
    shift
    case "${1:-}" in
      check-expiration) shift; certs_check "$@" ;;
      renew) need_root; echo "[renew] Reading configuration from the cluster..."; lab_event '{"type":"certs-renewed"}'; echo; echo "Done renewing certificates. You must restart the kube-apiserver, kube-controller-manager, kube-scheduler and etcd, so that they can use the new certificates." ;;
      *) echo "Error: unknown command \"${1:-}\" for \"kubeadm certs\"" >&2; exit 1 ;;
    esac ;;
  reset) shift; reset_cmd "$@" ;;
  init)
    shift
    case "${1:-} ${2:-}" in
      "phase upload-certs") shift 2; upload_certs "$@" ;;
      *) echo "kupgrade lab: kubeadm init ${1:-} ${2:-} is not simulated (the lab's clusters exist already; only init phase upload-certs is)" >&2; exit 1 ;;
    esac ;;
  join) shift; join_cmd "$@" ;;
  token)
    shift
    case "${1:-}" in
      create) shift; token_create "$@" ;;
      *) echo "Error: unknown command \"${1:-}\" for \"kubeadm token\"" >&2; exit 1 ;;
    esac ;;
  ""|-h|--help) echo "    KUBEADM"; echo "    Easily bootstrap a secure Kubernetes cluster" ;;
  *) echo "unknown command \"$1\" for \"kubeadm\"" >&2; echo "To see the stack trace of this error execute with --v=5 or higher" >&2; exit 1 ;;
esac
