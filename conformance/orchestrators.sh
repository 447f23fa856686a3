#!/bin/bash
# conformance/orchestrators.sh [RUNTIME_BIN]
#
# Ketch's orchestrator smoke test: drive a runc-compatible runtime binary
# (default: the repo's .venv/bin/ketch) through podman (--runtime) and a
# private containerd (ctr --runc-binary), from a local busybox image built
# here from the host's busybox-static (no registry, no network).
#
# Paths (one "PASS name: ..." / "FAIL name: ..." line each):
#   podman-run       token on stdout; sh -c 'exit 7' -> 7
#   podman-exec      run -d sleep; exec sh -c 'echo TOKEN; id'; stop; rm
#   podman-tty       run -t (under script -qec): /dev/pts/N and the token
#   ctr-run          ctr run --rm: token; exit 7 -> 7
#   ctr-exec         ctr run -d sleep; ctr task exec; kill; delete
#   ctr-tty          ctr run -t --rm (under script -qec): /dev/pts/N and token
# Final line "RESULT PASS" (exit 0) or "RESULT FAIL" (exit 1); exit 2 when the
# harness itself cannot run.
#
# All state lives in one temp dir: podman --root/--runroot/--tmpdir/network
# config dir and a private containers.conf; containerd root/state/sockets/
# runc root/fifo dir. containerd is started here and stopped by PID; the trap
# removes containers, shims started by our containerd, mounts and the temp dir,
# also on failure or Ctrl-C. Other podman/containerd state is not touched.
#
# Env: ORCH_TIMEOUT=90 (seconds per command), ORCH_KEEP=1 (keep the temp dir),
#      PODMAN_STORAGE_DRIVER=overlay|vfs, CTR_SNAPSHOTTER=overlayfs|native,
#      PODMAN_ULIMITS="--ulimit nofile=N:N --ulimit nproc=M:M" (default: the
#      caller's hard limits; podman's default 1048576 exceeds a hard nofile
#      limit and without CAP_SYS_RESOURCE the runtime's setrlimit gets EPERM).
set -u

case "${1:-}" in -h|--help) sed -n '2,29p' "$0"; exit 0 ;; esac
REPO=$(cd "$(dirname "$0")/.." && pwd)
RT_ARG=${1:-$REPO/.venv/bin/ketch}
RT=$(command -v "$RT_ARG" 2>/dev/null || true)
if [ -z "$RT" ] || [ ! -x "$RT" ]; then echo "FAIL setup: no runtime '$RT_ARG'"; echo "RESULT FAIL"; exit 2; fi
case "$RT" in /*) ;; *) RT=$(cd "$(dirname "$RT")" && pwd)/$(basename "$RT") ;; esac

TMO=${ORCH_TIMEOUT:-90}
DRV=${PODMAN_STORAGE_DRIVER:-overlay}
SNAP=${CTR_SNAPSHOTTER:-overlayfs}
W=$(mktemp -d "${TMPDIR:-/tmp}/ketch-orch.XXXXXX")
chmod 0755 "$W"
P=$W/podman
C=$W/ctrd
TAG=orch$$
IMG=localhost/ketch-orch-busybox:$TAG
NS=ketch-orch-$$
FAILS=0
CTRD_PID=""
RUN_CTRD_EXISTED=0; [ -e /run/containerd ] && RUN_CTRD_EXISTED=1

pass() { echo "PASS $1: $2"; }
fail() { echo "FAIL $1: $2"; FAILS=$((FAILS + 1)); }
flat() { tr -d '\000' < "$1" | tr '\r\n' '  ' | cut -c1-500; }
# script(1) output: drop CRs, echoed control chars (^@) and raw control bytes
ttyclean() { tr -d '\r' | sed 's/\^[@A-Z]//g; s/[[:cntrl:]]//g'; }
token() { echo "tok-$$-$RANDOM$RANDOM"; }

PODMAN=(podman --root "$P/root" --runroot "$P/runroot" --tmpdir "$P/tmp"
        --storage-driver "$DRV" --cgroup-manager cgroupfs --events-backend file
        --network-config-dir "$P/net")
CTR=(ctr --address "$C/containerd.sock" --namespace "$NS")

cleanup() {
    set +e
    if [ -d "$P/root" ]; then
        timeout 60 "${PODMAN[@]}" rm -af -t 0 >/dev/null 2>&1
        timeout 60 "${PODMAN[@]}" rmi -af >/dev/null 2>&1
    fi
    if [ -n "$CTRD_PID" ]; then
        for t in $(timeout 10 "${CTR[@]}" task ls -q 2>/dev/null); do
            timeout 10 "${CTR[@]}" task kill -a -s SIGKILL "$t" >/dev/null 2>&1
            sleep 0.3
            timeout 10 "${CTR[@]}" task delete -f "$t" >/dev/null 2>&1
        done
        for c in $(timeout 10 "${CTR[@]}" container ls -q 2>/dev/null); do
            timeout 10 "${CTR[@]}" container delete "$c" >/dev/null 2>&1
        done
        kill -TERM "$CTRD_PID" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$CTRD_PID" 2>/dev/null
        wait "$CTRD_PID" 2>/dev/null
        # shims of OUR containerd carry our socket path on their command line
        for d in /proc/[0-9]*; do
            if tr '\0' ' ' 2>/dev/null < "$d/cmdline" | grep -q -- "containerd-shim.*-address $C/containerd.sock"; then
                kill -KILL "${d#/proc/}" 2>/dev/null
            fi
        done
    fi
    [ "$RUN_CTRD_EXISTED" = 0 ] && rmdir /run/containerd/s /run/containerd/fifo /run/containerd 2>/dev/null
    findmnt -rn -o TARGET 2>/dev/null | awk -v p="$W/" 'index($0, p) == 1' | sort -r |
        while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
    if [ "${ORCH_KEEP:-0}" = 1 ]; then echo "INFO kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for b in podman conmon containerd ctr containerd-shim-runc-v2 umoci script busybox; do
    command -v "$b" >/dev/null 2>&1 || { fail setup "'$b' not on PATH"; echo "RESULT FAIL"; exit 2; }
done
BB=$(command -v busybox)   # busybox-static: runs without the host's libc

# ---- local busybox image --------------------------------------------------------
R=$W/rootfs
mkdir -p "$R"/{bin,etc,dev,proc,sys,tmp,root} "$W/img"
chmod 1777 "$R/tmp"
cp "$BB" "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$R/etc/group"
tar -C "$R" -cf "$W/img/rootfs.tar" . || { fail setup "tar rootfs"; echo "RESULT FAIL"; exit 2; }
{
    umoci init --layout "$W/img/oci" &&
    umoci new --image "$W/img/oci:$TAG" &&
    umoci insert --image "$W/img/oci:$TAG" "$R" / &&
    umoci config --image "$W/img/oci:$TAG" --config.cmd /bin/sh \
        --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin &&
    umoci gc --layout "$W/img/oci" &&
    (cd "$W/img/oci" && tar -cf ../oci.tar .)
} >"$W/umoci.log" 2>&1 || fail setup "umoci image build: $(flat "$W/umoci.log")"

# ---- podman ----------------------------------------------------------------------
if [ -z "${PODMAN_ULIMITS:-}" ]; then
    nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
    pidmax=$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo 32768)
    [ "$nofile" = unlimited ] && nofile=1048576
    { [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pidmax" ]; } && nproc=$pidmax
    PODMAN_ULIMITS="--ulimit nofile=$nofile:$nofile --ulimit nproc=$nproc:$nproc"
fi
mkdir -p "$P/tmp" "$P/net"
# a private containers.conf: /etc/containers/containers.conf and ~/.config are not read
printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' > "$P/containers.conf"
export CONTAINERS_CONF=$P/containers.conf
# shellcheck disable=SC2206
PRUN=("${PODMAN[@]}" run --network none $PODMAN_ULIMITS --runtime "$RT")

podman_paths() {
    local tok rc id out=$P/out err=$P/err
    if ! timeout "$TMO" "${PODMAN[@]}" import "$W/img/rootfs.tar" "$IMG" >"$P/import.log" 2>&1; then
        fail podman-run "podman import: $(flat "$P/import.log")"
        fail podman-exec "no image"; fail podman-tty "no image"; return
    fi

    # 1. run: token + exit code
    tok=$(token)
    timeout "$TMO" "${PRUN[@]}" --rm "$IMG" echo "$tok" >"$out" 2>"$err" </dev/null
    rc=$?
    if [ $rc -ne 0 ] || ! grep -qx "$tok" "$out"; then
        fail podman-run "podman run --rm --runtime $RT $IMG echo TOKEN: rc=$rc out=[$(flat "$out")] err=[$(flat "$err")]"
    else
        timeout "$TMO" "${PRUN[@]}" --rm "$IMG" sh -c 'exit 7' >"$out" 2>"$err" </dev/null
        rc=$?
        if [ $rc -eq 7 ]; then pass podman-run "token on stdout, exit 7 propagated"
        else fail podman-run "podman run --rm $IMG sh -c 'exit 7': rc=$rc (want 7) err=[$(flat "$err")]"; fi
    fi

    # 2. exec into a running container
    tok=$(token)
    id=$(timeout "$TMO" "${PRUN[@]}" -d "$IMG" sleep 1000 2>"$err" </dev/null)
    rc=$?
    if [ $rc -ne 0 ] || [ -z "$id" ]; then
        fail podman-exec "podman run -d $IMG sleep 1000: rc=$rc err=[$(flat "$err")]"
    else
        timeout "$TMO" "${PODMAN[@]}" exec "$id" sh -c "echo $tok; id" >"$out" 2>"$err" </dev/null
        rc=$?
        if [ $rc -ne 0 ] || ! grep -qx "$tok" "$out" || ! grep -q '^uid=0(root)' "$out"; then
            fail podman-exec "podman exec $id sh -c 'echo TOKEN; id': rc=$rc out=[$(flat "$out")] err=[$(flat "$err")]"
        else
            local ok=1 msg=""
            timeout "$TMO" "${PODMAN[@]}" stop -t 2 "$id" >/dev/null 2>"$err" || { ok=0; msg="stop: $(flat "$err")"; }
            timeout "$TMO" "${PODMAN[@]}" rm "$id" >/dev/null 2>"$err" || { ok=0; msg="$msg rm: $(flat "$err")"; }
            if [ $ok = 1 ]; then pass podman-exec "exec printed the token and uid=0(root); stop + rm ok"
            else fail podman-exec "$msg"; fi
        fi
        timeout 30 "${PODMAN[@]}" rm -f -t 0 "$id" >/dev/null 2>&1
    fi

    # 3. terminal
    tok=$(token)
    local cmd
    cmd=$(printf '%q ' timeout "$TMO" "${PRUN[@]}" --rm -t "$IMG" sh -c "tty; echo $tok")
    timeout "$TMO" script -qec "$cmd" /dev/null >"$out" 2>"$err" </dev/null
    rc=$?
    ttyclean < "$out" > "$out.n"
    if [ $rc -eq 0 ] && grep -qx '/dev/pts/[0-9]*' "$out.n" && grep -qx "$tok" "$out.n"; then
        pass podman-tty "run -t: $(grep -x '/dev/pts/[0-9]*' "$out.n" | head -1) and the token"
    else
        fail podman-tty "script -qec 'podman run --rm -t $IMG sh -c \"tty; echo TOKEN\"': rc=$rc out=[$(flat "$out")] err=[$(flat "$err")]"
    fi
}
podman_paths

# ---- containerd ------------------------------------------------------------------
mkdir -p "$C"
cat > "$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$C/containerd.sock"
[ttrpc]
  address = "$C/containerd.sock.ttrpc"
[debug]
  address = "$C/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
EOF

ctr_paths() {
    local tok rc out=$C/out err=$C/err cid
    if [ ! -f "$W/img/oci.tar" ]; then
        for p in ctr-run ctr-exec ctr-tty; do fail $p "no OCI archive (umoci failed)"; done; return
    fi
    containerd --config "$C/config.toml" >"$C/containerd.log" 2>&1 &
    CTRD_PID=$!
    for _ in $(seq 150); do
        [ -S "$C/containerd.sock" ] && timeout 5 "${CTR[@]}" version >/dev/null 2>&1 && break
        kill -0 "$CTRD_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ! timeout 5 "${CTR[@]}" version >/dev/null 2>&1; then
        for p in ctr-run ctr-exec ctr-tty; do fail $p "containerd did not come up: $(tail -3 "$C/containerd.log" | tr '\n' ' ')"; done; return
    fi
    if ! timeout "$TMO" "${CTR[@]}" image import --snapshotter "$SNAP" --base-name localhost/ketch-orch-busybox \
            "$W/img/oci.tar" >"$C/import.log" 2>&1; then
        for p in ctr-run ctr-exec ctr-tty; do fail $p "ctr image import: $(flat "$C/import.log")"; done; return
    fi
    local RUN=("${CTR[@]}" run --snapshotter "$SNAP" --runc-binary "$RT"
               --runc-root "$C/runc-root" --fifo-dir "$C/fifo")

    # 4. run: token + exit code
    tok=$(token)
    timeout "$TMO" "${RUN[@]}" --rm "$IMG" "$NS-run" echo "$tok" >"$out" 2>"$err" </dev/null
    rc=$?
    if [ $rc -ne 0 ] || ! grep -qx "$tok" "$out"; then
        fail ctr-run "ctr run --rm --runc-binary $RT $IMG ID echo TOKEN: rc=$rc out=[$(flat "$out")] err=[$(flat "$err")]"
    else
        timeout "$TMO" "${RUN[@]}" --rm "$IMG" "$NS-exit" sh -c 'exit 7' >"$out" 2>"$err" </dev/null
        rc=$?
        if [ $rc -eq 7 ]; then pass ctr-run "token on stdout, exit 7 propagated"
        else fail ctr-run "ctr run --rm $IMG ID sh -c 'exit 7': rc=$rc (want 7) err=[$(flat "$err")]"; fi
    fi

    # 5. exec into a running task
    tok=$(token); cid=$NS-exec
    timeout "$TMO" "${RUN[@]}" -d "$IMG" "$cid" sleep 1000 >"$out" 2>"$err" </dev/null
    rc=$?
    if [ $rc -ne 0 ]; then
        fail ctr-exec "ctr run -d $IMG $cid sleep 1000: rc=$rc err=[$(flat "$err")]"
    else
        timeout "$TMO" "${CTR[@]}" task exec --fifo-dir "$C/fifo" --exec-id e1 "$cid" sh -c "echo $tok" >"$out" 2>"$err" </dev/null
        rc=$?
        if [ $rc -ne 0 ] || ! grep -qx "$tok" "$out"; then
            fail ctr-exec "ctr task exec --exec-id e1 $cid sh -c 'echo TOKEN': rc=$rc out=[$(flat "$out")] err=[$(flat "$err")]"
        else
            local ok=1 msg="" st=""
            timeout "$TMO" "${CTR[@]}" task kill -s SIGKILL "$cid" >/dev/null 2>"$err" || { ok=0; msg="task kill: $(flat "$err")"; }
            for _ in $(seq 50); do
                st=$(timeout 5 "${CTR[@]}" task ls 2>/dev/null | awk -v c="$cid" '$1 == c {print $3}')
                [ "$st" = STOPPED ] && break; sleep 0.1
            done
            [ "$st" = STOPPED ] || { ok=0; msg="$msg task not STOPPED after kill (status '$st')"; }
            timeout "$TMO" "${CTR[@]}" task delete "$cid" >/dev/null 2>"$err" || { ok=0; msg="$msg task delete: $(flat "$err")"; }
            timeout "$TMO" "${CTR[@]}" container delete "$cid" >/dev/null 2>"$err" || { ok=0; msg="$msg container delete: $(flat "$err")"; }
            if [ $ok = 1 ]; then pass ctr-exec "task exec printed the token; kill + task/container delete ok"
            else fail ctr-exec "$msg"; fi
        fi
    fi
    timeout 10 "${CTR[@]}" task delete -f "$cid" >/dev/null 2>&1
    timeout 10 "${CTR[@]}" container delete "$cid" >/dev/null 2>&1

    # 6. terminal
    tok=$(token)
    local cmd
    cmd=$(printf '%q ' timeout "$TMO" "${RUN[@]}" --rm -t "$IMG" "$NS-tty" sh -c "tty; echo $tok")
    timeout "$TMO" script -qec "$cmd" /dev/null >"$out" 2>"$err" </dev/null
    rc=$?
    ttyclean < "$out" > "$out.n"
    if [ $rc -eq 0 ] && grep -qx '/dev/pts/[0-9]*' "$out.n" && grep -qx "$tok" "$out.n"; then
        pass ctr-tty "run -t: $(grep -x '/dev/pts/[0-9]*' "$out.n" | head -1) and the token"
    else
        fail ctr-tty "script -qec 'ctr run --rm -t $IMG ID sh -c \"tty; echo TOKEN\"': rc=$rc out=[$(flat "$out")] err=[$(flat "$err")]"
    fi
}
ctr_paths

echo "INFO runtime: $RT"
if [ "$FAILS" -eq 0 ]; then echo "RESULT PASS"; exit 0; fi
echo "RESULT FAIL"; exit 1
