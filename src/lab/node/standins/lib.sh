# kupgrade lab: shared by every stand-in (sourced, never run). Node config, unit state, faults, events.
# State is files under $LAB_DIR (the node's lab/ folder, at its real path outside the node's mounts).
: "${LAB_DIR:?kupgrade lab: LAB_DIR is not set (run commands through the lab node sshd)}"
# shellcheck disable=SC1091
. "$LAB_DIR/node.env"

# The clock without a fork (bash 5's EPOCHREALTIME, whose separator follows the locale): a fork costs milliseconds on
# a busy machine, and the stand-ins read the clock on every state change.
lab_now_ms_into() { local _lab_us=${EPOCHREALTIME//[!0-9]/}; printf -v "$1" '%s' "${_lab_us%???}"; }

# One JSON line for the lab process (LabNode turns it into an EventEmitter event). Values are lab-controlled
# identifiers and versions: no quoting needed beyond the plain printf.
# Each line carries who ran the command (LAB_CLIENT: the SSH login and key fingerprint) and when, for the recorder.
lab_event() { local e=$1 ms; lab_now_ms_into ms; printf '%s\n' "${e%\}},\"client\":\"${LAB_CLIENT:-lab}\",\"ms\":$ms}" >> "$LAB_DIR/events.jsonl"; }

lab_fault() { [ -e "$LAB_DIR/faults/$1" ]; }
# upgrade-command-fails for TOOL: the fault is on, for every upgrade tool or (its param tool=) for this one.
lab_upgrade_fails() { lab_fault upgrade-command-fails || return 1; local t; t=$(lab_fault_param upgrade-command-fails tool ''); [ -z "$t" ] || [ "$t" = "$1" ]; }
# The cluster's datastore was restored from snapshot FILE (- for stdin): the lab brings back the API objects it holds.
lab_datastore_restored() {
  local abs=$1; [ "$1" = - ] || abs="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
  lab_event "{\"type\":\"restore\",\"path\":\"$abs\"}"
}
# A fault the cluster applies to pods' traffic only (api-vip-unreachable "from pods"); LAB_POD is set in containers.
lab_pod_fault() { [ -n "${LAB_POD:-}" ] && [ -e "$LAB_DIR/pod-faults/$1" ]; }
# lab_fault_param FAULT KEY DEFAULT
lab_fault_param() {
  local v=""
  [ -e "$LAB_DIR/faults/$1" ] && v=$(sed -n "s/^$2=//p" "$LAB_DIR/faults/$1" | head -n1)
  printf '%s' "${v:-$3}"
}

# The iptables backend that holds the kubelet's and kube-proxy's chains: the node's own one, or the other one under
# iptables-backend-mismatch (kube-proxy's bundled iptables chose legacy while the host's moved to nf_tables).
lab_kube_ipt_backend_into() { # VAR
  local _lab_b=$LAB_IPT_BACKEND
  if lab_fault iptables-backend-mismatch; then [ "$LAB_IPT_BACKEND" = legacy ] && _lab_b=nf_tables || _lab_b=legacy; fi
  printf -v "$1" '%s' "$_lab_b"
}
lab_kube_ipt_backend() { local _lab_kb; lab_kube_ipt_backend_into _lab_kb; echo "$_lab_kb"; }

# lab_binary_version_into VAR FILE: the version a stand-in binary carries (its LAB_VERSION line), read by the shell;
# VAR empty when the file has none, status 1 when there is no such file.
lab_binary_version_into() {
  local _lab_l; printf -v "$1" '%s' ''
  [ -f "$2" ] || return 1
  while IFS= read -r _lab_l; do
    if [[ $_lab_l == "LAB_VERSION='"*"'" ]]; then _lab_l=${_lab_l#"LAB_VERSION='"}; printf -v "$1" '%s' "${_lab_l%"'"}"; return 0; fi
  done < "$2"
  return 0
}
lab_binary_version() { local _lab_v; lab_binary_version_into _lab_v "$1" || return 1; [ -z "$_lab_v" ] || printf '%s\n' "$_lab_v"; }
# lab_binary_arch_into VAR FILE: the architecture a stand-in binary was built for (its LAB_BINARY_ARCH line; amd64
# when it has none).
lab_binary_arch_into() {
  local _lab_l; printf -v "$1" '%s' amd64
  [ -f "$2" ] || return 1
  while IFS= read -r _lab_l; do
    if [[ $_lab_l == "LAB_BINARY_ARCH='"*"'" ]]; then _lab_l=${_lab_l#"LAB_BINARY_ARCH='"}; printf -v "$1" '%s' "${_lab_l%"'"}"; return 0; fi
    [[ $_lab_l == '#'* || $_lab_l == LAB_* ]] || return 0
  done < "$2"
  return 0
}
# lab_version_newer A B: plain version A (vX.Y.Z) is newer than B, compared as sort -V orders them.
lab_version_newer() {
  local -a _lab_a _lab_b; local _lab_i
  IFS=. read -r -a _lab_a <<< "${1#v}"; IFS=. read -r -a _lab_b <<< "${2#v}"
  for _lab_i in 0 1 2; do
    (( 10#${_lab_a[_lab_i]:-0} > 10#${_lab_b[_lab_i]:-0} )) && return 0
    (( 10#${_lab_a[_lab_i]:-0} < 10#${_lab_b[_lab_i]:-0} )) && return 1
  done
  return 1
}

# Unit state file: STATE VERSION DUE_MS SINCE_S; activating turns active once DUE_MS passed (see unit-state.ts).
lab_unit_read() { # sets U_STATE U_VERSION U_DUE U_SINCE
  U_STATE=inactive U_VERSION="" U_DUE=0 U_SINCE=0
  [ -f "$LAB_DIR/units/$1" ] || return 1
  read -r U_STATE U_VERSION U_DUE U_SINCE < "$LAB_DIR/units/$1"
  local ms; lab_now_ms_into ms
  if [ "$U_STATE" = activating ] && [ "$U_DUE" -le "$ms" ]; then U_STATE=active; fi
  return 0
}
# Written aside and renamed over: a reader between truncate and write would see no state at all (systemd never
# answers is-active with nothing).
lab_unit_write() { printf '%s %s %s %s\n' "$2" "$3" "$4" "$5" > "$LAB_DIR/units/.$1.$$.tmp" && mv -f "$LAB_DIR/units/.$1.$$.tmp" "$LAB_DIR/units/$1"; }

# Binary a unit runs (its version is what the unit runs after a start).
lab_unit_binary_into() { # VAR UNIT
  case "$2" in
    k3s|k3s-agent) printf -v "$1" '%s' /usr/local/bin/k3s ;;
    k0scontroller|k0sworker) printf -v "$1" '%s' /usr/local/bin/k0s ;;
    kubelet) printf -v "$1" '%s' /usr/bin/kubelet ;;
    *) printf -v "$1" '%s' '' ;;
  esac
}
lab_unit_binary() { local _lab_b; lab_unit_binary_into _lab_b "$1"; [ -z "$_lab_b" ] || echo "$_lab_b"; }

# Whether a k0s unit runs workloads (a kubelet): k0sworker, or k0scontroller installed with --enable-worker/--single.
lab_k0s_workloads() { [ "$1" = k0sworker ] || grep -Eq -- '(^|[[:space:]])--(enable-worker|single)(=true)?([[:space:]]|$)' /etc/systemd/system/k0scontroller.service 2>/dev/null; }

lab_journal() { # UNIT IDENT MESSAGE (systemd's own lines come from pid 1, the service's from its main pid)
  local ts pid=$LAB_PID; TZ=UTC LC_ALL=C printf -v ts '%(%b %d %H:%M:%S)T' -1
  [ "$2" = systemd ] && pid=1
  printf '%s %s %s[%s]: %s\n' "$ts" "$LAB_NODE" "$2" "$pid" "$3" >> "$LAB_DIR/journal/$1.log"
}
lab_pid_of() { echo "$LAB_PID"; }

lab_unit_stop() { # UNIT
  lab_unit_read "$1"
  if [ "$U_STATE" != inactive ] && [ "$U_STATE" != failed ]; then
    lab_unit_write "$1" inactive "$U_VERSION" 0 "$EPOCHSECONDS"
    [ "$1" = k3s ] && lab_k3s_sqlite && lab_sqlite_close
    lab_journal "$1" systemd "Stopped $1.service."
    lab_event "{\"type\":\"service\",\"unit\":\"$1\",\"state\":\"stopped\",\"version\":\"$U_VERSION\"}"
  fi
}

# What a k3s unit's words (below) give it: a token, and a server to join (an agent must have both; a server with a
# server URL joins that server's cluster). Each flag or variable as a word of its own.
LAB_K3S_TOKEN_RE="[[:space:]]((K3S_TOKEN|K3S_TOKEN_FILE)='?[^'[:space:]]|--token[= ]|-t )"
LAB_K3S_SERVER_RE="[[:space:]](K3S_URL='?https://|--server[= ]|-s )"

# A unit's ExecStart as install.sh writes it (continuation lines, one quoted word each, quotes dropped) and its env
# file's lines, as one line of words with a space at each end: ' WORDS ENV '. One awk reads both files.
lab_unit_words_into() { # VAR UNIT-FILE
  local _lab_uf=(); [ -f "$2" ] && _lab_uf+=("$2"); [ -f "$2.env" ] && _lab_uf+=("$2.env")
  printf -v "$1" '%s' "$(awk -v unit="$2" '
    BEGIN { q = "\047" }
    FILENAME == unit { if ($0 ~ /^ExecStart=/) f = 1; if (f && !done) { l = $0; sub(/^ExecStart=/, "", l); done = l !~ /\\$/; sub(/\\$/, "", l); gsub(q, "", l); gsub(/\t/, " ", l); w = w l " " } next }
    { e = e $0 " " }
    END { printf " %s %s ", w, e }' "${_lab_uf[@]}" /dev/null 2>/dev/null)"
}

# What a service refuses at its own start (its fatal line), from its unit and env file: a k3s agent needs a token
# and a server URL (K3S_TOKEN/K3S_TOKEN_FILE and K3S_URL, or --token/--server; k3s pkg/cli/agent). Sets VAR to the
# message, or to nothing when the unit starts.
lab_unit_config_error_into() { # VAR UNIT
  printf -v "$1" '%s' ''
  [ "$2" = k3s-agent ] || return 0
  local _lab_w
  lab_unit_words_into _lab_w /etc/systemd/system/k3s-agent.service
  if ! [[ $_lab_w =~ $LAB_K3S_TOKEN_RE ]]; then printf -v "$1" '%s' '--token is required'
  elif ! [[ $_lab_w =~ $LAB_K3S_SERVER_RE ]]; then printf -v "$1" '%s' '--server is required'; fi
}

# Why a kubelet cannot run at all (prints the kubelet's own error; 0 when so): kubeadm's kubelet drop-in passes
# --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf; after
# `kubeadm reset` neither exists, and only `kubeadm join` writes them again.
lab_kubelet_credentials_error() { # UNIT
  # (A lone lab node, in no cluster, has nothing to join: only a cluster's nodes hold a kubeconfig.)
  [ "$1" = kubelet ] && [ "$LAB_DIST" = kubeadm ] && [ -n "$LAB_HAS_API" ] || return 1
  [ -f /etc/kubernetes/kubelet.conf ] || [ -f /etc/kubernetes/bootstrap-kubelet.conf ] && return 1
  echo 'failed to run Kubelet: unable to load bootstrap kubeconfig: stat /etc/kubernetes/bootstrap-kubelet.conf: no such file or directory'
}

# --- The control plane's datastore (embedded etcd of k3s and k0s, kubeadm's /var/lib/etcd) remembers the newest
# Kubernetes release whose control plane ran on it. Upstream supports no control-plane downgrade: an older control
# plane on it refuses to come up; only a snapshot taken before the upgrade (restored by the documented command) brings
# the old release back. A missing marker is a fresh datastore (a server that rejoins with an emptied db/).
# (The _into forms set a variable instead of printing: a unit's start asks these, and each subshell is a process.)
lab_datastore_file_into() { # VAR
  local _lab_dsf=""
  case "$LAB_DIST" in
    # A k3s server on SQLite (kine) keeps everything in db/state.db: the marker is inside it, so a copy of db/ (the
    # documented SQLite backup) carries it and putting the copy back restores it.
    k3s) if lab_k3s_sqlite; then _lab_dsf=$LAB_K3S_STATE_DB; else _lab_dsf=/var/lib/rancher/k3s/server/db/etcd/member/lab-written-by; fi ;;
    k0s) _lab_dsf=/var/lib/k0s/etcd/member/lab-written-by ;;
    kubeadm) _lab_dsf=/var/lib/etcd/member/lab-written-by ;;
  esac
  printf -v "$1" '%s' "$_lab_dsf"
}
lab_datastore_file() { local _lab_f; lab_datastore_file_into _lab_f; [ -z "$_lab_f" ] || echo "$_lab_f"; }
lab_datastore_version_into() { # VAR (empty for a fresh datastore; 1 off the control plane)
  printf -v "$1" '%s' ''
  [ "$LAB_ROLE" = control-plane ] || return 1
  if lab_k3s_sqlite; then printf -v "$1" '%s' "$(LC_ALL=C sed -n '2s/^kupgrade-lab-kine written-by=//p' "$LAB_K3S_STATE_DB" 2>/dev/null)"; return 0; fi
  local _lab_dvf _lab_dv=""; lab_datastore_file_into _lab_dvf
  [ -f "$_lab_dvf" ] && read -r _lab_dv < "$_lab_dvf"
  printf -v "$1" '%s' "$_lab_dv"
}
lab_datastore_version() { local _lab_v; lab_datastore_version_into _lab_v || return 1; [ -z "$_lab_v" ] || printf '%s\n' "$_lab_v"; }
lab_datastore_write() { # RELEASE: the control plane running RELEASE wrote to it (kept when a newer one already had)
  [ "$LAB_ROLE" = control-plane ] || return 0
  local f cur had now; lab_datastore_file_into f; lab_datastore_version_into cur
  if [ -n "$cur" ]; then lab_minor_into had "$cur"; lab_minor_into now "$1"; [ "$had" -gt "$now" ] && return 0; fi
  if lab_k3s_sqlite; then lab_sqlite_write "$1"; return; fi
  { [ -d "${f%/*}" ] || mkdir -p "${f%/*}"; } && printf '%s\n' "$1" > "$f"
}

# --- A stacked etcd's members (etcd-sim.ts): lab/etcd-cluster/members, and membership/<cluster ID>, what the data of
# that cluster records once a member was removed or added after its bootstrap (raft writes it in every member's data).
lab_etcd_membership() { awk -F'\t' 'NF >= 2 { print $1 "=https://" $2 ":2380" }' "$LAB_DIR/etcd-cluster/members" | sort | paste -sd, -; }
lab_etcd_record_membership() { # CLUSTER-ID
  local d="$LAB_DIR/etcd-cluster/membership"
  mkdir -p "$d" && lab_etcd_membership > "$d/.$1.$$" && mv -f "$d/.$1.$$" "$d/$1"
}
# AWK-PROGRAM EXTRA-LINE CLUSTER-ID: the member list rewritten whole (written aside, then renamed; the lines AWK-PROGRAM
# keeps, then EXTRA-LINE if any) and, given the cluster's ID, the membership its data now records.
lab_etcd_members_replace() {
  local f="$LAB_DIR/etcd-cluster/members"
  { awk -F'\t' "$1" "$f"; [ -z "${2:-}" ] || printf '%s\n' "$2"; } > "$f.$LAB_NODE.$$" && mv -f "$f.$LAB_NODE.$$" "$f"
  if [ -n "${3:-}" ]; then lab_etcd_record_membership "$3"; fi
}

# --- k3s on SQLite (topology datastore: sqlite; a server installed without --cluster-init). kine keeps the cluster
# in server/db/state.db (WAL mode: state.db-wal and state.db-shm beside it while k3s runs); no etcd, no 2379/2381.
LAB_K3S_STATE_DB=/var/lib/rancher/k3s/server/db/state.db
lab_k3s_sqlite() { [ "$LAB_DIST" = k3s ] && [ "$LAB_ROLE" = control-plane ] && [ "${LAB_DATASTORE:-etcd}" = sqlite ]; }
# The lab's state.db: SQLite's 16-byte header, the marker line, then rows (base64 text, so no line looks like one).
lab_sqlite_write() { # RELEASE: a fresh database written by RELEASE, or the marker of an existing one updated
  local f=$LAB_K3S_STATE_DB
  mkdir -p "$(dirname "$f")"
  if [ -s "$f" ]; then LC_ALL=C sed -i "2s/^kupgrade-lab-kine written-by=.*/kupgrade-lab-kine written-by=$1/" "$f"; return; fi
  { printf 'SQLite format 3\000\nkupgrade-lab-kine written-by=%s\n' "$1"; lab_sqlite_rows 48; } > "$f"
}
lab_sqlite_rows() { head -c "$(( $1 * 1024 ))" /dev/urandom | base64 -w 76; } # about KiB*1.35 of rows
# k3s running on it: kine opens the database (WAL files appear) and writes (the file grows a little).
lab_sqlite_open() {
  local f=$LAB_K3S_STATE_DB
  [ -f "$f" ] || return 0
  lab_disk_full /var && return 0 # kine's writes fail with SQLITE_FULL: nothing grows
  lab_sqlite_rows 4 >> "$f"
  lab_sqlite_rows 3 > "$f-wal"
  head -c 32768 /dev/zero > "$f-shm"
}
# k3s stopped: the last connection checkpoints the WAL into the database and removes it (SQLite's default).
lab_sqlite_close() {
  local f=$LAB_K3S_STATE_DB
  [ -f "$f-wal" ] && cat "$f-wal" >> "$f"
  rm -f "$f-wal" "$f-shm"
}
# Why a control plane at RELEASE cannot run on this datastore (prints it; 0 when refused).
lab_datastore_refusal() { [ "$LAB_ROLE" = control-plane ] || return 1; local ds; lab_datastore_version_into ds; lab_datastore_refusal_for "$1" "$ds"; }
lab_datastore_refusal_for() { # RELEASE DATASTORE-RELEASE
  local ds=$2 want had
  [ -n "$ds" ] || return 1
  lab_minor_into want "$1"; lab_minor_into had "$ds"
  [ "$want" -lt "$had" ] || return 1
  local restore="restore a snapshot taken before the upgrade"
  lab_k3s_sqlite && restore="put back the copy of /var/lib/rancher/k3s/server/db (and the token) taken before the upgrade"
  echo "the datastore was written by Kubernetes $(lab_plain "$ds") and cannot be read by $(lab_plain "$1"): downgrading the control plane is not supported; $restore"
}

# --- k3s embedded etcd after `k3s server --cluster-reset` on one server (facts §3.1): that server starts a new etcd
# cluster from the snapshot (lab/etcd-cluster/cluster-id, shared by the cluster's servers, changes); a peer that still
# holds member data of the old cluster cannot join it (etcd: "request cluster ID mismatch") until its server/db is
# deleted, as k3s documents. A server's member data records the cluster it joined; a fresh db/ joins the current one.
LAB_K3S_MEMBER_DIR=/var/lib/rancher/k3s/server/db/etcd/member
lab_k3s_etcd() { [ "$LAB_DIST" = k3s ] && [ "$LAB_ROLE" = control-plane ] && ! lab_k3s_sqlite; }
lab_k3s_cluster_id_into() { # VAR; 1 when the cluster has none
  local _lab_id=""; printf -v "$1" '%s' ''
  [ -f "$LAB_DIR/etcd-cluster/cluster-id" ] || return 1
  read -r _lab_id < "$LAB_DIR/etcd-cluster/cluster-id"; printf -v "$1" '%s' "$_lab_id"
}
lab_k3s_cluster_id() { local _lab_c; lab_k3s_cluster_id_into _lab_c || return 1; printf '%s\n' "$_lab_c"; }
lab_k3s_membership_refusal() { # prints why this server's etcd cannot start; 0 when refused
  lab_k3s_etcd || return 1
  local cluster mine=""; lab_k3s_cluster_id_into cluster || return 1
  [ -n "$cluster" ] && [ -d "$LAB_K3S_MEMBER_DIR" ] || return 1
  [ -f "$LAB_K3S_MEMBER_DIR/lab-cluster-id" ] && read -r mine < "$LAB_K3S_MEMBER_DIR/lab-cluster-id"
  [ "$mine" = "$cluster" ] && return 1
  echo "starting kubernetes: preparing server: start managed database: etcd member data in /var/lib/rancher/k3s/server/db belongs to a cluster that was reset on another server (request cluster ID mismatch): back up and delete /var/lib/rancher/k3s/server/db on this server, then start k3s to rejoin"
}
lab_k3s_join_cluster() { # a server that starts takes the current cluster's id into its member data
  lab_k3s_etcd || return 0
  if lab_k3s_fresh_member; then lab_k3s_new_member; return 0; fi
  local cluster; lab_k3s_cluster_id_into cluster || return 0
  [ -n "$cluster" ] || return 0
  { [ -d "$LAB_K3S_MEMBER_DIR" ] || mkdir -p "$LAB_K3S_MEMBER_DIR"; } && printf '%s\n' "$cluster" > "$LAB_K3S_MEMBER_DIR/lab-cluster-id"
}

# --- A k3s server starting on an empty datastore (k3s pkg/etcd: join, or a new cluster). Its member name is
# `<node>-<8 hex>`, drawn anew whenever server/db/etcd/name is gone (an uninstall, a db moved aside). Given a server
# to join (--server/-s, or K3S_URL in its env file) and the cluster's token, it joins as a new member — unless the
# cluster still lists a member of its node name: "duplicate node name found" (k3s-io/k3s#4025), until that member is
# removed (kubectl delete node: k3s's etcd controller removes it). Given none, it starts an etcd cluster of its own
# (with --cluster-init; the lab has no SQLite migration), which the other servers never hear of.
LAB_K3S_NAME_FILE=/var/lib/rancher/k3s/server/db/etcd/name
LAB_K3S_MEMBERS_DIR=$LAB_DIR/etcd-cluster/k3s-members
lab_k3s_members_dir() { echo "$LAB_K3S_MEMBERS_DIR"; }
lab_k3s_fresh_member() { lab_k3s_etcd && [ -d "$LAB_K3S_MEMBERS_DIR" ] && [ ! -s "$LAB_K3S_NAME_FILE" ]; }
lab_k3s_server_words() { local _lab_w; lab_unit_words_into _lab_w /etc/systemd/system/k3s.service; printf '%s\n' "$_lab_w"; }
lab_k3s_joins() { local _lab_w; lab_unit_words_into _lab_w /etc/systemd/system/k3s.service; [[ $_lab_w =~ $LAB_K3S_SERVER_RE ]]; }
lab_k3s_token_given() { # the token the server starts with: --token/-t, else K3S_TOKEN, else the file K3S_TOKEN_FILE names
  local w t; w=$(lab_k3s_server_words)
  t=$(printf '%s\n' "$w" | sed -n -E "s/.*[[:space:]](--token[= ]|-t )([^[:space:]]+).*/\2/p")
  [ -n "$t" ] || t=$(sed -n -E "s/^K3S_TOKEN=['\"]?([^'\"]*)['\"]?$/\1/p" /etc/systemd/system/k3s.service.env 2>/dev/null)
  if [ -z "$t" ]; then
    local file; file=$(sed -n -E "s/^K3S_TOKEN_FILE=['\"]?([^'\"]*)['\"]?$/\1/p" /etc/systemd/system/k3s.service.env 2>/dev/null)
    [ -n "$file" ] && [ -f "$file" ] && t=$(tr -d '\n' < "$file")
  fi
  printf '%s' "$t"
}
# The critical configuration a server joins with (k3s CriticalControlArgs: what every server must set alike, else
# "critical configuration value mismatch between servers"): these flags' values, one `flag=value` line each, sorted.
lab_k3s_critical() {
  lab_k3s_server_words | tr ' ' '\n' | awk '
    flag != "" { print flag "=" $0; flag = ""; next }
    /^--(cluster-cidr|service-cidr|cluster-dns|cluster-domain|disable|flannel-backend|egress-selector-mode)(=|$)/ { if (index($0, "=")) print; else flag = $0; next }
    /^--(flannel-ipv6-masq|disable-network-policy|disable-kube-proxy|disable-helm-controller|disable-cloud-controller|secrets-encryption)(=|$)/ { print (index($0, "=") ? $0 : $0 "=true") }' | sort
}
lab_k3s_join_refusal() { # prints why a fresh server cannot join; 0 when refused
  lab_k3s_fresh_member && lab_k3s_joins || return 1
  local given want; given=$(lab_k3s_token_given); want=$(cat "$LAB_DIR/etcd-cluster/k3s-token" 2>/dev/null)
  if [ -z "$given" ]; then echo "starting kubernetes: preparing server: token is required to join a cluster"; return 0; fi
  # The secure form must be the cluster's; the bare form is its password (k3s pkg/clientaccess).
  if [ "$given" != "$want" ] && [ "$given" != "${want##*::server:}" ]; then
    echo "starting kubernetes: preparing server: failed to validate token: token is not valid: https://$LAB_API_HOST:$LAB_API_PORT/cacerts: 401 Unauthorized"; return 0
  fi
  # Validated against the cluster's bootstrap data before etcd is joined (k3s pkg/cluster validateServerConfig).
  if [ -f "$LAB_DIR/etcd-cluster/k3s-critical" ] && [ "$(lab_k3s_critical)" != "$(cat "$LAB_DIR/etcd-cluster/k3s-critical")" ]; then
    echo "failed to validate server configuration: critical configuration value mismatch between servers"; return 0
  fi
  if [ -s "$LAB_K3S_MEMBERS_DIR/$LAB_NODE" ]; then
    # (k3s removes the name it drew, so the next start draws another: the lab draws one only when the join goes on.)
    echo "etcd cluster join failed: duplicate node name found, please use a unique name for this node"; return 0
  fi
  return 1
}
lab_k3s_new_member() {
  local name; name="$LAB_NODE-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
  mkdir -p "$LAB_K3S_MEMBER_DIR"
  if lab_k3s_joins; then
    printf '%s\n' "$name" > "$LAB_K3S_MEMBERS_DIR/$LAB_NODE"
    lab_k3s_cluster_id > "$LAB_K3S_MEMBER_DIR/lab-cluster-id"
    lab_journal k3s k3s "time=\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" level=info msg=\"Adding member $name=https://$LAB_ADDRESS:2380 to etcd cluster\""
  else
    od -An -N8 -tx1 /dev/urandom | tr -d ' \n' > "$LAB_K3S_MEMBER_DIR/lab-cluster-id"
    lab_journal k3s k3s "time=\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" level=info msg=\"Starting etcd for new cluster, cluster-reset=false\""
  fi
  printf '%s\n' "$name" > "$LAB_K3S_NAME_FILE"
  # The server keeps its cluster's token in the secure form (a new cluster's is new), node-token a link to it.
  local t=/var/lib/rancher/k3s/server/token
  if lab_k3s_joins; then cat "$LAB_DIR/etcd-cluster/k3s-token" > "$t"; else printf 'K10%s::server:%s\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" > "$t"; fi
  chmod 600 "$t"; ln -sfn "$t" /var/lib/rancher/k3s/server/node-token
}

lab_unit_start() { # UNIT: starts the installed binary; returns once it is active (bounded by the start delay)
  local bin ver due
  lab_unit_read "$1"
  if [ "$U_STATE" = active ] || [ "$U_STATE" = activating ]; then return 0; fi
  lab_unit_binary_into bin "$1"
  lab_binary_version_into ver "$bin"
  if [ -z "$ver" ]; then
    lab_unit_write "$1" failed "" 0 "$EPOCHSECONDS"
    lab_journal "$1" systemd "$1.service: Failed to locate executable $bin: No such file or directory"
    echo "Job for $1.service failed because of unavailable resources or another system error." >&2
    echo "See \"systemctl status $1.service\" and \"journalctl -xeu $1.service\" for details." >&2
    return 1
  fi
  # A binary built for another architecture: systemd cannot exec it (status 203/EXEC). install.sh's units (Type=notify
  # for a server, Type=exec for an agent) fail their start job; a Type=simple one (k0s, the kubelet) counts as started
  # at the fork and fails right after.
  local barch; lab_binary_arch_into barch "$bin"
  if [ "$barch" != "${LAB_ARCH:-amd64}" ]; then
    lab_unit_write "$1" failed "" 0 "$EPOCHSECONDS"
    lab_journal "$1" systemd "$1.service: Failed to execute $bin: Exec format error"
    lab_journal "$1" systemd "$1.service: Failed at step EXEC spawning $bin: Exec format error"
    lab_journal "$1" systemd "$1.service: Main process exited, code=exited, status=203/EXEC"
    lab_journal "$1" systemd "$1.service: Failed with result 'exit-code'."
    lab_event "{\"type\":\"service\",\"unit\":\"$1\",\"state\":\"failed\",\"version\":\"\"}"
    case "$1" in k3s|k3s-agent) ;; *) return 0 ;; esac
    echo "Job for $1.service failed because the control process exited with error code." >&2
    echo "See \"systemctl status $1.service\" and \"journalctl -xeu $1.service\" for details." >&2
    return 1
  fi
  # (The credentials check applies to the kubelet only: asked only there, as it asks in a subshell.)
  local refused="" nocreds=""
  lab_unit_config_error_into refused "$1"
  [ "$1" = kubelet ] && { nocreds=$(lab_kubelet_credentials_error "$1") || nocreds=""; }
  if [ -n "$nocreds" ]; then
    # The kubelet (Type=simple) starts, finds no kubeconfig and exits; systemd restarts it every RestartSec
    # (`activating (auto-restart)`) until `kubeadm join` gives it one. It never registers its Node.
    lab_unit_write "$1" auto-restart "$ver" 0 "$EPOCHSECONDS"
    lab_journal "$1" systemd "Started $1.service - kubelet: The Kubernetes Node Agent."
    lab_journal "$1" kubelet "$(printf 'E%s %7s run.go:72] ' "$(date -u '+%m%d %H:%M:%S.%6N')" "$LAB_PID")\"command failed\" err=\"$nocreds\""
    lab_journal "$1" systemd "$1.service: Main process exited, code=exited, status=1/FAILURE"
    lab_journal "$1" systemd "$1.service: Failed with result 'exit-code'."
    lab_event "{\"type\":\"service\",\"unit\":\"$1\",\"state\":\"failed\",\"version\":\"$ver\"}"
    return 0
  fi
  local downgrade="" fatal=""
  case "$1" in k3s|k0scontroller) downgrade=$(lab_datastore_refusal "$ver") && fatal="apiserver exited: $downgrade" || downgrade="" ;; esac
  if [ -z "$downgrade" ] && [ "$1" = k3s ]; then downgrade=$(lab_k3s_membership_refusal) && fatal=$downgrade || downgrade=""; fi
  if [ -z "$downgrade" ] && [ "$1" = k3s ]; then downgrade=$(lab_k3s_join_refusal) && fatal=$downgrade || downgrade=""; fi
  if [ -n "$downgrade" ]; then
    # The process starts, its control plane finds the newer datastore and exits: k3s (Type=notify) fails the start
    # job; k0s (Type=simple) has started as far as systemctl is concerned and fails right after.
    lab_unit_write "$1" failed "$ver" 0 "$EPOCHSECONDS"
    lab_journal "$1" systemd "Starting $1.service..."
    if [ "$1" = k3s ]; then
      lab_journal "$1" k3s "time=\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" level=info msg=\"Starting k3s $ver ($(sed -n "s/^LAB_COMMIT='\(.*\)'$/\1/p" "$bin" | head -n1))\""
      lab_journal "$1" k3s "time=\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" level=fatal msg=\"$fatal\""
    else
      lab_journal "$1" systemd "Started $1.service."
      lab_journal "$1" k0s "time=\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" level=info msg=\"k0s version: $ver\""
      lab_journal "$1" k0s "time=\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" level=error msg=\"Failed to start controller\" error=\"kube-apiserver: $downgrade\""
    fi
    lab_journal "$1" systemd "$1.service: Main process exited, code=exited, status=1/FAILURE"
    lab_journal "$1" systemd "$1.service: Failed with result 'exit-code'."
    lab_event "{\"type\":\"service\",\"unit\":\"$1\",\"state\":\"failed\",\"version\":\"$ver\"}"
    [ "$1" = k3s ] || return 0
    echo "Job for $1.service failed because the control process exited with error code." >&2
    echo "See \"systemctl status $1.service\" and \"journalctl -xeu $1.service\" for details." >&2
    return 1
  fi
  if [ -n "$refused" ]; then
    lab_unit_write "$1" failed "$ver" 0 "$EPOCHSECONDS"
    lab_journal "$1" systemd "Starting $1.service..."
    lab_journal "$1" "$(basename "$bin")" "time=\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" level=fatal msg=\"$refused\""
    lab_journal "$1" systemd "$1.service: Main process exited, code=exited, status=1/FAILURE"
    lab_journal "$1" systemd "$1.service: Failed with result 'exit-code'."
    echo "Job for $1.service failed because the control process exited with error code." >&2
    echo "See \"systemctl status $1.service\" and \"journalctl -xeu $1.service\" for details." >&2
    return 1
  fi
  # k0s unpacks its embedded binaries on start: the kubelet under /var/lib/k0s/bin now matches the k0s binary (only
  # where k0s runs a kubelet: a worker, or a controller with --enable-worker).
  case "$1" in k0s*) lab_k0s_workloads "$1" && [ -f "$LAB_DIR/mirror/$ver/kubelet-embedded" ] && mkdir -p /var/lib/k0s/bin && cat "$LAB_DIR/mirror/$ver/kubelet-embedded" > /var/lib/k0s/bin/kubelet && chmod 755 /var/lib/k0s/bin/kubelet ;; esac
  case "$1" in k3s|k0scontroller) lab_datastore_write "$ver" ;; esac
  [ "$1" = k3s ] && lab_k3s_join_cluster
  [ "$1" = k3s ] && lab_k3s_sqlite && lab_sqlite_open
  lab_now_ms_into due; due=$(( due + LAB_SERVICE_START_MS ))
  lab_unit_write "$1" activating "$ver" "$due" $(( due / 1000 ))
  lab_journal "$1" systemd "Starting $1.service..."
  lab_event "{\"type\":\"service\",\"unit\":\"$1\",\"state\":\"starting\",\"version\":\"$ver\",\"due\":$due}"
  local frac; printf -v frac '%03d' $(( LAB_SERVICE_START_MS % 1000 ))
  sleep "$(( LAB_SERVICE_START_MS / 1000 )).$frac"
  lab_journal "$1" "${bin##*/}" "Running ${bin##*/} $ver"
  case "$1" in k3s|k3s-agent) lab_k3s_import_images "$1" ;; esac
  lab_journal "$1" systemd "Started $1.service."
}

# k3s's agent imports every file in agent/images at each start (pkg/agent/containerd preloadImages: .tar, .tar.gz,
# .tar.zst … imported, a .txt is a list to pull, anything else an error). The lab's archives say whose images they hold;
# the node keeps the releases whose system images its containerd has (imported images stay), in state/airgap-images.
# (The boot path does the same: lab-node.ts importAirgapImages.)
lab_k3s_import_images() { # UNIT
  local d=/var/lib/rancher/k3s/agent/images f rel ts
  [ -d "$d" ] || return 0
  for f in "$d"/*; do
    [ -f "$f" ] || continue
    ts=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    case "${f,,}" in
      *.txt) continue ;;
      *.tar|*.tar.lz4|*.tar.bz2|*.tbz|*.tar.gz|*.tgz|*tar.zst|*.tzst) ;;
      *) lab_journal "$1" k3s "time=\"$ts\" level=error msg=\"Error encountered while importing $f: unhandled file type\""; continue ;;
    esac
    lab_journal "$1" k3s "time=\"$ts\" level=info msg=\"Importing images from $f\""
    rel=$(sed -n "s/^LAB_IMAGES_RELEASE='\(.*\)'\$/\1/p" "$f" | head -n 1)
    [ -n "$rel" ] || continue
    grep -qxF -- "$rel" "$LAB_DIR/state/airgap-images" 2>/dev/null || printf '%s\n' "$rel" >> "$LAB_DIR/state/airgap-images"
  done
}

# Privilege checks the lab enforces for non-root logins (the lab itself runs as the host's root).
lab_is_root() { [ "${LAB_EUID:-0}" = 0 ]; }

# A login other than root runs a program only from a folder every step of whose path it may enter, and a script only
# if it may read and execute it: otherwise the kernel refuses the exec and the login's bash says
# `bash: line 1: PATH: Permission denied` (exit 126) before the program starts. The lab runs every command as the
# host's root, so each stand-in checks its own path for the login (root's 0700 backup folders); the lab's own stand-ins
# in $LAB_DIR/.. are everyone's. (bash names the line of its -c script; the stand-in cannot know it and says line 1.)
lab_exec_permitted() {
  lab_is_root && return 0
  case "$0" in /*) ;; *) return 0 ;; esac
  case "$0" in "${LAB_DIR%/*}"/*) return 0 ;; esac
  local p=${0%/*} dirs=() modes m i=0
  while [ -n "$p" ]; do dirs+=("$p"); p=${p%/*}; done
  modes=$(stat -Lc %A -- "$0" "${dirs[@]}" 2>/dev/null) || return 0
  while read -r m; do
    if [ $i = 0 ]; then case "$m" in ???????r?x) ;; *) return 1 ;; esac
    else case "$m" in ?????????[xt]) ;; *) return 1 ;; esac; fi
    i=$((i + 1))
  done <<< "$modes"
}
lab_exec_permitted || { echo "bash: line 1: $0: Permission denied" >&2; exit 126; }

lab_installed_event() { # BINARY-NAME VERSION
  lab_event "{\"type\":\"installed\",\"binary\":\"$1\",\"version\":\"$2\"}"
}

# lab_install_from_mirror TOOL RELEASE DEST [FROM]: what a package manager or installer does to the binary file. Written in
# place (same inode) because /usr/bin/kube* are single-file bind mounts in the node's namespace.
lab_install_from_mirror() {
  local src=${4:-"$LAB_DIR/mirror/$2/$1"}
  [ -f "$src" ] || return 1
  cat "$src" > "$3" && chmod 755 "$3"
  lab_installed_event "$1" "$2"
}

lab_in_mirror() { local v; for v in $LAB_MIRROR; do [ "$v" = "$1" ] && return 0; done; return 1; }

# Disk numbers for df: the disk-full fault leaves no space on the filesystem (params: mount=/|/var, default both).
lab_disk() { # MOUNT -> sets D_TOTAL D_USED
  if [ "$1" = /var ] && [ -n "$LAB_VAR_TOTAL" ]; then D_TOTAL=$LAB_VAR_TOTAL D_USED=$LAB_VAR_USED; else D_TOTAL=$LAB_DISK_TOTAL D_USED=$LAB_DISK_USED; fi
  if lab_fault disk-full; then
    local m; m=$(lab_fault_param disk-full mount all)
    if [ "$m" = all ] || [ "$m" = "$1" ]; then D_USED=$D_TOTAL; fi
  fi
}
lab_disk_full() { lab_disk "${1:-/}"; [ "$D_USED" -ge "$D_TOTAL" ]; }

# Plain Kubernetes version of a release string: v1.29.2+k3s1 -> v1.29.2
lab_plain() { printf '%s' "${1%%+*}"; }
# The _into forms set the variable named first instead of printing: no subshell (see lab_now_ms_into).
lab_minor_into() { local _lab_p=${2%%+*}; _lab_p=${_lab_p#v}; _lab_p=${_lab_p#*.}; printf -v "$1" '%s' "${_lab_p%%.*}"; }
lab_minor() { local m; lab_minor_into m "$1"; printf '%s' "$m"; }

# --- Kubernetes packages (kubeadm nodes; facts §2.8, §3.3): kubeadm/kubelet/kubectl from pkgs.k8s.io, one repo
# per minor. Debian versions look like 1.30.4-1.1, RPM ones like 1.30.4-150500.1.1.
LAB_K8S_PKGS="kubeadm kubelet kubectl"
lab_is_k8s_pkg() { [ "$LAB_DIST" = kubeadm ] && case " $LAB_K8S_PKGS " in *" $1 "*) return 0 ;; esac; return 1; }
# The kubectl a binary of release VERSION runs: a node's kubectl package, and the API client built into kubeadm and
# k0s, are their own release's. The host's kubectl of that minor beside LAB_REAL_KUBECTL when it has one (the Google
# Cloud SDK's kubectl.1.NN, which its kubectl dispatcher would otherwise pick after asking the server), else
# LAB_REAL_KUBECTL itself.
lab_kubectl_into() { local _lab_m; lab_minor_into _lab_m "$2"; if [ -x "$LAB_REAL_KUBECTL.1.$_lab_m" ]; then printf -v "$1" '%s' "$LAB_REAL_KUBECTL.1.$_lab_m"; else printf -v "$1" '%s' "$LAB_REAL_KUBECTL"; fi; }
# Where a Kubernetes package puts its binary; the _into form sets VAR without a subshell.
lab_pkg_path_into() { printf -v "$1" '%s' "/usr/bin/$2"; }
lab_pkg_path() { local _lab_p; lab_pkg_path_into _lab_p "$1"; echo "$_lab_p"; }
lab_deb_version_into() { local _lab_p=${2%%+*}; printf -v "$1" '%s' "${_lab_p#v}-1.1"; }
lab_deb_version() { local d; lab_deb_version_into d "$1"; echo "$d"; }
lab_rpm_version() { local p=${1%%+*}; echo "${p#v}-150500.1.1"; }
# The minor the configured repo serves (apt: sources.list.d/kubernetes.list, dnf: yum.repos.d/kubernetes.repo).
# Read by the shell (apt-get, apt-cache and every repository check ask): the first line naming a pkgs.k8s.io minor.
lab_repo_minor_into() {
  local _lab_f=/etc/apt/sources.list.d/kubernetes.list _lab_l
  [ "$LAB_OS_FAMILY" = dnf ] && _lab_f=/etc/yum.repos.d/kubernetes.repo
  printf -v "$1" '%s' ''
  [ -r "$_lab_f" ] || return 0
  while IFS= read -r _lab_l || [ -n "$_lab_l" ]; do
    [[ $_lab_l =~ pkgs\.k8s\.io/core:/stable:/v1\.([0-9]*)/ ]] && { printf -v "$1" '%s' "${BASH_REMATCH[1]}"; return 0; }
  done < "$_lab_f"
}
lab_repo_minor() { local m; lab_repo_minor_into m; echo "$m"; }
lab_repo_url() {
  local m; lab_repo_minor_into m
  [ "$LAB_OS_FAMILY" = dnf ] && echo "https://pkgs.k8s.io/core:/stable:/v1.$m/rpm" || echo "https://pkgs.k8s.io/core:/stable:/v1.$m/deb"
}
# Releases the configured repo offers, newest first.
lab_repo_releases() {
  local m v vm; lab_repo_minor_into m
  [ -n "$m" ] || return 0
  for v in $LAB_MIRROR; do lab_minor_into vm "$v"; [ "$vm" = "$m" ] && echo "$v"; done | sort -t. -k3,3nr
}
lab_installed_release() { local _lab_p; lab_pkg_path_into _lab_p "$1"; lab_binary_version "$_lab_p"; }
lab_installed_release_into() { local _lab_p; lab_pkg_path_into _lab_p "$2"; lab_binary_version_into "$1" "$_lab_p" || true; }

# --- OS updates: apt/dnf upgrade stages them (reboot-required when a kernel/libc is among them); a reboot applies.
lab_os_pending() { [ -n "$LAB_OS_UPDATES" ] && [ ! -e "$LAB_DIR/state/os-staged" ] && [ ! -e "$LAB_DIR/state/os-updated" ]; }
lab_os_stage() {
  : > "$LAB_DIR/state/os-staged"
  local p need=0
  for p in $LAB_OS_UPDATES; do case "$p" in linux-image*|kernel|kernel-core|glibc|libc6|systemd|flatcar) need=1 ;; esac; done
  if [ $need = 1 ]; then
    echo "*** System restart required ***" > /run/reboot-required
    for p in $LAB_OS_UPDATES; do echo "$p"; done >> /run/reboot-required.pkgs
  fi
}

# Sourced by a release binary built for another architecture than the node's (its LAB_BINARY_ARCH line): the kernel
# refuses to exec it (ENOEXEC) and the shell that tried says so, exit 126.
if [ -n "${LAB_BINARY_ARCH:-}" ] && [ "$LAB_BINARY_ARCH" != "${LAB_ARCH:-amd64}" ]; then
  echo "bash: $0: cannot execute binary file: Exec format error" >&2
  exit 126
fi
