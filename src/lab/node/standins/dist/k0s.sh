#!/bin/bash
# Body of the k0s stand-in binary (lab prepends LAB_VERSION/LAB_COMMIT). Formats: facts §2.2 (`k0s version`, -a, -j),
# §3.2 (stop/start, backup --save-path → k0s_backup_<datetime>.tar.gz, reset refuses while running, install
# controller|worker [--force], etcd member-list), §7 (units k0scontroller/k0sworker, /var/lib/k0s). k0s logs with
# logrus: `time="…" level=info msg="…"` on stderr.
. "$LAB_DIR/lib.sh"
plain=$(lab_plain "$LAB_VERSION")
log() { printf 'time="%s" level=%s msg="%s"\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$2" >&2; }
installed_unit() { for u in k0scontroller k0sworker; do [ -f "/etc/systemd/system/$u.service" ] && { echo "$u"; return 0; }; done; return 1; }
# Messages as k0s's cmd/stop, cmd/start, cmd/status and pkg/install print them (cobra prefixes "Error: ").
need_root() { lab_is_root && return 0; echo "Error: this command must be run as root" >&2; exit 1; }
not_installed() { echo "Error: k0s has not been installed as a service" >&2; exit 1; }

components() {
  K_RUNC=v1.1.12 K_CONTAINERD=v1.7.20 K_KINE=v0.11.4 K_ETCD=v3.5.13 K_KONN=v0.30.3
}

case "${1:-}" in
  version)
    shift; all=0 json=0
    for a in "$@"; do case "$a" in -a|--all) all=1 ;; -j|--json) json=1 ;; esac; done
    components
    if [ $json = 1 ]; then
      printf '{"k0s":"%s","runc":"%s","containerd":"%s","kubernetes":"%s","kine":"%s","etcd":"%s","konnectivity":"%s"}\n' \
        "$LAB_VERSION" "$K_RUNC" "$K_CONTAINERD" "$plain" "$K_KINE" "$K_ETCD" "$K_KONN"
    elif [ $all = 1 ]; then
      printf 'k0s :%s\nrunc :%s\ncontainerd :%s\nkubernetes :%s\nkine :%s\netcd :%s\nkonnectivity :%s\n' \
        "$LAB_VERSION" "$K_RUNC" "$K_CONTAINERD" "$plain" "$K_KINE" "$K_ETCD" "$K_KONN"
    else
      echo "$LAB_VERSION"
    fi ;;
  stop)
    # k0s stop on a stopped service is an error ("already stopped"), as in k0s cmd/stop.
    need_root
    u=$(installed_unit) || not_installed
    lab_unit_read "$u"
    if [ "$U_STATE" = inactive ] || [ "$U_STATE" = failed ]; then echo "Error: already stopped" >&2; exit 1; fi
    lab_unit_stop "$u" ;;
  start)
    need_root
    u=$(installed_unit) || not_installed
    lab_unit_read "$u"
    if [ "$U_STATE" = active ]; then echo "Error: already running" >&2; exit 1; fi
    lab_unit_start "$u" >/dev/null || exit 1 ;;
  status)
    # Answered by the running k0s over its status socket: nothing runs → "k0s is not running" (pkg/config).
    u=$(installed_unit) || { echo "Error: k0s is not running" >&2; exit 1; }
    lab_unit_read "$u"
    if [ "$U_STATE" != active ]; then echo "Error: k0s is not running" >&2; exit 1; fi
    # The socket is root's (k0s listens as root, umask 022: srwxr-xr-x), and connecting needs write permission.
    if ! lab_is_root; then echo 'Error: status: can'"'"'t get "status" via "/run/k0s/status.sock": Get "http://localhost/status": dial unix /run/k0s/status.sock: connect: permission denied' >&2; exit 1; fi
    [ "$u" = k0scontroller ] && role=controller || role=worker
    workloads=false; lab_k0s_workloads "$u" && workloads=true
    echo "Version: $U_VERSION"
    echo "Process ID: $(lab_pid_of "$u")"
    echo "Role: $role"
    echo "Workloads: $workloads"
    echo "SingleNode: false"
    if [ $workloads = true ]; then echo "Kube-api probing successful: true"; echo "Kube-api probing last error:  "; fi
    echo "Init System: linux-systemd"
    echo "Service file: /etc/systemd/system/$u.service" ;;
  install)
    need_root
    shift; role=${1:-}; shift || true
    case "$role" in controller|worker) ;; *) echo "Error: unknown command \"$role\" for \"k0s install\"" >&2; exit 1 ;; esac
    # The role's flags go into ExecStart as k0s install writes them (--flag=value); --force is install's own.
    force=0 extra="" tokenfile=/etc/k0s/k0stoken prev="" given=""
    for a in "$@"; do
      case "$prev" in --token-file) tokenfile=$a given=1 ;; esac
      case "$a" in --force) force=1 ;; --enable-worker|--single|--no-taints) extra+=" $a=true" ;; --token-file=*) tokenfile=${a#*=} given=1 ;; esac
      prev=$a
    done
    # A worker joins with its token file (k0s install worker --token-file FILE); install checks it exists.
    if [ $role = worker ] && [ ! -f "$tokenfile" ]; then echo "Error: failed to install k0s service: open $tokenfile: no such file or directory" >&2; exit 1; fi
    u=k0s$role; f=/etc/systemd/system/$u.service
    if [ -f "$f" ] && [ $force = 0 ]; then echo "Error: failed to install k0s service: Init already exists: $f" >&2; exit 1; fi
    # A controller given a token joins another with it (k0s token create --role=controller).
    if [ $role = controller ]; then ex="/usr/local/bin/k0s controller --config=/etc/k0s/k0s.yaml${given:+ --token-file=$tokenfile}$extra"; else ex="/usr/local/bin/k0s worker --token-file=$tokenfile$extra"; fi
    printf '[Unit]\nDescription=k0s - Zero Friction Kubernetes\nDocumentation=https://docs.k0sproject.io\nConditionFileIsExecutable=/usr/local/bin/k0s\nAfter=network-online.target\nWants=network-online.target\n\n[Service]\nStartLimitInterval=5\nStartLimitBurst=10\nExecStart=%s\nRestartSec=10\nDelegate=yes\nKillMode=process\nLimitCORE=infinity\nTasksMax=infinity\nTimeoutStartSec=0\nLimitNOFILE=999999\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n' "$ex" > "$f"
    [ -f "$LAB_DIR/units/$u" ] || lab_unit_write "$u" inactive "" 0 "$(date +%s)"
    log info "Installing k0s service" ;;
  backup)
    need_root
    shift; dir=""
    while [ $# -gt 0 ]; do case "$1" in --save-path) dir=$2; shift ;; --save-path=*) dir=${1#*=} ;; esac; shift; done
    [ -n "$dir" ] || { echo "Error: save path must be an existing directory" >&2; exit 1; }
    if [ "$LAB_ROLE" != control-plane ]; then echo "Error: backup command must be run on the controller node, have you forgotten to use sudo?" >&2; exit 1; fi
    if lab_fault etcd-unhealthy; then log error "failed to create etcd snapshot: context deadline exceeded"; echo "Error: context deadline exceeded" >&2; exit 1; fi
    name="k0s_backup_$(date -u +%Y-%m-%dT%H_%M_%S_000Z).tar.gz"
    # The archive holds the PKI and the etcd data (k0s docs/backup.md), which remembers the release that wrote it.
    parts="pki"; [ -d /var/lib/k0s/etcd ] && parts="pki etcd"
    if [ "$dir" = - ]; then tar -czf - -C /var/lib/k0s $parts 2>/dev/null; exit 0; fi
    [ -d "$dir" ] || { echo "Error: save path must be an existing directory" >&2; exit 1; }
    if lab_disk_full "$dir"; then echo "Error: failed to create archive: write $dir/$name: no space left on device" >&2; exit 1; fi
    log info "Starting backup"
    tar -czf "$dir/$name" -C /var/lib/k0s $parts 2>/dev/null
    lab_event "{\"type\":\"backup\",\"path\":\"$dir/$name\"}"
    log info "archive $dir/$name created successfully" ;;
  restore)
    # k0s cmd/restore: root, k0s down, the archive exists; it unpacks PKI and etcd data into /var/lib/k0s and writes
    # the archived k0s.yaml next to the archive's name (k0s_<timestamp>.yaml in the working directory). Its etcd step
    # is etcdutl's snapshot restore (k0s pkg/backup/etcd_unix.go), which refuses a data dir that is not empty: a
    # restore is done on a fresh or reset node (k0s docs/backup.md), never over the controller's own etcd data.
    need_root
    path=${2:-}
    [ -n "$path" ] || { echo "Error: path to backup archive expected" >&2; exit 1; }
    u=$(installed_unit) || u=""
    if [ -n "$u" ]; then lab_unit_read "$u"; if [ "$U_STATE" = active ] || [ "$U_STATE" = activating ]; then
      log fatal "k0s seems to be running! k0s must be down during the restore operation."; exit 1; fi; fi
    [ "$path" = - ] || [ -f "$path" ] || { echo "Error: given file $path does not exist" >&2; exit 1; }
    log info "Starting restore"
    if [ -n "$(ls -A /var/lib/k0s/etcd 2>/dev/null)" ]; then
      log info "Restore step: etcd"
      echo 'Error: failed to restore on step `etcd`: data-dir "/var/lib/k0s/etcd" not empty or could not be read' >&2; exit 1
    fi
    mkdir -p /var/lib/k0s
    if [ "$path" = - ]; then tar -xzf - -C /var/lib/k0s; else tar -xzf "$path" -C /var/lib/k0s; fi || { echo "Error: failed to unpack $path" >&2; exit 1; }
    # etcdutl snapshot restore starts a new etcd cluster with this controller its only member: the others must be
    # reset and join it again (k0s docs/backup.md); their old members are gone from the list.
    members="$LAB_DIR/etcd-cluster/k0s-members"
    if [ -d "$members" ]; then rm -f "$members"/*; printf 'https://%s:2380\n' "$LAB_ADDRESS" > "$members/$LAB_NODE"; fi
    lab_datastore_restored "$path"
    log info "restore finished successfully" ;;
  reset)
    need_root
    u=$(installed_unit) || u=""
    if [ -n "$u" ]; then lab_unit_read "$u"; if [ "$U_STATE" = active ] || [ "$U_STATE" = activating ]; then
      echo "Error: k0s seems to be running! please stop k0s before reset." >&2; exit 1; fi; fi
    log info "* containers steps"
    log info "* remove k0s users step:"
    log info "* uninstal service step"
    rm -f /etc/systemd/system/k0scontroller.service /etc/systemd/system/k0sworker.service
    log info "* remove directories step"
    rm -rf /var/lib/k0s/* /run/k0s
    lab_event '{"type":"reset"}'
    log info "k0s cleanup operations done."
    log warning "To ensure a full reset, a node reboot is recommended." ;;
  etcd)
    shift
    MEMBERS="$LAB_DIR/etcd-cluster/k0s-members"
    [ "$LAB_ROLE" = control-plane ] || { echo "Error: etcd is not available on worker nodes" >&2; exit 1; }
    case "${1:-}" in
      member-list)
        # Every member of the cluster's etcd (lab/etcd-cluster/members), as k0s prints its peer URLs.
        if lab_fault etcd-unhealthy; then log error "failed to get etcd members: context deadline exceeded"; echo "Error: context deadline exceeded" >&2; exit 1; fi
        out=""
        if [ -d "$MEMBERS" ]; then
          for f in "$MEMBERS"/*; do [ -f "$f" ] && out+="${out:+,}\"$(basename "$f")\":\"$(cat "$f")\""; done
        else
          while IFS=$'\t' read -r n a _ _; do [ -n "$n" ] && out+="${out:+,}\"$n\":\"https://$a:2380\""; done < "$LAB_DIR/etcd-cluster/members"
        fi
        printf '{"members":{%s}}\n' "$out" ;;
      leave)
        # k0s etcd leave [--peer-address ADDR]: through this controller's etcd (k0s must run here), the member at
        # https://ADDR:2380 (default this node's) is removed from the cluster.
        shift; peer=$LAB_ADDRESS
        while [ $# -gt 0 ]; do case "$1" in --peer-address) peer=${2:-}; shift ;; --peer-address=*) peer=${1#*=} ;; esac; shift; done
        lab_unit_read k0scontroller
        [ "$U_STATE" = active ] || { log fatal "can't connect to the etcd: dial tcp 127.0.0.1:2379: connect: connection refused"; exit 1; }
        if lab_fault etcd-unhealthy; then log fatal "context deadline exceeded"; exit 1; fi
        if [ -d "$MEMBERS" ]; then
          gone=""; for f in "$MEMBERS"/*; do [ -f "$f" ] && [ "$(cat "$f")" = "https://$peer:2380" ] && { rm -f "$f"; gone=1; }; done
          [ -n "$gone" ] || { log fatal "etcdserver: member not found: no member with peer URL https://$peer:2380"; exit 1; }
        fi
        log info "Successfully left the etcd cluster" ;;
      *) echo "Error: unknown command \"${1:-}\" for \"k0s etcd\"" >&2; exit 1 ;;
    esac ;;
  token)
    # k0s token create --role=worker [--expiry=DURATION]: a bootstrap token Secret in kube-system (via the controller's
    # admin kubeconfig), printed as k0s join tokens are: a kubeconfig (server, CA, user kubelet-bootstrap with the
    # token), gzipped, base64 (k0s pkg/token).
    shift
    [ "${1:-}" = create ] || { echo "Error: unknown command \"${1:-}\" for \"k0s token\"" >&2; exit 1; }
    shift; role=worker expiry=0s
    while [ $# -gt 0 ]; do
      case "$1" in --role=*) role=${1#*=} ;; --role) role=${2:-}; shift ;; --expiry=*) expiry=${1#*=} ;; --expiry) expiry=${2:-}; shift ;; esac
      shift
    done
    [ "$role" = worker ] || [ "$role" = controller ] || { echo "Error: unsupported role \"$role\"; supported roles are \"controller\" and \"worker\"" >&2; exit 1; }
    need_root
    [ "$LAB_ROLE" = control-plane ] || { echo "Error: failed to create join token: open /var/lib/k0s/pki/admin.conf: no such file or directory" >&2; exit 1; }
    u=$(installed_unit) || u=""; lab_unit_read "${u:-k0scontroller}"
    [ "$U_STATE" = active ] || { echo "Error: failed to create join token: k0s is not running" >&2; exit 1; }
    secs=0 d=$expiry
    while [[ $d =~ ^([0-9]+)(h|m|s)(.*)$ ]]; do
      case ${BASH_REMATCH[2]} in h) secs=$(( secs + BASH_REMATCH[1] * 3600 )) ;; m) secs=$(( secs + BASH_REMATCH[1] * 60 )) ;; s) secs=$(( secs + BASH_REMATCH[1] )) ;; esac
      d=${BASH_REMATCH[3]}
    done
    [ -z "$d" ] || { echo "Error: invalid argument \"$expiry\" for \"--expiry\" flag: time: invalid duration \"$expiry\"" >&2; exit 1; }
    id=$(LC_ALL=C tr -dc 'a-z0-9' < /dev/urandom | head -c 6); secret=$(LC_ALL=C tr -dc 'a-z0-9' < /dev/urandom | head -c 16)
    exp=""; [ "$secs" -gt 0 ] && exp=$(date -u -d "@$(( $(date +%s) + secs ))" +%Y-%m-%dT%H:%M:%SZ)
    kc=/var/lib/k0s/pki/admin.conf
    # k0s pkg/token: a worker token authenticates the kubelet's bootstrap; a controller token is for the join API.
    if [ "$role" = worker ]; then usage='"description":"Worker bootstrap token generated by k0s","usage-bootstrap-api-auth":"true","usage-bootstrap-authentication":"true","usage-bootstrap-api-worker-calls":"true"'
    else usage='"description":"Controller bootstrap token generated by k0s","usage-bootstrap-api-auth":"true","usage-controller-join":"true"'; fi
    body="{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"bootstrap-token-$id\",\"namespace\":\"kube-system\"},\"type\":\"bootstrap.kubernetes.io/token\",\"stringData\":{\"token-id\":\"$id\",\"token-secret\":\"$secret\",${exp:+\"expiration\":\"$exp\",}$usage}}"
    lab_kubectl_into kubectl "$LAB_VERSION"
    err=$(printf '%s' "$body" | "$kubectl" --kubeconfig "$kc" --request-timeout=10s create -f - 2>&1 >/dev/null) || { echo "Error: failed to create join token: $err" >&2; exit 1; }
    server=$(sed -n 's/^ *server: *//p' "$kc" | head -n1); ca=$(sed -n 's/^ *certificate-authority-data: *//p' "$kc" | head -n1)
    user=kubelet-bootstrap
    # A controller joins through a controller's join API (port 9443), not the Kubernetes API.
    [ "$role" = controller ] && { server=https://$LAB_ADDRESS:9443; user=controller-bootstrap; }
    printf 'apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: %s\n    server: %s\n  name: k0s\ncontexts:\n- context:\n    cluster: k0s\n    user: %s\n  name: k0s\ncurrent-context: k0s\nkind: Config\npreferences: {}\nusers:\n- name: %s\n  user:\n    token: %s.%s\n' "$ca" "$server" "$user" "$user" "$id" "$secret" | gzip -c | base64 -w0
    echo ;;
  kubeconfig)
    [ "${2:-}" = admin ] && cat /var/lib/k0s/pki/admin.conf 2>/dev/null ;;
  controller|worker)
    echo "Error: kupgrade lab: k0s $1 runs as a service; use k0s start" >&2; exit 1 ;;
  ""|-h|--help)
    echo "k0s - The zero friction Kubernetes - https://k0sproject.io"; echo; echo "Usage:"; echo "  k0s [command]" ;;
  *)
    echo "Error: unknown command \"$1\" for \"k0s\"" >&2; echo "Run 'k0s --help' for usage." >&2; exit 1 ;;
esac
