#!/bin/bash
# Body of the k3s stand-in binary (the lab prepends LAB_VERSION/LAB_COMMIT; one file per release in the mirror).
# Formats: facts §2.1 (`k3s --version`), §3.1 (etcd-snapshot save/ls, certificate check, paths). k3s logs with
# logrus text format on stderr: `INFO[0000] message`.
. "$LAB_DIR/lib.sh"
TLS=/var/lib/rancher/k3s/server/tls
SNAPS=/var/lib/rancher/k3s/server/db/snapshots
logrus() { printf '%s[0000] %s\n' "$1" "$2" >&2; }

case "${1:-}" in
  --version|-v|version)
    echo "k3s version $LAB_VERSION ($LAB_COMMIT)"
    echo "go version go1.22.5"
    exit 0 ;;
  etcd-snapshot)
    shift
    sub=save
    case "${1:-}" in save|ls|list|delete|prune) sub=$1; shift ;; esac
    if ! lab_is_root; then logrus FATA "open /var/lib/rancher/k3s/server/token: permission denied"; exit 1; fi
    if [ "$LAB_ROLE" != control-plane ]; then logrus FATA "etcd-snapshot: managed etcd database not found in /var/lib/rancher/k3s/server/db/etcd"; exit 1; fi
    # A server on SQLite has no etcd to snapshot. What k3s prints (k3s-io/k3s#11388 and its backports #11393-#11395):
    # since v1.29.13/v1.30.9/v1.31.5 (and v1.32) the server refuses with "etcd datastore disabled"; v1.29.10 showed
    # "Unauthorized" (the CLI asks the server since 1.29); older releases looked on disk (#4845, #8960).
    if lab_k3s_sqlite; then
      v=$(lab_plain "$LAB_VERSION"); v=${v#v}; mi=$(lab_minor "$LAB_VERSION"); pa=${v##*.}
      if [ "$mi" -lt 29 ]; then logrus FATA "etcd database not found in /var/lib/rancher/k3s/server"
      elif [ "$mi" -ge 32 ] || { [ "$mi" = 31 ] && [ "$pa" -ge 5 ]; } || { [ "$mi" = 30 ] && [ "$pa" -ge 9 ]; } || { [ "$mi" = 29 ] && [ "$pa" -ge 13 ]; }; then
        logrus FATA "see server log for details: etcd datastore disabled"
      else logrus FATA "see server log for details: Unauthorized"; fi
      exit 1
    fi
    name=on-demand dir=$SNAPS retention=5 names=()
    while [ $# -gt 0 ]; do
      case "$1" in --name) name=$2; shift ;; --name=*) name=${1#*=} ;; --etcd-snapshot-dir|--dir) dir=$2; shift ;; --etcd-snapshot-dir=*|--dir=*) dir=${1#*=} ;;
        --etcd-snapshot-retention|--snapshot-retention) retention=$2; shift ;; --etcd-snapshot-retention=*|--snapshot-retention=*) retention=${1#*=} ;;
        -*) ;; *) names+=("$1") ;; esac
      shift
    done
    # k3s pkg/etcd/snapshot.go snapshotRetention, run by `prune`: the newest `retention` files whose name starts with
    # the snapshot name are kept, newest by the Unix time after the name's last dash (else the file's mtime); the rest
    # are removed and the CLI logs each (pkg/cli/etcdsnapshot prune). `save` sets the retention to 0 ("Prune can be run
    # manually after save"), so a save alone never removes one.
    retain() {
      [ "$retention" -ge 1 ] 2>/dev/null || return 0
      find "$dir" -maxdepth 1 -type f -name "$name*" -printf '%T@ %f\n' 2>/dev/null |
        awk '{ f = $2; b = f; sub(/\.zip$/, "", b); ts = b; sub(/.*-/, "", ts); if (ts !~ /^[0-9]+$/) ts = int($1); print ts, f }' |
        sort -rn -k1,1 | tail -n +$((retention + 1)) | while read -r _ f; do rm -f "$dir/$f" && logrus INFO "Snapshot $f deleted."; done
    }
    case "$sub" in
      save)
        if lab_fault etcd-unhealthy; then logrus FATA "etcd-snapshot error ID 1: failed to save snapshot: context deadline exceeded"; exit 1; fi
        file="$dir/$name-$LAB_NODE-$(date +%s)"
        if lab_disk_full /var; then logrus FATA "failed to save snapshot: write $file.part: no space left on device"; exit 1; fi
        mkdir -p "$dir"
        { printf 'kupgrade-lab-etcd-snapshot written-by=%s\n' "$(lab_datastore_version)"; head -c 65536 /dev/urandom; } > "$file"
        lab_event "{\"type\":\"backup\",\"path\":\"$file\"}"
        logrus INFO "Snapshot $(basename "$file") saved." ;;
      ls|list)
        printf '%-40s %-90s %-8s %s\n' Name Location Size Created
        for f in "$dir"/*; do
          [ -f "$f" ] || continue
          printf '%-40s %-90s %-8s %s\n' "$(basename "$f")" "file://$f" "$(stat -c %s "$f")" "$(date -u -d "@$(stat -c %Y "$f")" +%Y-%m-%dT%H:%M:%SZ)"
        done ;;
      delete) # pkg/cli/etcdsnapshot delete: each name removed is logged, each one not there warned of
        if [ ${#names[@]} -eq 0 ]; then logrus FATA "no snapshots given for removal"; exit 1; fi
        for n in "${names[@]}"; do
          if [ -f "$dir/$n" ]; then rm -f "$dir/$n"; logrus INFO "Snapshot $n deleted."; else logrus WARN "Snapshot $n not found."; fi
        done ;;
      prune) retain ;;
    esac
    exit 0 ;;
  certificate)
    # k3s-io/k3s pkg/cli/cert/cert.go: text = one logrus line per certificate ("FILE: certificate CN (USAGES) is ok,
    # expires at RFC3339" / "will expire within 120 days at" / "expired at"), table = tabwriter(pad 3) with a dashes
    # row, "Jan 02, 2006 15:04 MST" and go-humanize RelTime; json = {"Certificates":[…]} with ResidualTime in ns.
    shift
    case "${1:-}" in
      check) shift ;;
      rotate) logrus INFO "Server detected, rotating agent and server certificates"; lab_event '{"type":"certs-renewed"}'
              logrus INFO "Successfully backed up certificates to /var/lib/rancher/k3s/server/tls-$(date +%s), please restart k3s server or agent to rotate certificates"; exit 0 ;;
      *) echo "Incorrect Usage. flag provided but not defined: -${1:-}" >&2; exit 1 ;;
    esac
    out=text
    while [ $# -gt 0 ]; do case "$1" in -o|--output) out=$2; shift ;; --output=*|-o=*) out=${1#*=} ;; esac; shift; done
    case "$out" in text|table|json|yaml) ;; *) logrus FATA "invalid output format $out"; exit 1 ;; esac
    if [ "$LAB_ROLE" = control-plane ]; then logrus INFO "Server detected, checking agent and server certificates"; else logrus INFO "Agent detected, checking agent certificates"; fi
    now=$EPOCHSECONDS warn=$(( 120 * 86400 ))
    reltime() { # go-humanize RelTime(now, now+residual, "", ""): magnitude names with a trailing space
      awk -v d="$1" 'BEGIN { if (d < 0) d = -d; D = 86400; W = 7 * D; M = 30 * D; Y = 12 * M
        if (d < 1) s = "now"; else if (d < 2) s = "1 second "; else if (d < 60) s = int(d) " seconds "
        else if (d < 120) s = "1 minute "; else if (d < 3600) s = int(d / 60) " minutes "
        else if (d < 7200) s = "1 hour "; else if (d < D) s = int(d / 3600) " hours "
        else if (d < 2 * D) s = "1 day "; else if (d < W) s = int(d / D) " days "
        else if (d < 2 * W) s = "1 week "; else if (d < M) s = int(d / W) " weeks "
        else if (d < 2 * M) s = "1 month "; else if (d < Y) s = int(d / M) " months "
        else if (d < 18 * M) s = "1 year "; else if (d < 2 * Y) s = "2 years "; else if (d < 37 * Y) s = int(d / Y) " years "
        else s = "a long while "; printf "%s", s }'
    }
    rows="" first=1
    [ "$out" = json ] && printf '{"Certificates":['
    [ "$out" = yaml ] && echo "certificates:"
    while IFS=$'\t' read -r path cn notafter ca name kind usage issuer; do
      [ "$kind" = ca ] && continue
      case "$path" in var/lib/rancher/k3s/*) ;; *) continue ;; esac
      file="/$path" left=$(( notafter - now )) base=${path##*/}
      if [ $left -le 0 ]; then status=EXPIRED; elif [ $left -le $warn ]; then status=WARNING; else status=OK; fi
      # The clock and dates from the shell: this runs on every certificates gate check, once per certificate.
      TZ=UTC printf -v exp '%(%Y-%m-%dT%H:%M:%SZ)T' "$notafter"
      case "$out" in
        table) TZ=UTC LC_ALL=C printf -v shown '%(%b %d, %Y %H:%M UTC)T' "$notafter"
               rows+="$base"$'\t'"$cn"$'\t'"$usage"$'\t'"$shown"$'\t'"$(reltime "$left")"$'\t'"$status"$'\n' ;;
        json) [ $first = 1 ] || printf ','; first=0
              printf '{"Filename":"%s","Subject":"%s","Issuer":"%s","Usages":["%s"],"ExpiryTime":"%s","ResidualTime":%d000000000,"Status":"%s"}' "$base" "$cn" "$issuer" "$usage" "$exp" "$left" "$status" ;;
        yaml) printf -- '- filename: %s\n  subject: %s\n  issuer: %s\n  usages:\n  - %s\n  expirytime: %s\n  residualtime: %d000000000\n  status: %s\n' "$base" "$cn" "$issuer" "$usage" "$exp" "$left" "$status" ;;
        *) case "$status" in
             OK) logrus INFO "$base: certificate $cn ($usage) is ok, expires at $exp" ;;
             WARNING) logrus WARN "$base: certificate $cn ($usage) will expire within 120 days at $exp" ;;
             EXPIRED) logrus ERRO "$base: certificate $cn ($usage) expired at $exp" ;;
           esac ;;
      esac
    done < "$LAB_DIR/certs.tsv"
    [ "$out" = json ] && printf ']}\n'
    if [ "$out" = table ]; then
      echo
      { printf 'FILENAME\tSUBJECT\tUSAGES\tEXPIRES\tRESIDUAL TIME\tSTATUS\n--------\t-------\t------\t-------\t-------------\t------\n'; printf '%s' "$rows"; } |
        awk -F'\t' '{ for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) + 3 > w[i]) w[i] = length($i) + 3 } nf[NR] = NF; n = NR }
          END { for (r = 1; r <= n; r++) { o = ""; for (i = 1; i <= nf[r]; i++) o = o (i < nf[r] ? sprintf("%-" w[i] "s", c[r, i]) : c[r, i]); print o } }'
    fi
    exit 0 ;;
  server)
    # Only the documented restore runs in the foreground (k3s-io/docs datastore/backup-restore.md):
    #   k3s server --cluster-reset [--cluster-reset-restore-path=<snapshot>]
    # with the k3s service stopped. The datastore then holds the snapshot's data, written by the release that took it.
    shift; reset=0 restore=""
    while [ $# -gt 0 ]; do
      case "$1" in --cluster-reset) reset=1 ;; --cluster-reset-restore-path=*) restore=${1#*=} ;; --cluster-reset-restore-path) restore=${2:-}; shift ;; esac
      shift
    done
    [ $reset = 1 ] || { logrus FATA "kupgrade lab: k3s server runs as the $LAB_UNIT service; use systemctl start $LAB_UNIT (or k3s server --cluster-reset to restore)"; exit 1; }
    if ! lab_is_root; then logrus FATA "must run as root unless --disable-agent is specified"; exit 1; fi
    [ "$LAB_ROLE" = control-plane ] || { logrus FATA "kupgrade lab: this node is an agent: no datastore to reset"; exit 1; }
    # On SQLite k3s would start a new embedded etcd from the SQLite data (a migration, not a restore): not simulated,
    # so the lab refuses rather than pretend. The SQLite restore is a copy of server/db and the token put back.
    if lab_k3s_sqlite; then logrus FATA "kupgrade lab: --cluster-reset on a server whose datastore is SQLite ($LAB_K3S_STATE_DB) is not simulated: restore a copy of /var/lib/rancher/k3s/server/db and the server token instead (docs.k3s.io datastore/backup-restore)"; exit 1; fi
    lab_unit_read k3s
    if [ "$U_STATE" = active ] || [ "$U_STATE" = activating ]; then
      logrus FATA "starting kubernetes: preparing server: start managed database: listen tcp 127.0.0.1:2380: bind: address already in use"; exit 1
    fi
    logrus INFO "Starting k3s $LAB_VERSION ($LAB_COMMIT)"
    ds=$(lab_datastore_version)
    if [ -n "$restore" ]; then
      [ -f "$restore" ] || { logrus FATA "starting kubernetes: preparing server: start managed database: open $restore: no such file or directory"; exit 1; }
      ds=$(sed -n '1s/^kupgrade-lab-etcd-snapshot written-by=//p' "$restore")
      [ -n "$ds" ] || { logrus FATA "starting kubernetes: preparing server: start managed database: failed to restore snapshot $restore: invalid database"; exit 1; }
      logrus INFO "Pre-restore etcd database moved to /var/lib/rancher/k3s/server/db/etcd-old-$(date +%s)"
    fi
    downgrade=$(lab_datastore_refusal_for "$LAB_VERSION" "$ds") && { logrus FATA "apiserver exited: $downgrade"; exit 1; }
    f=$(lab_datastore_file); mkdir -p "$(dirname "$f")"; [ -n "$ds" ] && printf '%s\n' "$ds" > "$f"
    : > /var/lib/rancher/k3s/server/db/reset-flag
    # The datastore is the snapshot's now: the API's objects too (the lab brings back its Leases).
    [ -n "$restore" ] && lab_datastore_restored "$restore"
    # A new etcd cluster of one member: the other servers' member data now belongs to a cluster that is gone.
    id=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
    printf '%s\n' "$id" > "$LAB_DIR/etcd-cluster/cluster-id"
    mkdir -p "$LAB_K3S_MEMBER_DIR" && printf '%s\n' "$id" > "$LAB_K3S_MEMBER_DIR/lab-cluster-id"
    # Its only member is this server: the others' members are forgotten, so they rejoin as new ones.
    md=$(lab_k3s_members_dir)
    if [ -d "$md" ]; then find "$md" -mindepth 1 ! -name "$LAB_NODE" -delete; [ -s "$LAB_K3S_NAME_FILE" ] && cp "$LAB_K3S_NAME_FILE" "$md/$LAB_NODE"; fi
    logrus INFO "Managed etcd cluster membership has been reset, restart without --cluster-reset flag now. Backup and delete \${datadir}/server/db on each peer etcd server and rejoin the nodes"
    exit 0 ;;
  agent)
    logrus FATA "kupgrade lab: k3s $1 runs as the $LAB_UNIT service; use systemctl start $LAB_UNIT"
    exit 1 ;;
  kubectl|crictl|ctr)
    logrus FATA "kupgrade lab: 'k3s $1' is not simulated on the node; use kubectl against the lab API server"
    exit 1 ;;
  ""|--help|-h)
    echo "NAME:"; echo "   k3s - Kubernetes, but small and simple"; echo; echo "USAGE:"; echo "   k3s [global options] command [command options] [arguments...]"
    echo; echo "VERSION:"; echo "   $LAB_VERSION ($LAB_COMMIT)"; exit 0 ;;
  *)
    echo "Incorrect Usage. flag provided but not defined: -$1" >&2; exit 1 ;;
esac
